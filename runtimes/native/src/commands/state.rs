//! `native state ID`: the OCI state document.

use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let r = store.load(&a.id)?;
    println!("{}", serde_json::to_string_pretty(&store.oci(&r))?);
    Ok(0)
}
