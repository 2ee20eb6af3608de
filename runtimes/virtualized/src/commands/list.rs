//! `virtualized list [--format table|json] [-q]`.

use crate::shim::state::Store;

pub fn run(store: &Store, a: native::commands::list::Args) -> anyhow::Result<i32> {
    let states: Vec<serde_json::Value> = store
        .list()
        .iter()
        .filter_map(|id| store.load(id).ok())
        .map(|r| r.oci())
        .collect();
    native::commands::list::print(&states, &a)?;
    Ok(0)
}
