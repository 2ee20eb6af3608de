//! `virtualized run [--detach] ... ID`: create and start; in the
//! foreground, wait for the shim (which ends with the container's status),
//! pass signals on to it, then delete the container.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicI32, Ordering};

use native::commands::run::RunArgs;
use native::log::Logger;

use crate::shim::state::Store;

static SHIM: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(sig: libc::c_int) {
    let pid = SHIM.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; it signals our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn run(store: &Store, a: RunArgs, log: &Logger) -> anyhow::Result<i32> {
    let id = a.create.id.clone();
    let mut l = super::create::launch(store, &a.create)?;
    if let Err(e) = super::start::run(store, native::commands::start::Args { id: id.clone() }) {
        let r = store.load(&id);
        if let Ok(r) = &r {
            let _ = super::delete::stop(r);
        }
        let _ = l.child.wait();
        // As a forced delete would: poststop hooks, then the state.
        match r {
            Ok(r) => {
                let _ = super::delete::destroy(store, &r, log);
            }
            Err(_) => {
                let _ = store.remove(&id);
            }
        }
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    SHIM.store(l.pid, Ordering::SeqCst);
    let handler: extern "C" fn(libc::c_int) = pass_on;
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: the handler only calls kill(2), which is async-signal-safe,
        // and lives for the program.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    let status = l.child.wait()?;
    SHIM.store(0, Ordering::SeqCst);
    let ended = match store.load(&id) {
        Ok(r) => super::delete::destroy(store, &r, log),
        Err(_) => store.remove(&id).map_err(anyhow::Error::from),
    };
    if let Err(e) = ended {
        log.warn(&format!("{e:#}"));
    }
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    })
}
