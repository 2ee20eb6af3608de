//! `virtualized exec [flags] ID [COMMAND ARGS...]` or `--process FILE`:
//! another process in the container, run by the agent in the guest, with
//! this command's stdio relayed by the shim.

use std::os::fd::BorrowedFd;

use native::commands::exec::Args;

use crate::shim::control::{self, Reply, Request};
use crate::shim::state::Store;

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    if a.tty || a.console_socket.is_some() {
        anyhow::bail!("exec --tty: the virtualized runtime does not support a terminal for exec yet");
    }
    if a.pid_file.is_some() {
        anyhow::bail!("exec --pid-file: the exec'd process lives in the guest and has no host pid");
    }
    if a.preserve_fds > 0 {
        anyhow::bail!("exec --preserve-fds: host file descriptors cannot be passed into the container's VM");
    }
    let status = store.load(&a.id)?.status();
    if !status.can_exec() {
        return Err(container::state::Error::Illegal {
            id: a.id,
            status,
            op: "exec",
        }
        .into());
    }
    let p = native::commands::exec::process(&a, || {
        let spec = container::config::load(&store.load(&a.id)?.bundle)?;
        Ok(spec.process().clone().unwrap_or_default())
    })?;
    let req = Request::Exec {
        process: serde_json::to_value(&p)?,
        detach: a.detach,
    };
    // SAFETY: fds 0, 1 and 2 are open for the life of this process; the
    // borrows end when the request is sent.
    let stdio = unsafe {
        [
            BorrowedFd::borrow_raw(0),
            BorrowedFd::borrow_raw(1),
            BorrowedFd::borrow_raw(2),
        ]
    };
    let mut call = control::call(&store.dir(&a.id), &req, &stdio)?;
    match call.reply()? {
        Reply::Ok => {}
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("exec: unexpected answer from the shim: {other:?}"),
    }
    if a.detach {
        return Ok(0);
    }
    match call.reply()? {
        Reply::Exited { status } => Ok(status.as_shell_code()),
        Reply::Error { message } => anyhow::bail!("{message}"),
        Reply::Ok => anyhow::bail!("exec: the shim answered twice"),
    }
}
