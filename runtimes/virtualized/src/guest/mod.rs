//! The guest agent: PID 1 of the micro-VM. Mounts the guest's filesystems,
//! loads the kernel modules it needs, opens the control port and serves the
//! shim's requests by running the native runtime's library inside the guest.

/// The agent's entry point, as PID 1 of the guest. Never returns: on a fatal
/// error it writes it to the console and powers the guest off.
pub fn main() -> ! {
    eprintln!("virtualized agent: not implemented yet");
    // SAFETY: reboot(2) with a valid command; it takes no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    loop {
        std::thread::park();
    }
}
