//! Renderings of `BenchResults`: the terminal table (ratios against the
//! first runtime, and against the host for isolation overhead) and JSON.
//! Made from the results alone, so a saved JSON renders the same table.

use std::fmt::Write;

use crate::bench::results::{BenchResults, Metric, Phase, Unit, HOST};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn render(r: &BenchResults, f: Format) -> String {
    match f {
        Format::Table => table(r),
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
    }
}

/// Three significant digits: `4.31`, `43.1`, `431`.
pub fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A value of `unit`, scaled for reading: `812 ns`, `4.31 ms`, `9.6/s`.
pub fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ns => {
            let a = v.abs();
            if a < 1e3 {
                format!("{v:.0} ns")
            } else if a < 1e6 {
                format!("{} µs", sig3(v / 1e3))
            } else if a < 1e9 {
                format!("{} ms", sig3(v / 1e6))
            } else {
                format!("{} s", sig3(v / 1e9))
            }
        }
        Unit::ContainersPerSec | Unit::PodsPerSec => format!("{v:.1}/s"),
        Unit::Kib => {
            if v.abs() < 10240.0 {
                format!("{v:.0} KiB")
            } else {
                format!("{} MiB", sig3(v / 1024.0))
            }
        }
    }
}

fn ratio(m: &Metric) -> String {
    match &m.ratio {
        Some(r) => format!("{:.2}x [{:.2}, {:.2}]", r.value, r.ci95.0, r.ci95.1),
        None => "-".into(),
    }
}

/// The OCI runtimes' names, in order (CRI endpoints have tables of their own).
fn runtime_names(r: &BenchResults) -> Vec<&str> {
    let endpoints: &[String] = r.settings.cri.as_ref().map_or(&[], |c| &c.endpoints);
    r.runtimes
        .iter()
        .map(|x| x.name.as_str())
        .filter(|n| !endpoints.iter().any(|e| e == n))
        .collect()
}

