//! `harness bench --runtime A --runtime B ...`, and `--cri ENDPOINT ...`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use harness::bench::results::Phase;
use harness::bench::{self, CriOptions, CriTarget, Progress, Target, Workload, WORKLOADS};
use harness::render::bench::{self as render, Format};
use harness::runtime::Runtime;

#[derive(clap::Args)]
pub struct Args {
    /// A runtime to measure, repeatable; the first is the baseline of every
    /// ratio. A bundled name (`native`), a name in PATH or a path, optionally
    /// with global flags and a label: `runsc --network=none`,
    /// `gvisor=/usr/bin/runsc --network=none`.
    #[arg(long = "runtime", required_unless_present = "cri")]
    runtimes: Vec<String>,
    /// A CRI endpoint to measure in the `cri` phase, repeatable; the first
    /// is the baseline of the phase's ratios. `unix:///PATH`, optionally
    /// with a label: `ours=unix:///run/cri.sock`.
    #[arg(long = "cri")]
    cri: Vec<String>,
    /// The runtime handler CRI pods ask for (default: the endpoint's).
    #[arg(long, default_value = "")]
    runtime_handler: String,
    /// A registry HOST:PORT every CRI endpoint can pull from over plain
    /// HTTP; by default Debian's docker-registry is started on loopback.
    #[arg(long)]
    registry: Option<String>,
    /// Pods (each with its container) started at once in a CRI parallel round.
    #[arg(long, default_value_t = 10)]
    cri_pods: usize,
    /// CRI parallel rounds.
    #[arg(long, default_value_t = 5)]
    cri_rounds: usize,
    /// CRI pods in the host's network namespace, so that no endpoint sets
    /// up a pod network (containerd runs CNI plugins, ours does not).
    #[arg(long)]
    cri_host_network: bool,
    /// Phases to run (default: lifecycle, density and overhead with
    /// `--runtime`, and cri with `--cri`).
    #[arg(long, value_delimiter = ',')]
    phases: Vec<String>,
    /// Measured lifecycle iterations per runtime.
    #[arg(short = 'n', long, default_value_t = 30)]
    iterations: usize,
    /// Unmeasured lifecycle iterations first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Containers started at once in a density round.
    #[arg(long, default_value_t = 10)]
    density: usize,
    /// Density rounds: each gives one throughput and one memory figure per
    /// runtime, and the gate needs five a side to judge one.
    #[arg(long, default_value_t = 5)]
    density_rounds: usize,
    /// Isolation-overhead workloads (default: all).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Rounds of the overhead workloads (host, then each runtime in turn).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured batches per workload run.
    #[arg(long, default_value_t = 10)]
    batches: usize,
    /// Milliseconds each batch aims to take.
    #[arg(long, default_value_t = 20)]
    batch_ms: u64,
    /// On a hybrid cgroup host, run in a private mount namespace without the
    /// cgroup2 mount, so runtimes that refuse hybrid mode (crun 1.8) can be
    /// measured; every runtime then sees the same v1 host.
    #[arg(long)]
    hybrid_as_v1: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the rendering here; the table still goes to stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Seconds one runtime operation (or one workload run) may take.
    #[arg(long, default_value_t = 30.0, allow_negative_numbers = true)]
    timeout: f64,
    /// The probe binary (default: beside the harness).
    #[arg(long)]
    probe: Option<PathBuf>,
    /// Where bundles and state go (default: the temp directory).
    #[arg(long)]
    workdir: Option<PathBuf>,
}

/// `[LABEL=]BINARY [FLAG...]`: label, binary, global flags.
pub fn parse_runtime(spec: &str) -> anyhow::Result<(String, String, Vec<String>)> {
    let mut words = spec.split_whitespace();
    let Some(first) = words.next() else {
        bail!("--runtime: empty value {spec:?}");
    };
    let flags: Vec<String> = words.map(str::to_string).collect();
    let (label, binary) = match first.split_once('=') {
        Some((l, b)) if !l.contains('/') => {
            if l.is_empty() || b.is_empty() {
                bail!("--runtime: label and binary must both be given, got {spec:?}");
            }
            (l.to_string(), b.to_string())
        }
        _ => {
            let base = first.rsplit('/').next().unwrap_or(first);
            (base.to_string(), first.to_string())
        }
    };
    if let Some(bad) = flags.iter().find(|f| !f.starts_with('-')) {
        bail!("--runtime {spec:?}: global flag {bad:?} does not start with `-`");
    }
    Ok((label, binary, flags))
}

