//! The harness's own hot paths, which sit between the runtime invocations
//! that `harness bench` and `harness conform` time: building and validating
//! a config, parsing the probe's report, the bootstrap statistics, and
//! rendering the results table. No root needed.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use benches::report_json;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use harness::bench::results::{BenchResults, Machine, Metric, Phase, RuntimeEntry, Settings, Unit, SCHEMA};
use harness::bundle::{self, Bundle, SpecExt};
use harness::cleanup::MARKER;
use harness::stats::{ratio, summarize};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

/// The lifecycle operations `harness bench` reports, one metric each.
const OPS: &[&str] = &["create", "start", "state", "kill", "delete", "run"];
const RUNTIMES: &[&str] = &["native", "crun", "runc", "runsc"];

fn quick<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// xorshift64*: deterministic samples, so every run times the same input.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Latencies in ns around `median_ms`, log-normal with a right tail, as
    /// container starts are.
    fn latencies(&mut self, n: usize, median_ms: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let (u1, u2) = (self.unit().max(1e-12), self.unit());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median_ms * 1e6 * (0.15 * z).exp()
            })
            .collect()
    }
}

/// A config as a case or `harness bench` makes one: the default, a few
/// edits, validated and serialised as `write_spec` does.
fn config(bundle_dir: &Path) -> String {
    let mut spec: Spec = bundle::default_spec();
    spec.set_args(&["/probe", "report", "/etc/hostname"]);
    spec.set_namespace(LinuxNamespaceType::Cgroup, None);
    spec.remove_namespace(LinuxNamespaceType::Network);
    spec.set_hostname(Some("bench".into()));
    let env = spec.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
    env.push(format!("{MARKER}=hb1234r0x"));
    let mut tmp = Mount::default();
    tmp.set_destination("/scratch".into());
    tmp.set_typ(Some("tmpfs".into()));
    tmp.set_source(Some("tmpfs".into()));
    tmp.set_options(Some(vec!["nosuid".into(), "size=1m".into()]));
    spec.mounts_mut_or_default().push(tmp);
    bundle::validate(&spec, bundle_dir).expect("valid config");
    serde_json::to_string_pretty(&spec).expect("serialisable config")
}

fn config_generation(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Bundle::prepare(&dir.path().join("bundle"), Path::new("/bin/true")).expect("bundle");
    let mut g = c.benchmark_group("config");
    quick(&mut g);
    g.bench_function("build_validate_serialize", |bench| {
        bench.iter(|| config(black_box(&b.dir)))
    });
    let spec = bundle::default_spec();
    g.bench_function("write_spec", |bench| {
        bench.iter(|| b.write_spec(black_box(&spec)).expect("write_spec"))
    });
    g.finish();
}

fn report_parsing(c: &mut Criterion) {
    let (json, source) = report_json();
    eprintln!("report: {} bytes, from {source}", json.len());
    let mut g = c.benchmark_group("report");
    quick(&mut g);
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("parse_report", |bench| {
        bench.iter(|| harness::ctx::parse_report(black_box(&json)).expect("report parses"))
    });
    g.finish();
}

fn statistics(c: &mut Criterion) {
    let mut rng = Rng(0x5eed);
    let a = rng.latencies(1000, 45.0);
    let b = rng.latencies(1000, 30.0);
    let mut g = c.benchmark_group("stats");
    // Each call resamples 2000 times: tens of milliseconds, so a fixed count
    // per sample and few samples.
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    quick(&mut g);
    g.bench_function("summarize_1000", |bench| bench.iter(|| summarize(black_box(&a))));
    g.bench_function("ratio_1000x1000", |bench| {
        bench.iter(|| ratio(black_box(&a), black_box(&b)))
    });
    g.finish();
}

/// Results of a lifecycle phase: each runtime, each operation, `samples`
/// iterations, with summaries and ratios computed.
fn results(samples: usize) -> BenchResults {
    let mut rng = Rng(0xbe11c);
    let mut metrics = Vec::new();
    for (r, rt) in RUNTIMES.iter().enumerate() {
        for (o, op) in OPS.iter().enumerate() {
            let median_ms = (2.0 + o as f64 * 3.0) * (1.0 + r as f64 * 0.4);
            metrics.push(Metric {
                id: format!("lifecycle.{op}"),
                phase: Phase::Lifecycle,
                runtime: rt.to_string(),
                unit: Unit::Ns,
                what: format!("`{op}`"),
                samples: rng.latencies(samples, median_ms),
                summary: None,
                ratio: None,
            });
        }
    }
    let mut r = BenchResults {
        schema: SCHEMA,
        kind: "bench".into(),
        harness_version: "0.1.0".into(),
        command: vec!["harness".into(), "bench".into()],
        started_at: "2026-01-01T00:00:00Z".into(),
        duration_ms: 60_000,
        machine: Machine {
            kernel: "6.1.0".into(),
            cpus: 2,
            memory_kib: 8 << 20,
            cgroup_mode: "hybrid".into(),
        },
        settings: Settings {
            iterations: samples,
            warmup: 3,
            phases: vec![Phase::Lifecycle],
            hybrid_as_v1: true,
            cgroup_warmup: true,
            ..Settings::default()
        },
        runtimes: RUNTIMES
            .iter()
            .map(|n| RuntimeEntry {
                name: n.to_string(),
                path: format!("/usr/bin/{n}"),
                args: vec![],
                version: format!("{n} version 1.0"),
            })
            .collect(),
        metrics,
        missing: vec![],
        leftovers: vec![],
        interrupted: false,
    };
    r.finalize();
    r
}

fn rendering(c: &mut Criterion) {
    let r = results(30);
    let mut g = c.benchmark_group("render");
    quick(&mut g);
    g.bench_function("table_4x6x30", |bench| {
        bench.iter(|| harness::render::bench::table(black_box(&r)))
    });
    // What the table stands on: every summary and ratio recomputed from the
    // raw samples (run at the end of `harness bench`, and by the CI gate).
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    g.bench_function("finalize_4x6x30", |bench| {
        bench.iter_batched_ref(|| r.clone(), |r| r.finalize(), criterion::BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, config_generation, report_parsing, statistics, rendering);
criterion_main!(benches);
