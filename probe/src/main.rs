//! `probe COMMAND [ARG...]`: the multi-call binary inside every test rootfs.
//! argv[0] is ignored; see `probe::cli::USAGE`.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = probe::cli::run(&args);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code);
}
