//! The hypervisor side of the host: finding the guest kernel, probing KVM,
//! generating the initramfs (agent, modules, packed bundle) and driving QEMU
//! to a guest whose agent said `Ready`.
