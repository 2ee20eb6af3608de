//! The benchmark part of the report, one per bench file: lifecycle latency
//! (box plots and ratio tables), density, isolation overhead (ratio bars),
//! the harness's own cost, and what was not measured or left behind.

use super::doc::{backticks, Block, Cell, Chart, Inline, Table, Tone};
use super::svg::{self, sig3, Bar, BarGroup, BoxRow, BoxStats};
use super::Input;
use crate::bench::results::{BenchResults, Metric, Phase, Unit, HOST};
use crate::render::bench::{unsteady, value};

/// A value for an axis tick: `2 ms`, not `2.00 ms`.
pub(super) fn tick(v: f64, unit: Unit) -> String {
    let s = value(v, unit);
    match s.split_once(' ') {
        Some((num, rest)) if num.contains('.') => {
            format!("{} {rest}", num.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}

/// `4.07x [3.91, 4.29]`, `440x [430, 453]`.
pub(super) fn ratio_ci(value: f64, ci: (f64, f64)) -> String {
    format!("{}x [{}, {}]", sig3(value), sig3(ci.0), sig3(ci.1))
}

/// An id safe for an HTML attribute: `b0-lifecycle-create`.
fn chart_id(n: usize, metric: &str) -> String {
    let s: String = metric
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("b{n}-{s}")
}

fn names(b: &BenchResults) -> Vec<&str> {
    b.runtimes.iter().map(|r| r.name.as_str()).collect()
}

fn settings(b: &BenchResults) -> String {
    let s = &b.settings;
    let mut parts = vec![format!(
        "phases {}",
        s.phases.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    )];
    if s.phases.contains(&Phase::Lifecycle) {
        parts.push(format!(
            "lifecycle: {} iterations per runtime after {} warm-up, the runtimes taking turns{}",
            s.iterations,
            s.warmup,
            if s.cgroup_warmup {
                ", each turn after a throwaway cgroup migration"
            } else {
                ""
            }
        ));
    }
    if s.phases.contains(&Phase::Density) {
        parts.push(format!(
            "density: {} containers at once, {} rounds",
            s.density, s.density_rounds
        ));
    }
    if s.phases.contains(&Phase::Overhead) {
        parts.push(format!(
            "overhead: {} rounds of {} batches of {} ms",
            s.overhead_rounds, s.batches, s.batch_ms
        ));
    }
    format!(
        "Settings: {}. Run took {:.1} s.",
        parts.join("; "),
        b.duration_ms as f64 / 1000.0
    )
}

/// The latency figures charted: every lifecycle operation, then the start
/// of one container among many.
fn latency_ids(b: &BenchResults) -> Vec<&str> {
    let mut ids = b.ids(Phase::Lifecycle);
    if b.metrics.iter().any(|m| m.id == "density.start") {
        ids.push("density.start");
    }
    ids
}

/// Median, interval and ratio to the first runtime of one latency metric.
fn latency_table(b: &BenchResults, id: &str) -> Table {
    let first = names(b).first().copied().unwrap_or_default();
    let mut t = Table::new(
        [
            "runtime",
            "median",
            "95% CI of median",
            "p95",
            "max",
            "n",
            &format!("vs {first} [95% CI]"),
        ]
        .map(String::from)
        .to_vec(),
    );
    for name in names(b) {
        let Some((m, x)) = b.metric(id, name).and_then(|m| Some((m, m.summary.as_ref()?))) else {
            t.rows
                .push(vec![Cell::text(name), Cell::text("not measured").tone(Tone::Faint)]);
            continue;
        };
        t.rows.push(vec![
            Cell::text(name),
            value(x.median, m.unit).into(),
            format!(
                "{} – {}{}",
                value(x.median_ci95.0, m.unit),
                value(x.median_ci95.1, m.unit),
                if unsteady(x) { " *" } else { "" }
            )
            .into(),
            value(x.p95, m.unit).into(),
            value(x.max, m.unit).into(),
            x.n.to_string().into(),
            match &m.ratio {
                Some(r) => ratio_ci(r.value, r.ci95).into(),
                None if name == first => Cell::text("baseline").tone(Tone::Faint),
                None => Cell::text("–").tone(Tone::Faint),
            },
        ]);
    }
    t
}

fn latency(n: usize, b: &BenchResults) -> Vec<Block> {
    let ids = latency_ids(b);
    if ids.is_empty() {
        return vec![];
    }
    let mut doc = vec![
        Block::heading(3, "Latency"),
        Block::para(
            "Each chart has a row per runtime: the box spans p25–p75 of the samples, the thick line is the \
             median (written at the right), the whiskers span p5–p95 and the dots are the samples beyond \
             them. The axis is logarithmic when the runtimes' medians differ by more than 10x.",
        ),
    ];
    let mut flagged = false;
    for id in ids {
        let rows: Vec<BoxRow> = names(b)
            .iter()
            .enumerate()
            .map(|(i, name)| BoxRow {
                label: name,
                color: svg::color(i),
                stats: b.metric(id, name).and_then(|m| BoxStats::from_samples(&m.samples)),
            })
            .collect();
        let medians: Vec<f64> = rows.iter().filter_map(|r| r.stats.as_ref().map(|s| s.median)).collect();
        let log = svg::wants_log(&medians);
        let unit = b
            .metrics
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.unit)
            .unwrap_or(Unit::Ns);
        let what = b
            .metrics
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.what.as_str())
            .unwrap_or("");
        let chart = svg::box_plot(
            &chart_id(n, id),
            &format!(
                "{id}: time per operation by runtime ({} axis)",
                if log { "log" } else { "linear" }
            ),
            &rows,
            log,
            &|v| tick(v, unit),
        );
        let lo = medians.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = medians.iter().copied().fold(0.0, f64::max);
        let spread = if lo > 0.0 {
            format!("; medians {:.1}x apart", hi / lo)
        } else {
            String::new()
        };
        doc.push(Block::heading(4, id));
        let mut caption = backticks(what);
        caption.push(Inline::Text(format!(
            ". {} axis{spread}; box p25–p75, whiskers p5–p95.",
            if log { "Log" } else { "Linear" }
        )));
        doc.push(Block::Chart(Chart { svg: chart, caption }));
        let t = latency_table(b, id);
        flagged |= t
            .rows
            .iter()
            .any(|r| r.get(2).is_some_and(|c| c.plain().ends_with(" *")));
        doc.push(Block::Table(t));
    }
    if flagged {
        doc.push(Block::para(
            "* the median's interval spans more than 20% of it: a wide or two-humped distribution, whose \
             median may move between runs.",
        ));
    }
    doc
}

fn density(b: &BenchResults) -> Vec<Block> {
    let cols: Vec<(&str, &str)> = [
        ("density.throughput", "containers/s"),
        ("density.start", "create+start"),
        ("density.pss", "PSS/container"),
        ("density.cgroup", "cgroup/container"),
        ("density.host", "host/container"),
    ]
    .into_iter()
    .filter(|(id, _)| b.metrics.iter().any(|m| m.id == *id))
    .collect();
    if cols.is_empty() {
        return vec![];
    }
    let first = names(b).first().copied().unwrap_or_default();
    let mut head = vec!["runtime".to_string()];
    head.extend(cols.iter().map(|(_, h)| h.to_string()));
    let mut t = Table::new(head);
    for name in names(b) {
        let mut row = vec![Cell::text(name)];
        for (id, _) in &cols {
            row.push(match b.metric(id, name).and_then(|m| Some((m, m.summary.as_ref()?))) {
                Some((m, x)) => {
                    let ratio = m
                        .ratio
                        .as_ref()
                        .map(|r| format!(" ({}x)", sig3(r.value)))
                        .unwrap_or_default();
                    let star = if unsteady(x) { " *" } else { "" };
                    Cell::text(format!("{}{star}{ratio}", value(x.median, m.unit)))
                }
                None => Cell::text("–").tone(Tone::Faint),
            });
        }
        t.rows.push(row);
    }
    vec![
        Block::heading(3, "Density"),
        Block::para(format!(
            "{} containers created and started at once and held, {} rounds; medians, (ratio to {first}). \
             Memory per container: the PSS of every process left running for it, the charge to its memory \
             cgroup, and the drop in the host's MemAvailable (noisy: other activity on the host moves it, \
             and it can be negative). * marks a median whose interval spans more than 20% of it.",
            b.settings.density, b.settings.density_rounds
        )),
        Block::Table(t),
    ]
}

fn overhead(n: usize, b: &BenchResults) -> Vec<Block> {
    let ids = b.ids(Phase::Overhead);
    if ids.is_empty() {
        return vec![];
    }
    let rts = names(b);
    let short = |id: &str| id.trim_start_matches("overhead.").to_string();
    let labels: Vec<String> = ids.iter().map(|id| short(id)).collect();
    let groups: Vec<BarGroup> = ids
        .iter()
        .zip(&labels)
        .map(|(id, label)| BarGroup {
            label,
            bars: rts
                .iter()
                .enumerate()
                .map(|(i, name)| Bar {
                    label: name,
                    color: svg::color(i),
                    ratio: b
                        .metric(id, name)
                        .and_then(|m| m.ratio.as_ref())
                        .map(|r| (r.value, r.ci95)),
                })
                .collect(),
        })
        .collect();
    let legend: Vec<(&str, &str)> = rts.iter().enumerate().map(|(i, n)| (*n, svg::color(i))).collect();
    let chart = svg::ratio_bars(
        &chart_id(n, "overhead"),
        "isolation overhead: time per operation inside the container as a ratio to the host (log axis)",
        &groups,
        &legend,
    );
    let mut head = vec!["workload".to_string(), "host".into()];
    head.extend(rts.iter().map(|r| r.to_string()));
    let mut t = Table::new(head);
    for id in &ids {
        let mut row = vec![Cell::text(short(id))];
        row.push(match b.metric(id, HOST).and_then(|m| Some((m, m.summary.as_ref()?))) {
            Some((m, x)) => value(x.median, m.unit).into(),
            None => Cell::text("–").tone(Tone::Faint),
        });
        for name in &rts {
            row.push(match b.metric(id, name) {
                Some(Metric {
                    ratio: Some(r),
                    summary: Some(x),
                    ..
                }) => Cell::text(format!(
                    "{}{}",
                    ratio_ci(r.value, r.ci95),
                    if unsteady(x) { " *" } else { "" }
                )),
                _ => Cell::text("–").tone(Tone::Faint),
            });
        }
        t.rows.push(row);
    }
    let what = ids
        .iter()
        .filter_map(|id| b.metrics.iter().find(|m| m.id == *id))
        .map(|m| vec![Inline::Code(short(&m.id)), Inline::Text(format!(": {}", m.what))])
        .collect();
    vec![
        Block::heading(3, "Isolation overhead"),
        Block::para(format!(
            "Each workload timed inside a container and directly on the host; {} rounds of {} batches. \
             Bars run from the 1x line (as fast as the host) to the ratio of medians; the thin line across \
             each bar is its 95% bootstrap interval.",
            b.settings.overhead_rounds, b.settings.batches
        )),
        Block::Chart(Chart {
            svg: chart,
            caption: vec![Inline::Text(
                "Ratio of the median time per operation inside the container to the host's, log axis; \
                 dashed line: 1x."
                    .into(),
            )],
        }),
        Block::para("Host median per operation, and each runtime's ratio to it [95% CI]:"),
        Block::Table(t),
        Block::para("One operation of each workload:"),
        Block::List(what),
    ]
}

/// The harness's own time per operation against the fastest figure it is
/// part of, and the cost of spawning a process at all.
fn harness_cost(b: &BenchResults) -> Vec<Block> {
    let Some(c) = b.harness_cost() else { return vec![] };
    let mut s = String::new();
    if !c.per_runtime.is_empty() {
        let each: Vec<String> = c
            .per_runtime
            .iter()
            .map(|(n, v)| format!("{n} {}", value(*v, Unit::Ns)))
            .collect();
        s.push_str(&format!(
            "The harness spends {} per operation between runtime invocations (worst runtime's median; {})",
            value(c.worst, Unit::Ns),
            each.join(", ")
        ));
        if let Some((runtime, id, v, unit)) = &c.fastest {
            s.push_str(&format!(
                ", {:.1}% of the fastest figure ({runtime} {} {})",
                100.0 * c.worst / v,
                id.trim_start_matches("lifecycle."),
                value(*v, *unit)
            ));
        }
        s.push('.');
    }
    if let Some(spawn) = c.spawn {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&format!(
            "Spawning a static no-op on the host costs {} (part of every figure).",
            value(spawn, Unit::Ns)
        ));
    }
    vec![Block::heading(3, "Harness overhead"), Block::para(s)]
}