/// The CRI endpoints' names, in order.
fn endpoint_names(r: &BenchResults) -> Vec<&str> {
    r.settings
        .cri
        .as_ref()
        .map(|c| c.endpoints.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Rows as a left-aligned first column and right-aligned others.
fn grid(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c < 2 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn header(s: &mut String, r: &BenchResults) {
    let st = &r.settings;
    let m = &r.machine;
    let _ = writeln!(
        s,
        "machine: linux {}, {} CPUs, {:.1} GiB, cgroups {}{}",
        m.kernel,
        m.cpus,
        m.memory_kib as f64 / 1048576.0,
        m.cgroup_mode,
        if st.hybrid_as_v1 {
            " (hybrid host, cgroup2 mount hidden)"
        } else {
            ""
        }
    );
    for rt in &r.runtimes {
        let args = if rt.args.is_empty() {
            String::new()
        } else {
            format!(" {}", rt.args.join(" "))
        };
        let _ = writeln!(s, "runtime {}: {}{args} ({})", rt.name, rt.path, rt.version);
    }
}

fn lifecycle(s: &mut String, r: &BenchResults) {
    let first = r.runtimes.first().map(|x| x.name.as_str()).unwrap_or("");
    let title = format!(
        "lifecycle latency: {} iterations after {} warm-up, runtimes in turns; median [95% CI], ratio to {first}",
        r.settings.iterations, r.settings.warmup
    );
    latencies(s, r, Phase::Lifecycle, &title, first);
}

/// The CRI phase: per-call latencies, pulls and parallel pods, against the
/// first endpoint.
fn cri(s: &mut String, r: &BenchResults) {
    let Some(c) = &r.settings.cri else { return };
    let first = r.cri_baseline().unwrap_or("");
    let mut handler = if c.runtime_handler.is_empty() {
        String::new()
    } else {
        format!(", runtime handler {}", c.runtime_handler)
    };
    if c.host_network {
        handler.push_str(", pods in the host's network");
    }
    let title = format!(
        "CRI: {} iterations after {} warm-up{handler}, endpoints in turns; parallel: {} pods at once, {} rounds; median [95% CI], ratio to {first}",
        r.settings.iterations, r.settings.warmup, c.parallel_pods, c.parallel_rounds
    );
    latencies(s, r, Phase::Cri, &title, first);
}

/// One row per figure and runtime of `phase` (per endpoint for the CRI
/// phase), in the order they were given.
fn latencies(s: &mut String, r: &BenchResults, phase: Phase, title: &str, first: &str) {
    let ids = r.ids(phase);
    if ids.is_empty() {
        return;
    }
    let names = if phase == Phase::Cri {
        endpoint_names(r)
    } else {
        runtime_names(r)
    };
    let _ = writeln!(s, "\n{title}");
    let mut rows = vec![vec![
        "operation".to_string(),
        "runtime".into(),
        "median".into(),
        "95% CI".into(),
        "p95".into(),
        "p99".into(),
        "min".into(),
        "max".into(),
        "n".into(),
        format!("vs {first}"),
    ]];
    for id in ids {
        let op = id.split_once('.').map_or(id, |x| x.1);
        for (i, name) in names.iter().copied().enumerate() {
            let label = if i == 0 { op.to_string() } else { String::new() };
            match r.metric(id, name).and_then(|m| m.summary.as_ref().map(|x| (m, x))) {
                Some((m, x)) => rows.push(vec![
                    label,
                    name.to_string(),
                    value(x.median, m.unit),
                    format!(
                        "{} – {}{}",
                        value(x.median_ci95.0, m.unit),
                        value(x.median_ci95.1, m.unit),
                        if unsteady(x) { " *" } else { "" }
                    ),
                    value(x.p95, m.unit),
                    value(x.p99, m.unit),
                    value(x.min, m.unit),
                    value(x.max, m.unit),
                    x.n.to_string(),
                    ratio(m),
                ]),
                None => rows.push(vec![label, name.to_string(), "not measured".into()]),
            }
        }
    }
    grid(s, &rows);
    let flagged = r
        .metrics
        .iter()
        .filter(|m| m.phase == phase)
        .any(|m| m.summary.as_ref().is_some_and(unsteady));
    if flagged {
        let _ = writeln!(
            s,
            "* the interval spans more than {:.0}% of the median: a wide or two-humped distribution, whose median may move between runs",
            UNSTEADY * 100.0
        );
    }
}

/// Width of a median's interval, relative to the median, above which the
/// table flags the figure.
const UNSTEADY: f64 = 0.2;

/// Whether the median's 95% interval is wider than `UNSTEADY` of it.
pub fn unsteady(x: &crate::stats::Summary) -> bool {
    x.median > 0.0 && (x.median_ci95.1 - x.median_ci95.0) / x.median > UNSTEADY
}

fn density(s: &mut String, r: &BenchResults) {
    let ids = r.ids(Phase::Density);
    if ids.is_empty() {
        return;
    }
    let first = r.runtimes.first().map(|x| x.name.as_str()).unwrap_or("");
    let _ = writeln!(
        s,
        "\ndensity: {} containers started at once and held, {} rounds; median, ratio to {first}",
        r.settings.density, r.settings.density_rounds
    );
    let cols: &[(&str, &str)] = &[
        ("density.throughput", "containers/s"),
        ("density.start", "create+start"),
        ("density.pss", "PSS/container"),
        ("density.cgroup", "cgroup/container"),
        ("density.host", "host/container"),
    ];
    let mut head = vec!["runtime".to_string(), String::new()];
    head.extend(cols.iter().map(|(_, h)| h.to_string()));
    let mut rows = vec![head];
    for name in runtime_names(r) {
        let mut row = vec![name.to_string(), String::new()];
        let mut rrow = vec![String::new(), String::new()];
        for (id, _) in cols {
            match r.metric(id, name).and_then(|m| m.summary.as_ref().map(|x| (m, x))) {
                Some((m, x)) => {
                    row.push(value(x.median, m.unit));
                    rrow.push(m.ratio.as_ref().map(|q| format!("{:.2}x", q.value)).unwrap_or_default());
                }
                None => {
                    row.push("-".into());
                    rrow.push(String::new());
                }
            }
        }
        rows.push(row);
        if rrow.iter().any(|c| !c.is_empty()) {
            rows.push(rrow);
        }
    }
    grid(s, &rows);
}

fn overhead(s: &mut String, r: &BenchResults) {
    let ids = r.ids(Phase::Overhead);
    if ids.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nisolation overhead: time per operation inside the container as a ratio to the host [95% CI]; {} rounds of {} batches",
        r.settings.overhead_rounds, r.settings.batches
    );
    let names = runtime_names(r);
    let mut head = vec!["workload".to_string(), "host".into()];
    head.extend(names.iter().map(|n| n.to_string()));
    let mut rows = vec![head];
    for id in ids {
        let mut row = vec![id.trim_start_matches("overhead.").to_string()];
        row.push(
            r.metric(id, HOST)
                .and_then(|m| m.summary.as_ref().map(|x| value(x.median, m.unit)))
                .unwrap_or_else(|| "-".into()),
        );
        for n in &names {
            row.push(r.metric(id, n).map(ratio).unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    grid(s, &rows);
    let mut notes = Vec::new();
    for id in r.ids(Phase::Overhead) {
        if let Some(m) = r.metrics.iter().find(|m| m.id == id) {
            notes.push(format!("  {}: {}", id.trim_start_matches("overhead."), m.what));
        }
    }
    let _ = writeln!(s, "one operation:\n{}", notes.join("\n"));
}

fn harness_cost(s: &mut String, r: &BenchResults) {
    let Some(c) = r.harness_cost() else { return };
    if c.per_runtime.is_empty() {
        return;
    }
    let _ = write!(
        s,
        "\nharness: {} per operation between runtime invocations (worst runtime's median)",
        value(c.worst, Unit::Ns)
    );
    if let Some((runtime, id, v, unit)) = &c.fastest {
        let _ = write!(
            s,
            ", {:.1}% of the fastest figure ({runtime} {} {})",
            100.0 * c.worst / v,
            id.trim_start_matches("lifecycle."),
            value(*v, *unit)
        );
    }
    if let Some(spawn) = c.spawn {
        let _ = write!(
            s,
            "; spawning a static no-op costs {} (part of every figure)",
            value(spawn, Unit::Ns)
        );
    }
    let _ = writeln!(s);
}

/// The whole table: header, each phase's table, the harness's own cost,
/// then what is missing and what the runtimes left behind.
pub fn table(r: &BenchResults) -> String {
    let mut s = String::new();
    header(&mut s, r);
    lifecycle(&mut s, r);
    density(&mut s, r);
    overhead(&mut s, r);
    cri(&mut s, r);
    harness_cost(&mut s, r);
    if !r.missing.is_empty() {
        let _ = writeln!(s, "\nnot measured:");
        for m in &r.missing {
            let _ = writeln!(s, "  {} {} {}: {}", m.runtime, m.phase.name(), m.what, m.reason);
        }
    }
    if !r.leftovers.is_empty() {
        let _ = writeln!(s, "\nleft behind by the runtimes, and removed:");
        for l in &r.leftovers {
            let _ = writeln!(s, "  {}: {} {}", l.runtime, l.kind, l.what);
        }
    }
    let _ = writeln!(
        s,
        "\n{}{:.1}s",
        if r.interrupted {
            "interrupted: partial results after "
        } else {
            "done in "
        },
        r.duration_ms as f64 / 1000.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_intervals_are_flagged() {
        let two_humps: Vec<f64> = (0..30).map(|i| if i % 2 == 0 { 7.0 } else { 15.0 }).collect();
        let tight: Vec<f64> = (0..30).map(|i| 5.0 + f64::from(i % 3) * 0.05).collect();
        assert!(unsteady(&crate::stats::summarize(&two_humps).unwrap()));
        assert!(!unsteady(&crate::stats::summarize(&tight).unwrap()));
    }

    #[test]
    fn values_scale() {
        assert_eq!(value(812.0, Unit::Ns), "812 ns");
        assert_eq!(value(4_310_000.0, Unit::Ns), "4.31 ms");
        assert_eq!(value(1_500.0, Unit::Ns), "1.50 µs");
        assert_eq!(value(960_070.0, Unit::Ns), "960 µs");
        assert_eq!(value(22_860_000.0, Unit::Ns), "22.9 ms");
        assert_eq!(value(2.5e9, Unit::Ns), "2.50 s");
        assert_eq!(value(9.61, Unit::ContainersPerSec), "9.6/s");
        assert_eq!(value(300.0, Unit::Kib), "300 KiB");
        assert_eq!(value(20480.0, Unit::Kib), "20.0 MiB");
    }
}
