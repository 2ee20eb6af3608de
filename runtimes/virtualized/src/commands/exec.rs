//! `virtualized exec [flags] ID [COMMAND ARGS...]` or `--process FILE`:
//! another process in the container, run by the agent in the guest, with
//! this command's stdio (or, with `--tty`, a terminal) relayed by the shim.
//! Unless detached, this command is the process's stand-in on the host:
//! `--pid-file` names it.

use std::os::fd::{AsFd, BorrowedFd};

use anyhow::Context;
use native::commands::exec::Args;

use crate::shim::control::{self, Reply, Request};
use crate::shim::pty;
use crate::shim::state::Store;

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    if a.pid_file.is_some() && a.detach {
        anyhow::bail!(
            "exec --detach --pid-file: the exec'd process lives in the guest; only an exec that stays (its host \
             stand-in) has a host pid"
        );
    }
    if a.preserve_fds > 0 {
        anyhow::bail!("exec --preserve-fds: host file descriptors cannot be passed into the container's VM");
    }
    if a.console_socket.is_some() && !a.tty {
        anyhow::bail!("exec --console-socket is only for --tty");
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
    // With --console-socket, the terminal is a new pty whose master goes
    // there; with --tty alone it is this command's own.
    let pty = match &a.console_socket {
        Some(sock) => {
            let size = p.console_size().as_ref().map(|s| (s.height() as u16, s.width() as u16));
            let (master, slave) = pty::open(size).context("exec --tty")?;
            pty::send_master(sock, &master)?;
            Some(slave)
        }
        None => None,
    };
    if a.tty && pty.is_none() && pty::size(&std::io::stdin()).is_err() {
        anyhow::bail!("exec --tty without --console-socket: stdin is not a terminal");
    }
    let req = Request::Exec {
        process: serde_json::to_value(&p)?,
        detach: a.detach,
    };
    let stdio: [BorrowedFd<'_>; 3] = match &pty {
        Some(t) => [t.as_fd(), t.as_fd(), t.as_fd()],
        // SAFETY: fds 0, 1 and 2 are open for the life of this process; the
        // borrows end when the request is sent.
        None => unsafe {
            [
                BorrowedFd::borrow_raw(0),
                BorrowedFd::borrow_raw(1),
                BorrowedFd::borrow_raw(2),
            ]
        },
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
    // This process stands for the exec'd one on the host, as the shim does
    // for the container: it ends with its status, and killing it kills the
    // process in the guest (the shim sees the connection close).
    if let Some(path) = &a.pid_file {
        super::create::write_pid_file(path, std::process::id() as i32)?;
    }
    drop(pty);
    match call.reply()? {
        Reply::Exited { status } => Ok(status.as_shell_code()),
        Reply::Error { message } => anyhow::bail!("{message}"),
        Reply::Ok => anyhow::bail!("exec: the shim answered twice"),
    }
}
