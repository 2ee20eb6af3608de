//! One module per verb of the runc-compatible command line (parsed by
//! `native::Cli`), each a thin call into the shim or the state store.

pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod port_forward;
pub mod run;
pub mod start;
pub mod state;
pub mod unsupported;

use std::path::PathBuf;

use native::commands::Command;
use native::log::Logger;

use crate::shim::state::Store;

/// The binary's name, for `--help` and log lines.
pub const NAME: &str = "virtualized";

/// Where container state lives unless `--root` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/oci-virtualized";

/// Runs the parsed command line; returns the exit status.
pub fn main(cli: native::Cli) -> i32 {
    let logger = Logger::new(NAME, cli.log.clone(), cli.log_format, cli.debug);
    if cli.systemd_cgroup && !std::path::Path::new("/run/systemd/system").exists() {
        logger.error("--systemd-cgroup: systemd is not running on this host; use the cgroupfs driver");
        return 1;
    }
    let root = cli.root.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    match run(Store::new(&root), cli.command, &logger) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    }
}

fn run(store: Store, cmd: Command, log: &Logger) -> anyhow::Result<i32> {
    match cmd {
        Command::Create(a) => create::run(&store, a, log),
        Command::Start(a) => start::run(&store, a),
        Command::State(a) => state::run(&store, a),
        Command::Kill(a) => kill::run(&store, a),
        Command::Delete(a) => delete::run(&store, a, log),
        Command::Run(a) => run::run(&store, a, log),
        Command::Exec(a) => exec::run(&store, a),
        Command::Features => features::run(),
        Command::Spec(a) => native::commands::spec::run(a),
        Command::List(a) => list::run(&store, a),
        Command::Pause(_) => unsupported::run("pause"),
        Command::Resume(_) => unsupported::run("resume"),
        Command::Ps(_) => unsupported::run("ps"),
        Command::Update(_) => unsupported::run("update"),
    }
}
