//! `harness faults --runtime PATH`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use harness::render::{self, Format};
use harness::results::Status;
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
    /// The probe binary (default: beside the harness).
    #[arg(long)]
    probe: Option<PathBuf>,
    /// Where case directories are made (default: the temp directory).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// On a hybrid cgroup host, run without the cgroup2 mount (crun 1.8).
    #[arg(long)]
    hybrid_as_v1: bool,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds, got {}", a.timeout);
    }
    let cases = harness::cases::select_cases(faults::all(), &a.only, &a.skip, "fault").map_err(anyhow::Error::msg)?;
    if a.hybrid_as_v1 {
        // Before any thread exists: the mount namespace is per thread.
        harness::host::hide_hybrid_cgroup2().context("--hybrid-as-v1: hiding the cgroup2 mount")?;
    }
    let timeout = Duration::from_secs_f64(a.timeout);
    let runtime = Runtime::resolve(&a.runtime, a.runtime_args.clone(), timeout)?;
    let probe = match a.probe {
        Some(p) => p,
        None => harness::find_probe()
            .context("the probe binary is not beside the harness; build it with `cargo build` or pass --probe")?,
    };
    let opts = faults::Options {
        workdir: a.workdir.unwrap_or_else(std::env::temp_dir),
        timeout,
        command: std::env::args().collect(),
    };
    let tty = super::stderr_is_tty();
    let progress = move |done: usize, total: usize, last: &harness::results::CaseResult| {
        let mark = if last.status == Status::Failed { "FAIL " } else { "" };
        super::draw_progress(tty, done, total, &format!("{mark}{}", last.id));
    };
    let results = faults::run(&cases, &runtime, &probe, &opts, &progress)?;
    let text = render::render(&results, a.format);
    let table = (a.format != Format::Table).then(|| render::table(&results));
    super::emit(&text, a.output.as_deref(), table)?;
    Ok(results.exit_code())
}
