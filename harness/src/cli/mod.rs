//! Argument parsing and dispatch. Exit codes: 0 every case passed or was
//! skipped, 1 a case failed, 2 the harness itself could not run.

mod bench;
mod clauses;
mod conform;
mod cri;
mod faults;
mod fuzz;
mod gate;
mod host;
mod list;
mod report;
mod stress;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
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
    /// Check a CRI v1 endpoint (our `cri` server, containerd) against the CRI's contracts.
    Cri(cri::Args),
    /// Measure start latency, density and isolation overhead across runtimes.
    Bench(bench::Args),
    /// Many container lifecycles in parallel: throughput, latency, errors and leaks.
    Stress(stress::Args),
    /// Inject faults (SIGKILL mid-verb, races, a full disk, a removed bundle) and check the cleanup.
    Faults(faults::Args),
    /// Generated configs checked against what they promise and across runtimes.
    Fuzz(fuzz::Args),
    /// Render results files as a Markdown report and an HTML page with charts.
    Report(report::Args),
    /// Pass or fail a CI run against a baseline: new failures, significant regressions.
    Gate(gate::Args),
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
        Command::Cri(a) => cri::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Stress(a) => stress::run(a),
        Command::Faults(a) => faults::run(a),
        Command::Fuzz(a) => fuzz::run(a),
        Command::Report(a) => report::run(a),
        Command::Gate(a) => gate::run(a),
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

/// Draws `[====    ] done/total label` over one line of stderr when it is a
/// terminal, and clears it at the end; does nothing otherwise.
pub(crate) fn draw_progress(tty: bool, done: usize, total: usize, label: &str) {
    if !tty {
        return;
    }
    let width = 30;
    let filled = (done * width / total.max(1)).min(width);
    let line = format!(
        "\r[{}{}] {done}/{total} {label:<50}",
        "=".repeat(filled),
        " ".repeat(width - filled)
    );
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(line.as_bytes());
    if done >= total {
        let _ = e.write_all(b"\r\x1b[2K");
    }
    let _ = e.flush();
}

/// Whether the progress bar should be drawn.
pub(crate) fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Draws a finished case (marked when it failed) in the progress line.
pub(crate) fn case_progress(tty: bool, done: usize, total: usize, last: &harness::results::CaseResult) {
    let mark = if last.status == harness::results::Status::Failed {
        "FAIL "
    } else {
        ""
    };
    draw_progress(tty, done, total, &format!("{mark}{}", last.id));
}

/// Renders case results in `format` to `output` (or stdout), the table
/// beside another format, and gives the run's exit code.
pub(crate) fn finish(
    results: &harness::results::Results,
    format: harness::render::Format,
    output: Option<&Path>,
) -> anyhow::Result<i32> {
    let text = harness::render::render(results, format);
    let table = (format != harness::render::Format::Table).then(|| harness::render::table(results));
    emit(&text, output, table)?;
    Ok(results.exit_code())
}

/// Writes a rendering to `output`, or to stdout. When a file gets a form
/// other than the table, the terminal still gets the table (`table`).
pub(crate) fn emit(text: &str, output: Option<&Path>, table: Option<String>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing --output {}", path.display()))?;
            if let Some(t) = table {
                print!("{t}");
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}
