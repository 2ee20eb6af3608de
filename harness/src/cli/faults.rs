//! `harness faults --runtime PATH`.

use std::path::PathBuf;

use harness::render::Format;
use harness::runtime::Runtime;
use harness::stress::faults;

#[derive(clap::Args)]
pub struct Args {
    /// The runtime binary: a bundled name, a name in PATH, or a path.
    #[arg(long)]
    runtime: String,
    /// A global flag for the runtime, placed before the verb; repeatable.
    #[arg(long = "runtime-arg", allow_hyphen_values = true)]
    runtime_args: Vec<String>,
    /// Faults to run: ids, groups (`sigkill_create`), or `prefix*`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Faults to leave out, in the same forms.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the rendering here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Seconds one runtime operation may take before it counts as wedged.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    timeout: f64,
    #[command(flatten)]
    host: super::host::HostArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let timeout = super::host::timeout(a.timeout)?;
    let cases = harness::cases::select_cases(faults::all(), &a.only, &a.skip, "fault").map_err(anyhow::Error::msg)?;
    let host = a.host.prepare()?;
    let runtime = Runtime::resolve(&a.runtime, a.runtime_args.clone(), timeout)?;
    let probe = host.probe.clone();
    let opts = faults::Options {
        workdir: host.workdir.clone(),
        timeout,
        command: std::env::args().collect(),
    };
    let tty = super::stderr_is_tty();
    let progress = move |done: usize, total: usize, last: &harness::results::CaseResult| {
        super::case_progress(tty, done, total, last)
    };
    let results = faults::run(&cases, &runtime, &probe, &opts, &progress)?;
    super::finish(&results, a.format, a.output.as_deref())
}
