//! The guest agent: PID 1 of the micro-VM. Mounts the guest's filesystems,
//! loads the kernel modules it needs, opens the control port and serves the
//! shim's requests by running the native runtime's library inside the guest.
