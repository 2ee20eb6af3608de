//! `harness`: a thin CLI over the library; one module per verb in `cli/`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
