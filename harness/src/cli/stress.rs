//! `harness stress --runtime PATH`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use harness::runtime::Runtime;
use harness::stress::run::{self, Limit};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// The runtime binary: a bundled name, a name in PATH, or a path.
    #[arg(long)]
    runtime: String,
    /// A global flag for the runtime, placed before the verb; repeatable.
    #[arg(long = "runtime-arg", allow_hyphen_values = true)]
    runtime_args: Vec<String>,
    /// Lifecycles running at once, each worker with its own ids.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Lifecycles in all (default 1000, unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Begin lifecycles for this long instead: `60s`, `2m`, `500ms` or seconds.
    #[arg(long)]
    duration: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the rendering here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Seconds one runtime operation (or the probe's exit) may take.
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    timeout: f64,
    #[command(flatten)]
    host: super::host::HostArgs,
}

/// Parses `60s`, `2m`, `500ms`, `1.5` (seconds).
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0 && v.is_finite()).then(|| Duration::from_secs_f64(v * scale))
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let timeout = super::host::timeout(a.timeout)?;
    if a.parallel == 0 {
        bail!("--parallel must be at least 1, got 0");
    }
    if a.count == Some(0) {
        bail!("--count must be at least 1, got 0");
    }
    let limit = match &a.duration {
        Some(d) => Limit::Duration(
            parse_duration(d).with_context(|| format!("--duration must be like 60s, 2m or 500ms, got {d:?}"))?,
        ),
        None => Limit::Count(a.count.unwrap_or(1000)),
    };
    let host = a.host.prepare()?;
    let runtime = Runtime::resolve(&a.runtime, a.runtime_args.clone(), timeout)?;
    let probe = host.probe.clone();
    let opts = run::Options {
        parallel: a.parallel,
        limit,
        workdir: host.workdir.clone(),
        timeout,
        command: std::env::args().collect(),
    };
    let tty = super::stderr_is_tty();
    let total = match limit {
        Limit::Count(n) => n as usize,
        Limit::Duration(_) => 0,
    };
    let progress = move |done: u64| {
        if total > 0 {
            super::draw_progress(tty, done as usize, total, "lifecycles");
        }
    };
    let report = run::run(&runtime, &probe, &opts, &progress)?;
    let table = run::table(&report);
    let (text, also) = match a.format {
        Format::Table => (table, None),
        Format::Json => (serde_json::to_string_pretty(&report)? + "\n", Some(table)),
    };
    super::emit(&text, a.output.as_deref(), also)?;
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_usual_units() {
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
    }
}
