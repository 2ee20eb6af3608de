//! `native delete [--force] ID`.

use container::state::Store;

use crate::log::Logger;
use crate::Flavor;

#[derive(clap::Args)]
pub struct Args {
    /// Kill the container first if it still runs.
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

pub fn run(store: &Store, a: Args, log: &Logger, flavor: &dyn Flavor) -> anyhow::Result<i32> {
    if a.force && matches!(store.load(&a.id), Err(container::state::Error::NotFound(_))) {
        // What a create or delete killed half-way left goes too; then, as
        // runc: a forced delete of an unknown container is not an error.
        container::launch::delete_abandoned(store, &a.id)?;
        // The flavor's side (a supervisor) may exist with no directory yet.
        flavor.deleted(store, &a.id);
        return Ok(0);
    }
    for w in container::launch::delete(store, &a.id, a.force)? {
        log.warn(&w);
    }
    flavor.deleted(store, &a.id);
    Ok(0)
}
