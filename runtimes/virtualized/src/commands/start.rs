//! `virtualized start ID`: the shim asks the agent to start the process.

use crate::shim::control::{self, Reply, Request};
use crate::shim::state::Store;

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
        Reply::Ok => Ok(0),
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("start: unexpected answer from the shim: {other:?}"),
    }
}
