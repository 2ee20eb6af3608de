//! `virtualized state ID`: the OCI state document; `pid` is the shim's.

use crate::shim::state::Store;

pub fn run(store: &Store, a: native::commands::state::Args) -> anyhow::Result<i32> {
    let r = store.load(&a.id)?;
    println!("{}", serde_json::to_string_pretty(&r.oci())?);
    Ok(0)
}
