//! `virtualized exec [flags] ID [COMMAND ARGS...]` or `--process FILE`:
//! another process in the container, run by the agent in the guest, with
//! this command's stdio (or, with `--tty`, a terminal) relayed by the shim.
//! Unless detached, this command is the process's stand-in on the host:
//! `--pid-file` names it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::Context;
use native::commands::exec::Args;

use crate::shim::control::{self, Reply, Request};
use crate::shim::pty;
use crate::shim::state::Store;

/// Set in the environment of a detached exec's stand-in: the fd on which
/// it says it holds the process (`ok`) or why it could not.
const READY_FD_ENV: &str = "VIRTUALIZED_EXEC_READY_FD";

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    if a.pid_file.is_some() && a.detach {
        // containerd's way (`exec --detach --pid-file`): the pid must be a
        // host process that ends with the exec'd one, and the caller reaps
        // it (as runc's detached process is reparented to the caller's
        // subreaper). That is a stand-in: this command again, not detached.
        return detach_stand_in(&a.id);
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
        Reply::Error { message } => {
            tell_ready(Err(&message));
            anyhow::bail!("{message}")
        }
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
    tell_ready(Ok(()));
    drop(pty);
    match call.reply()? {
        Reply::Exited { status } => Ok(status.as_shell_code()),
        Reply::Error { message } => anyhow::bail!("{message}"),
        Reply::Ok => anyhow::bail!("exec: the shim answered twice"),
    }
}

/// Starts this command again without `--detach` (the stand-in), waits until
/// it holds the process and wrote the pid file, and leaves it running.
fn detach_stand_in(id: &str) -> anyhow::Result<i32> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // The flag goes, not a `-d` of the command after the container's id.
    let end = argv.iter().position(|a| a == id).unwrap_or(argv.len());
    if let Some(i) = argv[..end].iter().position(|a| a == "--detach" || a == "-d") {
        argv.remove(i);
    }
    let (mut ready_r, ready_w) = std::os::unix::net::UnixStream::pair().context("exec --detach: a pipe")?;
    let fd = ready_w.as_raw_fd();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(&argv).env(READY_FD_ENV, fd.to_string());
    // SAFETY: runs between fork and exec; fcntl is async-signal-safe and
    // touches only the inherited fd.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Its own session: the caller's terminal signals are not its.
            libc::setsid();
            Ok(())
        })
    };
    let mut child = cmd.spawn().context("exec --detach: starting the stand-in")?;
    drop(ready_w);
    let mut word = String::new();
    let _ = ready_r.read_to_string(&mut word);
    match word.strip_prefix("ok") {
        Some(_) => Ok(0),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let why = word
                .strip_prefix("error ")
                .unwrap_or("the stand-in ended before the process ran");
            anyhow::bail!("exec --detach: {why}")
        }
    }
}

/// A detached exec's stand-in tells the command that started it whether it
/// holds the process; elsewhere a no-op.
fn tell_ready(r: Result<(), &str>) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let Some(fd) = std::env::var(READY_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok()) else {
        return;
    };
    std::env::remove_var(READY_FD_ENV);
    // SAFETY: the fd was passed to this process for this one message and
    // nothing else in it uses it.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = match r {
        Ok(()) => f.write_all(b"ok"),
        Err(why) => f.write_all(format!("error {why}").as_bytes()),
    };
}
