//! Create, start and delete of a `/probe true` container (`run`), for the
//! native runtime and each peer installed, in one run. Criterion gives each
//! runtime its own timing; before it, an interleaved pass (A B C A B C ...)
//! prints medians, ratios to native and peak memory, so machine drift hits
//! every runtime alike.

use std::time::Duration;

use benches::{bundle, hide_hybrid_cgroup2, run_once, runtimes};
use criterion::{criterion_group, criterion_main, Criterion};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn interleaved(rts: &[(String, std::path::PathBuf)], dir: &std::path::Path, b: &std::path::Path) {
    const ROUNDS: usize = 40;
    let mut times = vec![Vec::new(); rts.len()];
    let mut rss = vec![Vec::new(); rts.len()];
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
    let base = median(&mut times[0].clone());
    eprintln!("interleaved run of /probe true, {ROUNDS} rounds:");
    for (i, (name, _)) in rts.iter().enumerate() {
        let m = median(&mut times[i]);
        let r = median(&mut rss[i]);
        eprintln!(
            "  {name:<8} median {m:7.2} ms  ({:.2}x native)  peak RSS {r:.0} KiB",
            m / base
        );
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
