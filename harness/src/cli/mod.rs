//! Argument parsing and dispatch. Exit codes: 0 every case passed or was
//! skipped, 1 a case failed, 2 the harness itself could not run.

mod bench;
mod clauses;
mod conform;
mod list;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Conformance and benchmarking harness for OCI container runtimes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a runc-compatible runtime against the OCI runtime spec.
    Conform(conform::Args),
    /// Measure start latency, density and isolation overhead across runtimes.
    Bench(bench::Args),
    /// List the cases, with the clauses each enforces.
    List(list::Args),
    /// List the spec clauses, with how many cases cite each.
    Clauses(clauses::Args),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let r = match cli.command {
        Command::Conform(a) => conform::run(a),
        Command::Bench(a) => bench::run(a),
        Command::List(a) => list::run(a),
        Command::Clauses(a) => clauses::run(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("harness: {e:#}");
            2
        }
    }
}
