//! `virtualized`: see the library's documentation. One binary plays every
//! part; which one is decided here, before anything else runs.

use clap::{CommandFactory, FromArgMatches};

/// The native command line as the guest agent runs it (`virtualized native
/// ARGS...` inside the VM).
struct GuestNative;

impl native::Flavor for GuestNative {
    fn name(&self) -> &'static str {
        "virtualized-native"
    }
    fn default_root(&self) -> &'static str {
        "/run/oci-native"
    }
}

fn main() {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } == 1 {
        // PID 1 of the guest: the agent.
        virtualized::guest::main();
    }
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("shim") => virtualized::shim::main(&args[2..]),
        Some("native") => native::main_with_args(&GuestNative, args[1..].to_vec()),
        _ => {}
    }
    if virtualized::commands::port_forward::is_invoked(&args[1..]) {
        std::process::exit(virtualized::commands::port_forward::main(&args[1..]));
    }
    let matches = native::Cli::command()
        .name(virtualized::commands::NAME)
        .bin_name(virtualized::commands::NAME)
        .about("OCI runtime of Kata's class: each container in its own QEMU micro-VM")
        .get_matches();
    let cli = native::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    std::process::exit(virtualized::commands::main(cli));
}
