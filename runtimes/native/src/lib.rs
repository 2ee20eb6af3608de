//! The runc-compatible command line of the bundled runtimes: a thin CLI over
//! the `container` library, speaking the command line containerd, podman and
//! conmon use; one module per verb in `commands/`. The `native` binary runs
//! it as is; other runtimes (the sandboxed one) run it with a [`Flavor`]
//! that adds what makes them different.

pub mod commands;
pub mod log;

use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};
use container::launch::CreateOptions;
use container::state::Store;

/// What a runtime built on this command line changes about it.
pub trait Flavor {
    /// The binary's name, for `--help` and `--version`.
    fn name(&self) -> &'static str;
    /// Where container state lives unless `--root` says otherwise.
    fn default_root(&self) -> &'static str;
    /// Called by `create` and `run` before the container is made: may add
    /// to the options (a supervisor's mediation filter, say).
    fn prepare(&self, _store: &Store, _opts: &mut CreateOptions) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called when `create` (or `run`) failed after `prepare`: undo what
    /// `prepare` started.
    fn abandon(&self, _store: &Store, _opts: &CreateOptions) {}
    /// Called once the container exists (its state directory too).
    fn created(&self, _store: &Store, _opts: &CreateOptions) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called after a container was deleted (`delete`, or the end of a
    /// foreground `run`): stop what `prepare` started for it.
    fn deleted(&self, _store: &Store, _id: &str) {}
    /// The `features` document, from the library's.
    fn features(&self, doc: serde_json::Value) -> serde_json::Value {
        doc
    }
}

/// runc's class, as the library has it.
pub struct Native;

impl Flavor for Native {
    fn name(&self) -> &'static str {
        "native"
    }
    fn default_root(&self) -> &'static str {
        "/run/oci-native"
    }
}

#[derive(Parser)]
#[command(name = "native", version, about = "OCI runtime of runc's class")]
pub struct Cli {
    /// Where container state lives (default: the runtime's own, e.g. /run/oci-native).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Also write errors and warnings to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: log::Format,
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (unsupported without systemd).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: commands::Command,
}

/// Parses the command line as `flavor`'s binary and runs the verb; exits.
pub fn main_with(flavor: &dyn Flavor) -> ! {
    main_with_args(flavor, std::env::args().collect())
}

/// [`main_with`] on the given arguments (`args[0]` is the program name): for
/// a binary that runs this command line as one of its parts.
pub fn main_with_args(flavor: &dyn Flavor, args: Vec<String>) -> ! {
    let matches = Cli::command()
        .name(flavor.name())
        .bin_name(flavor.name())
        .get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let logger = log::Logger::new(flavor.name(), cli.log.clone(), cli.log_format, cli.debug);
    if cli.systemd_cgroup && !std::path::Path::new("/run/systemd/system").exists() {
        logger.error("--systemd-cgroup: systemd is not running on this host; use the cgroupfs driver");
        std::process::exit(1);
    }
    let root = cli.root.clone().unwrap_or_else(|| PathBuf::from(flavor.default_root()));
    let code = match commands::run(Path::new(&root), cli.command, &logger, flavor) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runc_style_global_flags_come_before_the_verb() {
        let cli = Cli::try_parse_from([
            "native",
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "id1",
        ])
        .unwrap();
        assert_eq!(cli.root.as_deref(), Some(std::path::Path::new("/r")));
        assert_eq!(cli.log_format, crate::log::Format::Json);
    }

    #[test]
    fn kill_defaults_to_sigterm_and_run_takes_create_flags() {
        Cli::try_parse_from(["native", "kill", "c1"]).unwrap();
        Cli::try_parse_from(["native", "run", "-d", "--bundle", "/b", "c1"]).unwrap();
        Cli::try_parse_from(["native", "delete", "--force", "c1"]).unwrap();
        Cli::try_parse_from(["native", "exec", "-e", "A=1", "c1", "/probe", "echo", "-n", "x"]).unwrap();
        Cli::try_parse_from(["native", "update", "-r", "-", "--memory", "-1", "c1"]).unwrap();
    }
}