/// `[LABEL=]unix:///PATH`: label and endpoint; the label defaults to the
/// socket's file name without its extension.
pub fn parse_endpoint(spec: &str) -> anyhow::Result<(String, String)> {
    let spec = spec.trim();
    let (label, endpoint) = match spec.split_once('=') {
        Some((l, e)) if !l.contains(['/', ':']) => (Some(l), e),
        _ => (None, spec),
    };
    let path = harness::cri::client::socket_path(endpoint).with_context(|| format!("--cri {spec:?}"))?;
    let label = match label {
        Some("") => bail!("--cri: empty label in {spec:?}"),
        Some(l) => l.to_string(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .with_context(|| {
                format!("--cri {spec:?}: no socket file name to label it by; give a label (`name={spec}`)")
            })?,
    };
    Ok((label, format!("unix://{}", path.display())))
}

/// The phases asked for, or the defaults for what is measured.
fn phases(names: &[String], runtimes: bool, cri: bool) -> anyhow::Result<Vec<Phase>> {
    if names.is_empty() {
        let mut v = Vec::new();
        if runtimes {
            v.extend([Phase::Lifecycle, Phase::Density, Phase::Overhead]);
        }
        if cri {
            v.push(Phase::Cri);
        }
        return Ok(v);
    }
    let mut v = Vec::new();
    for n in names {
        let p = match n.as_str() {
            "lifecycle" => Phase::Lifecycle,
            "density" => Phase::Density,
            "overhead" => Phase::Overhead,
            "cri" => Phase::Cri,
            other => bail!("--phases: unknown phase {other:?} (known: lifecycle, density, overhead, cri)"),
        };
        if p == Phase::Cri && !cri {
            bail!("--phases: the cri phase needs at least one --cri ENDPOINT");
        }
        if p != Phase::Cri && !runtimes {
            bail!("--phases: the {n} phase needs at least one --runtime");
        }
        if !v.contains(&p) {
            v.push(p);
        }
    }
    Ok(v)
}

fn workloads(names: &[String]) -> anyhow::Result<Vec<Workload>> {
    if names.is_empty() {
        return Ok(WORKLOADS.to_vec());
    }
    names
        .iter()
        .map(|n| {
            bench::overhead_workload(n).with_context(|| {
                let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
                format!("--workloads: unknown workload {n:?} (known: {})", known.join(", "))
            })
        })
        .collect()
}

fn progress_bar() -> Box<dyn FnMut(Progress)> {
    let tty = super::stderr_is_tty();
    Box::new(move |p: Progress| super::draw_progress(tty, p.done, p.total, &p.what))
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds, got {}", a.timeout);
    }
    let phases = phases(&a.phases, !a.runtimes.is_empty(), !a.cri.is_empty())?;
    let positive = |name: &str, v: usize, needed: bool| -> anyhow::Result<()> {
        if needed && v == 0 {
            bail!("--{name} must be at least 1, got 0");
        }
        Ok(())
    };
    let timed_iterations = phases.contains(&Phase::Lifecycle) || phases.contains(&Phase::Cri);
    positive("iterations", a.iterations, timed_iterations)?;
    positive("density", a.density, phases.contains(&Phase::Density))?;
    positive("density-rounds", a.density_rounds, phases.contains(&Phase::Density))?;
    positive("rounds", a.rounds, phases.contains(&Phase::Overhead))?;
    positive("cri-pods", a.cri_pods, phases.contains(&Phase::Cri))?;
    positive("cri-rounds", a.cri_rounds, phases.contains(&Phase::Cri))?;
    if a.batches < 2 {
        bail!("--batches must be at least 2, got {}", a.batches);
    }
    if a.batch_ms == 0 {
        bail!("--batch-ms must be at least 1, got 0");
    }
    let workloads = workloads(&a.workloads)?;
    // Before any thread exists: the mount namespace is per thread.
    let hidden = if a.hybrid_as_v1 {
        harness::host::hide_hybrid_cgroup2().context("--hybrid-as-v1: hiding the cgroup2 mount")?
    } else {
        false
    };
    let timeout = Duration::from_secs_f64(a.timeout);
    let mut targets: Vec<Target> = Vec::new();
    for spec in &a.runtimes {
        let (name, binary, flags) = parse_runtime(spec)?;
        if targets.iter().any(|t| t.name == name) {
            bail!("--runtime: two runtimes are named {name:?}; give one a label (`other={binary}`)");
        }
        if name == bench::results::HOST {
            bail!("--runtime: the label {name:?} is reserved for workloads run on the host");
        }
        let runtime = Runtime::resolve(&binary, flags, timeout).with_context(|| format!("--runtime {spec:?}"))?;
        targets.push(Target { name, runtime });
    }
    let mut endpoints: Vec<CriTarget> = Vec::new();
    for spec in &a.cri {
        let (name, endpoint) = parse_endpoint(spec)?;
        if targets.iter().any(|t| t.name == name) || endpoints.iter().any(|t| t.name == name) {
            bail!("--cri {spec:?}: the name {name:?} is taken; give it a label (`other={endpoint}`)");
        }
        if name == bench::results::HOST {
            bail!("--cri: the label {name:?} is reserved for workloads run on the host");
        }
        endpoints.push(CriTarget { name, endpoint });
    }
    let cri = (!endpoints.is_empty()).then(|| CriOptions {
        targets: endpoints,
        handler: a.runtime_handler.clone(),
        registry: a.registry.clone(),
        parallel_pods: a.cri_pods,
        parallel_rounds: a.cri_rounds,
        host_network: a.cri_host_network,
        timeout,
    });
    let probe = match a.probe {
        Some(p) => p,
        None => harness::find_probe()
            .context("the probe binary is not beside the harness; build it with `cargo build` or pass --probe")?,
    };
    let opts = bench::Options {
        phases,
        iterations: a.iterations,
        warmup: a.warmup,
        density: a.density,
        density_rounds: a.density_rounds,
        workloads,
        overhead_rounds: a.rounds,
        batches: a.batches,
        batch_ms: a.batch_ms,
        probe,
        workdir: a.workdir.unwrap_or_else(std::env::temp_dir),
        command: std::env::args().collect(),
        hybrid_as_v1: hidden,
        cri,
    };
    let results = bench::run(&targets, &opts, progress_bar())?;
    let text = render::render(&results, a.format);
    let table = (a.format != Format::Table).then(|| render::table(&results));
    super::emit(&text, a.output.as_deref(), table)?;
    Ok(results.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_specs() {
        assert_eq!(parse_runtime("runc").unwrap(), ("runc".into(), "runc".into(), vec![]));
        assert_eq!(
            parse_runtime("/usr/bin/runsc --network=none").unwrap(),
            ("runsc".into(), "/usr/bin/runsc".into(), vec!["--network=none".into()])
        );
        assert_eq!(
            parse_runtime("gvisor=runsc --network=none --oci-seccomp").unwrap().0,
            "gvisor"
        );
        assert!(parse_runtime("  ").is_err());
        assert!(parse_runtime("=runc").is_err());
        assert!(parse_runtime("runc create")
            .unwrap_err()
            .to_string()
            .contains("\"create\""));
    }

    #[test]
    fn endpoint_specs() {
        assert_eq!(
            parse_endpoint("ours=unix:///run/cri.sock").unwrap(),
            ("ours".into(), "unix:///run/cri.sock".into())
        );
        assert_eq!(
            parse_endpoint("unix:///run/containerd/containerd.sock").unwrap(),
            ("containerd".into(), "unix:///run/containerd/containerd.sock".into())
        );
        assert_eq!(
            parse_endpoint("/tmp/a=b/x.sock").unwrap(),
            ("x".into(), "unix:///tmp/a=b/x.sock".into())
        );
        assert!(parse_endpoint("=unix:///x.sock").is_err());
        let e = parse_endpoint("cd=tcp://127.0.0.1:1").unwrap_err();
        assert!(format!("{e:#}").contains("tcp://127.0.0.1:1"), "{e:#}");
    }

    #[test]
    fn phase_and_workload_names() {
        assert_eq!(
            phases(&["density".into(), "density".into()], true, false).unwrap(),
            vec![Phase::Density]
        );
        assert!(phases(&["speed".into()], true, true)
            .unwrap_err()
            .to_string()
            .contains("\"speed\""));
        assert_eq!(
            phases(&[], true, true).unwrap(),
            vec![Phase::Lifecycle, Phase::Density, Phase::Overhead, Phase::Cri]
        );
        assert_eq!(phases(&[], false, true).unwrap(), vec![Phase::Cri]);
        assert!(phases(&["cri".into()], true, false)
            .unwrap_err()
            .to_string()
            .contains("--cri"));
        assert!(phases(&["lifecycle".into()], false, true)
            .unwrap_err()
            .to_string()
            .contains("--runtime"));
        assert_eq!(workloads(&[]).unwrap().len(), WORKLOADS.len());
        let e = workloads(&["getpid".into(), "warp".into()]).unwrap_err().to_string();
        assert!(e.contains("\"warp\"") && e.contains("getpid"), "{e}");
    }
}
