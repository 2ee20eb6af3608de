//! PID 1 reaps every process that ends in the guest: the runtime commands
//! it runs, the container's processes (reparented to it when `create`
//! exits) and their orphans. Statuses are kept by pid for whoever waits.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::proto::ExitStatus;

struct Exits {
    map: Mutex<HashMap<i32, ExitStatus>>,
    cv: Condvar,
}

static EXITS: OnceLock<Exits> = OnceLock::new();

fn exits() -> &'static Exits {
    EXITS.get_or_init(|| Exits {
        map: Mutex::new(HashMap::new()),
        cv: Condvar::new(),
    })
}

/// Blocks SIGCHLD in the calling thread (call it before any other thread
/// exists, so all inherit the mask) and starts the reaping thread, which
/// takes the signal with sigwait. Spawned commands get an empty mask from
/// std's spawn.
pub fn start() -> Result<(), String> {
    // SAFETY: sigset operations on a local set, then pthread_sigmask on
    // the calling thread with a valid set and a null old set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if r != 0 {
            return Err(format!("blocking SIGCHLD: errno {r}"));
        }
    }
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(|| loop {
            reap_all();
            // SAFETY: as above; sigwait fills a valid int.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGCHLD);
                let mut sig = 0;
                libc::sigwait(&set, &mut sig);
            }
        })
        .map_err(|e| format!("starting the reaper: {e}"))?;
    Ok(())
}

fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        let st = if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        };
        let e = exits();
        e.map.lock().unwrap_or_else(|p| p.into_inner()).insert(pid, st);
        e.cv.notify_all();
    }
}

/// Waits for `pid` to be reaped (or `timeout`) and takes its status.
pub fn wait(pid: i32, timeout: Option<Duration>) -> Option<ExitStatus> {
    let e = exits();
    let mut map = e.map.lock().unwrap_or_else(|p| p.into_inner());
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        if let Some(st) = map.remove(&pid) {
            return Some(st);
        }
        match deadline {
            None => map = e.cv.wait(map).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return None;
                }
                map = e.cv.wait_timeout(map, left).unwrap_or_else(|p| p.into_inner()).0;
            }
        }
    }
}
