//! `harness fuzz --runtime A [--runtime B...]`: generated configs, checked
//! against what they promise and across runtimes; `--replay DIR` runs one
//! reproducer again.

use std::path::PathBuf;

use anyhow::{bail, Context};
use harness::fuzz::{self, Options, Target};
use harness::runtime::Runtime;

#[derive(clap::Args)]
pub struct Args {
    /// A runtime: a bundled name, a name in PATH or a path, with its global
    /// flags and an optional label (`gvisor=runsc --network=none`); repeatable.
    #[arg(long = "runtime", required = true)]
    runtimes: Vec<String>,
    /// A global flag given to every runtime, before the verb; repeatable.
    #[arg(long = "runtime-arg", allow_hyphen_values = true)]
    runtime_args: Vec<String>,
    /// Configs to generate (one in five is an invalid config).
    #[arg(long, default_value_t = 100)]
    cases: usize,
    /// The seed of the generator (default: drawn and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Configs run at once (default: the number of CPUs).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Where fuzz.json and findings/<n>/ are written.
    #[arg(long, default_value = "fuzz-out")]
    output: PathBuf,
    /// Run the reproducer in this directory (findings/<n>) instead of
    /// generating configs: exit 1 if its finding shows again, 0 if not.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Container runs the shrinking of one finding may spend (0: no shrinking).
    #[arg(long, default_value_t = 48)]
    shrink_runs: usize,
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
    if a.cases == 0 && a.replay.is_none() {
        bail!("--cases must be at least 1, got 0");
    }
    if let Some(dir) = &a.replay {
        if !dir.join("finding.json").is_file() {
            bail!("--replay {}: no finding.json there", dir.display());
        }
    }
    let host = a.host.prepare()?;
    let mut targets: Vec<Target> = Vec::new();
    for spec in &a.runtimes {
        let (label, binary, mut flags) = super::bench::parse_runtime(spec)?;
        if targets.iter().any(|t| t.label == label) {
            bail!("--runtime: two runtimes are named {label:?}; give one a label (`other={binary}`)");
        }
        flags.extend(a.runtime_args.iter().cloned());
        let runtime = Runtime::resolve(&binary, flags, timeout).with_context(|| format!("--runtime {spec:?}"))?;
        targets.push(Target { label, runtime });
    }
    let probe = host.probe.clone();
    let seed = a.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ u64::from(std::process::id()).rotate_left(32)
    });
    let opts = Options {
        targets,
        cases: a.cases,
        seed,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        output: a.output.clone(),
        timeout,
        probe,
        workdir: host.workdir.clone(),
        shrink_runs: a.shrink_runs,
        invalid_every: 5,
        command: std::env::args().collect(),
        replay_flags: if a.host.hybrid_as_v1 {
            vec!["--hybrid-as-v1".to_string()]
        } else {
            Vec::new()
        },
    };
    harness::runner::install_interrupt_handler();
    if let Some(dir) = &a.replay {
        let (meta, found) = fuzz::replay(dir, &opts)?;
        let sig = meta.finding.signature();
        println!(
            "replaying {}: {} [{}] {} on {}",
            dir.display(),
            meta.finding.kind,
            meta.finding.clause,
            meta.finding.what,
            meta.finding.runtimes.join(",")
        );
        for f in &found {
            let mark = if f.signature() == sig { "REPRODUCED" } else { "also" };
            println!(
                "  {mark}: {} [{}] {} on {}: observed {}",
                f.kind,
                f.clause,
                f.what,
                f.runtimes.join(","),
                serde_json::to_string(&f.observed).unwrap_or_default()
            );
        }
        let again = found.iter().any(|f| f.signature() == sig);
        if !again {
            println!("  not reproduced");
        }
        return Ok(i32::from(again));
    }
    eprintln!("harness fuzz: seed {seed} (repeat with --seed {seed})");
    std::fs::create_dir_all(&opts.output).with_context(|| format!("--output {}", opts.output.display()))?;
    // Findings of an earlier run would mix with this run's.
    let old = opts.output.join("findings");
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    let tty = super::stderr_is_tty();
    let progress = move |done: usize, total: usize, found: usize| {
        super::draw_progress(tty, done, total, &format!("{found} findings"));
    };
    let summary = fuzz::run(&opts, &progress)?;
    let path = opts.output.join("fuzz.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{}", fuzz::table(&summary));
    println!("summary: {}", path.display());
    Ok(summary.exit_code())
}