fn gaps(b: &BenchResults) -> Vec<Block> {
    let mut doc = vec![Block::heading(3, "Not measured")];
    if b.missing.is_empty() {
        doc.push(Block::para("Everything asked for was measured."));
    } else {
        doc.push(Block::List(
            b.missing
                .iter()
                .map(|m| {
                    vec![Inline::Text(format!(
                        "{} {} {}: {}",
                        m.runtime,
                        m.phase.name(),
                        m.what,
                        m.reason
                    ))]
                })
                .collect(),
        ));
    }
    doc.push(Block::heading(3, "Left behind by the runtimes"));
    if b.leftovers.is_empty() {
        doc.push(Block::para("Nothing: every runtime removed what it made."));
    } else {
        doc.push(Block::para(
            "Found after the runtimes' containers were deleted, and removed:",
        ));
        doc.push(Block::List(
            b.leftovers
                .iter()
                .map(|l| vec![Inline::Text(format!("{}: {} {}", l.runtime, l.kind, l.what))])
                .collect(),
        ));
    }
    doc
}

/// The part of the report for bench file number `n` (charts need ids
/// unique in the page).
pub(super) fn section(n: usize, input: &Input, b: &BenchResults) -> Vec<Block> {
    let mut doc = vec![
        Block::heading(2, format!("Benchmarks: {}", input.name())),
        Block::para(settings(b)),
    ];
    if b.interrupted {
        doc.push(Block::para(
            "This run was interrupted (^C): the figures are what was measured until then.",
        ));
    }
    doc.extend(latency(n, b));
    doc.extend(density(b));
    doc.extend(overhead(n, b));
    doc.extend(harness_cost(b));
    doc.extend(gaps(b));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_drop_needless_zeros() {
        assert_eq!(tick(2e6, Unit::Ns), "2 ms");
        assert_eq!(tick(2.5e6, Unit::Ns), "2.5 ms");
        assert_eq!(tick(0.0, Unit::Ns), "0 ns");
        assert_eq!(tick(500e3, Unit::Ns), "500 µs");
        assert_eq!(tick(20480.0, Unit::Kib), "20 MiB");
    }

    #[test]
    fn ratios_keep_three_digits() {
        assert_eq!(ratio_ci(440.32, (429.5, 452.6)), "440x [430, 453]");
        assert_eq!(ratio_ci(24.43, (22.73, 25.37)), "24.4x [22.7, 25.4]");
        assert_eq!(ratio_ci(0.9958, (0.9902, 1.0296)), "1.00x [0.99, 1.03]");
    }

    #[test]
    fn chart_ids_are_attribute_safe() {
        assert_eq!(chart_id(1, "lifecycle.create"), "b1-lifecycle-create");
    }
}
