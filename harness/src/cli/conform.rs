//! `harness conform --runtime PATH`.

use std::path::PathBuf;

use anyhow::bail;
use harness::render::Format;
use harness::runner::{self, Progress};
use harness::runtime::Runtime;

#[derive(clap::Args)]
pub struct Args {
    /// The runtime binary: a path, or a name looked up in PATH.
    #[arg(long)]
    runtime: String,
    /// A global flag for the runtime, placed before the verb; repeatable
    /// (`--runtime-arg=--network=none` for runsc).
    #[arg(long = "runtime-arg", allow_hyphen_values = true)]
    runtime_args: Vec<String>,
    /// Cases to run: ids, groups (`process` or `process::`), or `prefix*`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Cases to leave out, in the same forms.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Cases run at once (default: the number of CPUs).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the rendering here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Seconds one runtime operation (or a container's run) may take.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    timeout: f64,
    #[command(flatten)]
    host: super::host::HostArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let timeout = super::host::timeout(a.timeout)?;
    if a.jobs == Some(0) {
        bail!("--jobs must be at least 1, got 0");
    }
    let host = a.host.prepare()?;
    let runtime = Runtime::resolve(&a.runtime, a.runtime_args.clone(), timeout)?;
    let probe = host.probe.clone();
    let cases = harness::cases::select(harness::cases::all(), &a.only, &a.skip).map_err(anyhow::Error::msg)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let opts = runner::Options {
        jobs,
        workdir: host.workdir.clone(),
        timeout,
        command: std::env::args().collect(),
    };
    let tty = super::stderr_is_tty();
    let progress = move |p: Progress| super::case_progress(tty, p.done, p.total, p.last);
    let results = runner::run(&cases, &runtime, &probe, &opts, &progress)?;
    super::finish(&results, a.format, a.output.as_deref())
}
