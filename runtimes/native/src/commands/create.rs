//! `native create [--bundle DIR] [--pid-file F] [--console-socket S] ID`.

use std::path::PathBuf;

use container::launch::{self, CreateOptions};
use container::state::Store;

use crate::log::Logger;
use crate::Flavor;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle directory (default: the current directory).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Pass N extra fds (3, 4, ...) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility; no session keyring is made.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    pub id: String,
}

impl Args {
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds + listen_fds(),
            no_pivot: self.no_pivot,
            mediation: None,
        }
    }
}

/// Socket activation: LISTEN_FDS fds from 3 on are passed through as well.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn run(store: &Store, a: Args, log: &Logger, flavor: &dyn Flavor) -> anyhow::Result<i32> {
    let mut opts = a.options();
    flavor.prepare(store, &mut opts)?;
    let (r, warnings) = launch::create(store, &opts).inspect_err(|_| flavor.abandon(store, &opts))?;
    flavor.created(store, &opts)?;
    for w in warnings {
        log.warn(&w);
    }
    log.debug(&format!("created {} with init pid {}", r.id, r.pid));
    Ok(0)
}
