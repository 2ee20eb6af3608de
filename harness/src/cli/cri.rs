//! `harness cri --endpoint unix:///PATH`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use harness::render::Format;
use harness::runner::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// The CRI endpoint: unix:///PATH.
    #[arg(long)]
    endpoint: String,
    /// The runtime handler pods ask for (default: the endpoint's default).
    #[arg(long, default_value = "")]
    runtime_handler: String,
    /// A registry HOST:PORT the endpoint can pull from over plain HTTP; by
    /// default Debian's docker-registry is started on loopback.
    #[arg(long)]
    registry: Option<String>,
    /// Cases to run: ids, groups (`pod` or `pod::`), or `prefix*`.
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
    /// Seconds one CRI call (or a wait for a container) may take.
    #[arg(long, default_value_t = 30.0, allow_negative_numbers = true)]
    timeout: f64,
    /// The probe binary put in the test image (default: beside the harness).
    #[arg(long)]
    probe: Option<PathBuf>,
    /// Where case directories are made (default: the temp directory). The
    /// endpoint writes container logs there: it must see the same path.
    #[arg(long)]
    workdir: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds, got {}", a.timeout);
    }
    if a.jobs == Some(0) {
        bail!("--jobs must be at least 1, got 0");
    }
    harness::cri::client::socket_path(&a.endpoint)?;
    let probe = match a.probe {
        Some(p) => p,
        None => harness::find_probe()
            .context("the probe binary is not beside the harness; build it with `cargo build` or pass --probe")?,
    };
    let cases =
        harness::cri::cases::select(harness::cri::cases::all(), &a.only, &a.skip).map_err(anyhow::Error::msg)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let opts = harness::cri::runner::Options {
        endpoint: a.endpoint,
        handler: a.runtime_handler,
        registry: a.registry,
        probe,
        jobs,
        workdir: a.workdir.unwrap_or_else(std::env::temp_dir),
        timeout: Duration::from_secs_f64(a.timeout),
        command: std::env::args().collect(),
    };
    let tty = super::stderr_is_tty();
    let progress = move |p: Progress| super::case_progress(tty, p.done, p.total, p.last);
    let results = harness::cri::runner::run(&cases, &opts, &progress)?;
    super::finish(&results, a.format, a.output.as_deref())
}
