//! One module per verb; each parses nothing itself (clap did) and calls the
//! library.

pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::path::Path;

use clap::Subcommand;
use container::state::Store;

use crate::log::Logger;
use crate::Flavor;

#[derive(Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its program waits for `start`.
    Create(create::Args),
    /// Run the program of a created container.
    Start(start::Args),
    /// Print a container's state as JSON.
    State(state::Args),
    /// Send a signal to a container's process.
    Kill(kill::Args),
    /// Remove a stopped container.
    Delete(delete::Args),
    /// Run another process in a running container.
    Exec(exec::Args),
    /// Create and start a container; wait for it unless detached.
    Run(run::RunArgs),
    /// Print what this runtime supports (features.md).
    Features,
    /// Write a default config.json.
    Spec(spec::Args),
    /// List containers.
    List(list::Args),
    /// Freeze every process of a container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(pause::Args),
    /// List a container's processes.
    Ps(ps::Args),
    /// Change a container's resource limits.
    Update(update::Args),
}

pub fn run(root: &Path, cmd: Command, log: &Logger, flavor: &dyn Flavor) -> anyhow::Result<i32> {
    let store = Store::new(root);
    match cmd {
        Command::Create(a) => create::run(&store, a, log, flavor),
        Command::Start(a) => start::run(&store, a),
        Command::State(a) => state::run(&store, a),
        Command::Kill(a) => kill::run(&store, a),
        Command::Delete(a) => delete::run(&store, a, log, flavor),
        Command::Run(a) => run::run(&store, a, log, flavor),
        Command::Exec(a) => exec::run(&store, a),
        Command::Features => features::run(flavor),
        Command::Spec(a) => spec::run(a),
        Command::List(a) => list::run(&store, a),
        Command::Pause(a) => pause::run(&store, a, true),
        Command::Resume(a) => pause::run(&store, a, false),
        Command::Ps(a) => ps::run(&store, a),
        Command::Update(a) => update::run(&store, a),
    }
}
