//! `native run [--detach] ... ID`: create and start; in the foreground, wait
//! for the process and exit with its status, then delete the container.

use container::state::Store;

use crate::log::Logger;
use crate::Flavor;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Return once the program started.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

pub fn run(store: &Store, a: RunArgs, log: &Logger, flavor: &dyn Flavor) -> anyhow::Result<i32> {
    let mut opts = a.create.options();
    flavor.prepare(store, &mut opts)?;
    let (r, warnings) = container::launch::create(store, &opts).inspect_err(|_| flavor.abandon(store, &opts))?;
    flavor.created(store, &opts)?;
    for w in warnings {
        log.debug(&w);
    }
    if let Err(e) = container::launch::start(store, &r.id) {
        let _ = container::launch::delete(store, &r.id, true);
        flavor.deleted(store, &r.id);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    // The init is our child (cloned by create in this process).
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out pointer.
    unsafe { libc::waitpid(r.pid, &mut status, 0) };
    for w in container::launch::delete(store, &r.id, true)? {
        log.warn(&w);
    }
    flavor.deleted(store, &r.id);
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    })
}
