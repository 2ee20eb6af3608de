//! `virtualized start ID`: the shim asks the agent to start the process;
//! then the poststart hooks run here, on the host (the runtime namespace of
//! a VM runtime), as the native runtime runs them in its `start`: a hook
//! that fails fails start, and the container is stopped.

use std::time::{Duration, Instant};

use container::state::Status;

use crate::shim::control::{self, Reply, Request};
use crate::shim::state::Store;

/// How long a start whose poststart hook failed waits for the container to
/// be recorded stopped.
const STOP_WAIT: Duration = Duration::from_secs(5);

pub fn run(store: &Store, a: native::commands::start::Args) -> anyhow::Result<i32> {
    let r = store.load(&a.id)?;
    let status = r.status();
    if !status.can_start() {
        return Err(container::state::Error::Illegal {
            id: a.id,
            status,
            op: "start",
        }
        .into());
    }
    match control::call(&store.dir(&a.id), &Request::Start, &[])?.reply()? {
        Reply::Ok => {}
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("start: unexpected answer from the shim: {other:?}"),
    }
    // The hooks run here rather than in the shim: a program that ends at
    // once takes the shim with it, and the hooks must not go with it.
    let Ok(spec) = container::config::load(&r.bundle) else {
        return Ok(0);
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    if let Err(e) = crate::shim::hooks::poststart(&hooks, &r.oci_as(Status::Running)) {
        stop(store, &a.id);
        return Err(e.into());
    }
    Ok(0)
}

/// SIGKILLs the container's process and waits (a while) until its shim has
/// recorded the end. A process that ended meanwhile took its shim with it:
/// there is nothing to stop then.
fn stop(store: &Store, id: &str) {
    let kill = Request::Kill {
        signal: libc::SIGKILL,
        all: false,
    };
    let _ = control::call(&store.dir(id), &kill, &[]).and_then(|mut c| c.reply());
    let t = Instant::now();
    while t.elapsed() < STOP_WAIT {
        match store.load(id) {
            Ok(r) if r.status() != Status::Stopped => std::thread::sleep(Duration::from_millis(10)),
            _ => return,
        }
    }
}
