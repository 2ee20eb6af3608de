//! `virtualized delete [--force] ID`: the container must be stopped (or
//! forced); its shim and QEMU are gone, its poststop hooks have run (on the
//! host, failures are warnings) and its state directory is removed when
//! this returns.

use std::time::{Duration, Instant};

use container::state::{start_time, Status};
use native::log::Logger;

use crate::shim::state::{self, Record, Store};

/// How long a shim that recorded the end gets to finish its own teardown,
/// and how long a killed one gets to disappear.
const GRACE: Duration = Duration::from_secs(5);

fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && start_time(pid) == Some(start)
}

fn wait_gone(pid: i32, start: u64, limit: Duration) -> bool {
    let t = Instant::now();
    while alive(pid, start) {
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Ends the shim (and with it, QEMU) of `r`.
pub fn stop(r: &Record) -> anyhow::Result<()> {
    // A shim that recorded the exit is tearing the VM down: let it finish
    // and end with the container's status.
    if !(r.status == Status::Stopped && wait_gone(r.pid, r.pid_start, GRACE)) && alive(r.pid, r.pid_start) {
        // SAFETY: kill(2) on the shim, checked alive by its start time.
        unsafe { libc::kill(r.pid, libc::SIGKILL) };
        if !wait_gone(r.pid, r.pid_start, GRACE) {
            anyhow::bail!("the shim of {:?} (pid {}) survived SIGKILL for {GRACE:?}", r.id, r.pid);
        }
    }
    // QEMU dies with its shim (PR_SET_PDEATHSIG); make sure of it.
    if let Some(start) = (r.qemu_pid > 0).then(|| start_time(r.qemu_pid)).flatten() {
        if start == r.qemu_start {
            // SAFETY: kill(2) on the QEMU this container's shim started,
            // identified by its start time.
            unsafe { libc::kill(r.qemu_pid, libc::SIGKILL) };
            if !wait_gone(r.qemu_pid, start, GRACE) {
                anyhow::bail!("QEMU of {:?} (pid {}) survived SIGKILL for {GRACE:?}", r.id, r.qemu_pid);
            }
        }
    }
    Ok(())
}

/// Runs the poststop hooks of the config in `r`'s bundle, with the state as
/// `state` prints it (stopped); returns their failures, as the native
/// runtime does (a bundle whose config cannot be read runs none).
pub fn poststop(r: &Record) -> Vec<String> {
    let Ok(spec) = container::config::load(&r.bundle) else {
        return Vec::new();
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    crate::shim::hooks::poststop(&hooks, &r.oci())
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

/// The end of a container once its shim is gone: poststop hooks (their
/// failures logged as warnings), then the state directory.
pub fn destroy(store: &Store, r: &Record, log: &Logger) -> anyhow::Result<()> {
    for w in poststop(r) {
        log.warn(&w);
    }
    store.remove(&r.id)?;
    Ok(())
}

pub fn run(store: &Store, a: native::commands::delete::Args, log: &Logger) -> anyhow::Result<i32> {
    let r = match store.load(&a.id) {
        // runc: a forced delete of an unknown container is not an error.
        Err(state::Error::NotFound(_)) if a.force => return Ok(0),
        r => r?,
    };
    let status = r.status();
    if !status.can_delete() && !a.force {
        return Err(container::state::Error::Illegal {
            id: a.id,
            status,
            op: "delete",
        }
        .into());
    }
    stop(&r)?;
    destroy(store, &r, log)?;
    Ok(0)
}
