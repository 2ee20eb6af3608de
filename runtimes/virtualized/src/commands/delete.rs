//! `virtualized delete [--force] ID`: the container must be stopped (or
//! forced); its shim and QEMU are gone and its state directory removed
//! when this returns.

use std::time::{Duration, Instant};

use container::state::{start_time, Status};

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

pub fn run(store: &Store, a: native::commands::delete::Args) -> anyhow::Result<i32> {
    let r = match store.load(&a.id) {
        // runc: a forced delete of an unknown container is not an error.
        Err(state::Error::State(container::state::Error::NotFound(_))) if a.force => return Ok(0),
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
    store.remove(&a.id)?;
    Ok(0)
}
