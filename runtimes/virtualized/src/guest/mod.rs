//! The guest agent: PID 1 of the micro-VM. Mounts the guest's filesystems,
//! loads the kernel modules it needs, opens the control port and serves the
//! shim's requests by running the native runtime's library inside the guest.

mod reaper;
mod serve;
mod setup;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use crate::proto::{Event, GuestBoot};

/// The agent's first console line: the host times its arrival, which marks
/// the end of the kernel's share of the boot on the host's clock.
pub const CONSOLE_HELLO: &str = "virtualized agent: started";

/// The agent's entry point, as PID 1 of the guest. Never returns: on a fatal
/// error it writes it to the console and powers the guest off (with QEMU's
/// `-no-reboot`, QEMU then exits and the shim sees why in the console log).
pub fn main() -> ! {
    let agent_start_ms = setup::uptime_ms();
    // The kernel opened /dev/console as PID 1's stdio.
    let _ = writeln!(std::io::stderr(), "{CONSOLE_HELLO}");
    std::panic::set_hook(Box::new(|info| fatal(&format!("panic: {info}"))));
    match run(agent_start_ms) {
        Ok(()) => power_off(),
        Err(e) => fatal(&e),
    }
}

fn run(agent_start_ms: u64) -> Result<(), String> {
    // Before any thread exists: every thread inherits the blocked SIGCHLD.
    reaper::start()?;
    setup::pivotable_root()?;
    setup::mount_filesystems()?;
    let t = setup::uptime_ms();
    setup::load_modules(&setup::default_module_order())?;
    let modules_ms = setup::uptime_ms() - t;
    let port = setup::agent_port()?;
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&port)
        .map_err(|e| format!("opening {}: {e}", port.display()))?;
    let input = out.try_clone().map_err(|e| format!("{}: {e}", port.display()))?;
    let exe = PathBuf::from("/init");
    let mut agent = serve::Agent::new(out, exe);
    agent.send(&Event::Ready(GuestBoot {
        kernel: setup::kernel_release(),
        agent_start_ms,
        modules_ms,
        ready_ms: setup::uptime_ms(),
    }));
    agent.serve(input)
}

fn console_say(msg: &str) {
    if let Ok(mut c) = File::options().write(true).open("/dev/console") {
        let _ = writeln!(c, "virtualized agent: {msg}");
    }
}

fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; RB_POWER_OFF with -no-reboot
    // ends QEMU.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    // reboot(2) only returns on failure; PID 1 must not exit (the kernel
    // would panic), so wait to be killed.
    loop {
        std::thread::park();
    }
}

fn fatal(msg: &str) -> ! {
    console_say(&format!("fatal: {msg}"));
    power_off()
}
