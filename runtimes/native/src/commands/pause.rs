//! `native pause ID` and `native resume ID`: the cgroup freezer.

use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(store: &Store, a: Args, pause: bool) -> anyhow::Result<i32> {
    container::launch::set_paused(store, &a.id, pause)?;
    Ok(0)
}
