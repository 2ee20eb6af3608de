//! `virtualized exec [flags] ID [COMMAND ARGS...]` or `--process FILE`:
//! another process in the container, run by the agent in the guest, with
//! this command's stdio relayed by the shim.

use std::os::fd::BorrowedFd;

use anyhow::Context;
use native::commands::exec::Args;
use oci_spec::runtime::Process;

use crate::shim::control::{self, Reply, Request};
use crate::shim::state::Store;

fn process(store: &Store, a: &Args) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read_to_string(path).with_context(|| format!("--process {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("--process {}", path.display()));
    }
    if a.args.is_empty() {
        anyhow::bail!("exec: a command to run is required (or --process FILE)");
    }
    let r = store.load(&a.id)?;
    let spec = container::config::load(&r.bundle)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(false));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let bad = || anyhow::anyhow!("--user: {u:?} is not UID[:GID]");
        user.set_uid(uid.parse().map_err(|_| bad())?);
        user.set_gid(gid.parse().map_err(|_| bad())?);
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

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
    let p = process(store, &a)?;
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
