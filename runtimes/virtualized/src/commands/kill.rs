//! `virtualized kill [--all] ID [SIGNAL]`: the signal goes to the process
//! in the guest, through the shim and the agent.

use crate::shim::control::{self, Reply, Request};
use crate::shim::state::Store;

pub fn run(store: &Store, a: native::commands::kill::Args) -> anyhow::Result<i32> {
    let signal = container::launch::parse_signal(&a.signal)?;
    let r = store.load(&a.id)?;
    let status = r.status();
    if !status.can_kill() {
        return Err(container::state::Error::Illegal {
            id: a.id,
            status,
            op: "kill",
        }
        .into());
    }
    let req = Request::Kill { signal, all: a.all };
    match control::call(&store.dir(&a.id), &req, &[])?.reply()? {
        Reply::Ok => Ok(0),
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("kill: unexpected answer from the shim: {other:?}"),
    }
}
