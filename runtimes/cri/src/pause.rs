//! `cri pause`: the process of a pod's infra container. It holds the pod's
//! namespaces open, brings the loopback interface of a new network namespace
//! up, reaps whatever is reparented to it (PID 1 of a shared PID namespace),
//! and exits on SIGTERM or SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_child(_: libc::c_int) {}

/// Sets `lo` up in the current network namespace.
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket() takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket() and is owned by nothing else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: req is a valid ifreq naming "lo", living across the call.
    if unsafe { libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above; the kernel reads the name and flags.
    if unsafe { libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs until SIGTERM/SIGINT; returns the exit code.
pub fn run(lo_up: bool) -> i32 {
    if lo_up {
        // Best effort: a runtime that already set lo up (or a host network)
        // needs nothing; the pod still works for anything but loopback.
        let _ = loopback_up();
    }
    // SAFETY: the handlers only touch an atomic (async-signal-safe); the
    // sigaction structs are fully initialised before use.
    unsafe {
        for (sig, handler) in [
            (libc::SIGTERM, on_stop as extern "C" fn(libc::c_int)),
            (libc::SIGINT, on_stop),
            (libc::SIGCHLD, on_child),
        ] {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    while !STOP.load(Ordering::SeqCst) {
        // SAFETY: pause() has no arguments; it returns after any handled signal.
        unsafe { libc::pause() };
        loop {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
                break;
            }
        }
    }
    0
}
