//! `virtualized`: the bundled runtime of Kata's class. Each container runs in
//! its own QEMU micro-VM; an agent inside the guest sets the container up
//! with the same library the native runtime uses.
//!
//! One static binary plays every part, split by the side of the isolation
//! boundary it runs on (as runsc is): the runc-compatible command line
//! (`commands`), the per-container host process that owns the VM (`shim`),
//! the hypervisor plumbing (`vm`: kernel, initramfs, QEMU, KVM probe), and,
//! as PID 1 of the guest, the agent (`guest`). `proto` is what the shim and
//! the agent say to each other.

pub mod commands;
pub mod guest;
pub mod proto;
pub mod shim;
pub mod vm;
