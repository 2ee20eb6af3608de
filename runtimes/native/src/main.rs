//! `native`: the bundled runtime of runc's class. A thin CLI over the
//! `container` library, speaking the command line containerd, podman and
//! conmon use; one module per verb in `commands/`.

mod commands;
mod log;

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(name = "native", version, about = "OCI runtime of runc's class")]
pub struct Cli {
    /// Where container state lives.
    #[arg(long, global = true, default_value = "/run/oci-native")]
    root: PathBuf,
    /// Also write errors and warnings to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    log_format: log::Format,
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (unsupported without systemd).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.clone(), cli.log_format, cli.debug);
    if cli.systemd_cgroup && !std::path::Path::new("/run/systemd/system").exists() {
        logger.error("--systemd-cgroup: systemd is not running on this host; use the cgroupfs driver");
        std::process::exit(1);
    }
    let code = match commands::run(&cli.root, cli.command, &logger) {
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
        assert_eq!(cli.root, std::path::Path::new("/r"));
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
