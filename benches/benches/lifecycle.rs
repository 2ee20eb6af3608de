//! Create, start and delete of a `/probe true` container (`run`), for the
//! native runtime and each peer installed, in one run. Criterion gives each
//! runtime its own timing; before it, an interleaved pass (A B C A B C ...)
//! prints medians, ratios to native and peak memory, so machine drift hits
//! every runtime alike.

use std::time::Duration;

use benches::{bundle, hide_hybrid_cgroup2, run_once, runtimes};
use criterion::{criterion_group, criterion_main, Criterion};
use harness::stats::{median, ratio};

fn interleaved(rts: &[(String, std::path::PathBuf)], dir: &std::path::Path, b: &std::path::Path) {
    const ROUNDS: usize = 40;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); rts.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); rts.len()];
    for round in 0..ROUNDS {
        for (i, (name, path)) in rts.iter().enumerate() {
            let (t, kib) = run_once(
                path,
                &dir.join(format!("root-{name}")),
                b,
                &format!("il-{name}-{round}"),
            );
            times[i].push(t.as_secs_f64() * 1000.0);
            rss[i].push(kib as f64);
        }
    }
    eprintln!("interleaved run of /probe true, {ROUNDS} rounds (ratio to native, 95% bootstrap interval):");
    for (i, (name, _)) in rts.iter().enumerate() {
        let m = median(&times[i]);
        let r = median(&rss[i]);
        let (x, (lo, hi)) = ratio(&times[i], &times[0]).unwrap_or((f64::NAN, (f64::NAN, f64::NAN)));
        eprintln!("  {name:<8} median {m:7.2} ms  {x:.2}x native [{lo:.2}, {hi:.2}]  peak RSS {r:.0} KiB");
    }
}

fn lifecycle(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    hide_hybrid_cgroup2();
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bundle(dir.path());
    let rts = runtimes();
    interleaved(&rts, dir.path(), &b);
    let mut g = c.benchmark_group("create_start_delete");
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(30);
    for (name, path) in &rts {
        let root = dir.path().join(format!("root-{name}"));
        let mut n = 0u64;
        g.bench_function(name.as_str(), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    total += run_once(path, &root, &b, &format!("cr-{name}-{n}")).0;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
