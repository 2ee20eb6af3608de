//! `native kill [--all] ID [SIGNAL]` (SIGTERM by default, as runc).

use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    container::launch::kill(store, &a.id, &a.signal, a.all)?;
    Ok(0)
}
