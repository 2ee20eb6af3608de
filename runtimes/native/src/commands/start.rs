//! `native start ID`.

use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    container::launch::start(store, &a.id)?;
    Ok(0)
}
