//! `probe signals`: reports every catchable signal it receives, one name a
//! line, until SIGKILL. The signals are blocked and taken with
//! `sigwaitinfo`, so nothing runs in signal context, and each also gets a
//! do-nothing handler so that none is dropped as "default action" (which is
//! what the kernel does to signals sent to a namespace's PID 1).

use std::io::{self, Write};

use crate::sys;

/// The standard signals by number (index 0 unused).
const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGUSR1` for 10; `SIGRTMIN+N` and `SIG<n>` beyond the standard ones.
pub fn signal_name(sig: i32) -> String {
    match usize::try_from(sig) {
        Ok(i) if (1..NAMES.len()).contains(&i) => NAMES[i].to_string(),
        _ if sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX() => {
            format!("SIGRTMIN+{}", sig - libc::SIGRTMIN())
        }
        _ => format!("SIG{sig}"),
    }
}

/// The signals the subcommand waits for: 1..=31 but SIGKILL and SIGSTOP.
pub fn catchable() -> Vec<i32> {
    (1..=31)
        .filter(|s| *s != libc::SIGKILL && *s != libc::SIGSTOP)
        .collect()
}

/// Runs until killed; returns only if waiting itself fails.
pub fn run() -> i32 {
    let signals = catchable();
    let set = sys::sigset(&signals);
    if let Err(err) = sys::block_signals(&set) {
        eprintln!("probe: signals: sigprocmask: {}", crate::errno::io_error_name(&err));
        return 1;
    }
    for &sig in &signals {
        // Failure only means the default action stays; the signal is still
        // blocked and so still queued for sigwaitinfo.
        let _ = sys::install_noop_handler(sig);
    }
    let mut out = io::stdout().lock();
    let _ = out.write_all(b"ready\n");
    let _ = out.flush();
    loop {
        match sys::sigwait(&set) {
            Ok(sig) => {
                if sig == libc::SIGCHLD {
                    sys::reap_children();
                }
                let _ = writeln!(out, "{}", signal_name(sig));
                let _ = out.flush();
            }
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
            Err(err) => {
                eprintln!("probe: signals: sigwaitinfo: {}", crate::errno::io_error_name(&err));
                return 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(signal_name(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGHUP), "SIGHUP");
        assert_eq!(signal_name(libc::SIGSYS), "SIGSYS");
        assert_eq!(signal_name(libc::SIGWINCH), "SIGWINCH");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(0), "SIG0");
        for (i, name) in NAMES.iter().enumerate().skip(1) {
            assert!(name.starts_with("SIG"), "{i}");
        }
    }

    #[test]
    fn catchable_leaves_out_kill_and_stop() {
        let list = catchable();
        assert_eq!(list.len(), 29);
        assert!(!list.contains(&libc::SIGKILL));
        assert!(!list.contains(&libc::SIGSTOP));
        assert!(list.contains(&libc::SIGCHLD));
    }
}
