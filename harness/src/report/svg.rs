//! Hand-written SVG charts for the HTML report: box plots of latency per
//! runtime and grouped bars of overhead ratios. Plain strings, no crate, no
//! script, no external font: the page stays one self-contained file.

use std::fmt::Write;

use super::html::escape;
use crate::stats;

pub use crate::render::bench::sig3;

/// Colour-blind-safe (Okabe–Ito), one per runtime in file order.
pub const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Above this ratio between the largest and the smallest median, a linear
/// axis squeezes the fast runtimes into a few pixels: use a log axis.
pub const LOG_SPREAD: f64 = 10.0;

/// Whether values spread over more than `LOG_SPREAD` (positive ones only).
pub fn wants_log(values: &[f64]) -> bool {
    let pos = values.iter().copied().filter(|v| *v > 0.0);
    let lo = pos.clone().fold(f64::INFINITY, f64::min);
    let hi = pos.fold(0.0, f64::max);
    lo.is_finite() && hi / lo > LOG_SPREAD
}

/// Maps values to pixels along x, linearly or logarithmically.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub x0: f64,
    pub x1: f64,
}

/// The smallest of 1, 2, 5 times a power of ten that is >= `v` (> 0).
fn step125_ceil(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// The largest of 1, 2, 5 times a power of ten that is <= `v` (> 0).
fn step125_floor(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c <= v * (1.0 + 1e-9))
        .unwrap_or(p)
}

impl Scale {
    /// From 0 (or a round number below a negative `min`) to a round number
    /// at or above `max`, on a step of 1, 2 or 5 times a power of ten.
    pub fn linear(min: f64, max: f64, x0: f64, x1: f64) -> Scale {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let step = nice_step(((max - min) / 5.0).max(f64::MIN_POSITIVE));
        let lo = (min / step).floor() * step;
        let mut hi = (max / step).ceil() * step;
        if hi <= lo {
            hi = lo + step;
        }
        Scale {
            lo,
            hi,
            log: false,
            x0,
            x1,
        }
    }

    /// From the 1-2-5 step at or below `min` to the one at or above `max`;
    /// both must be positive.
    pub fn log(min: f64, max: f64, x0: f64, x1: f64) -> Scale {
        let lo = step125_floor(min);
        let mut hi = step125_ceil(max);
        if hi <= lo {
            hi = step125_ceil(lo * 1.5);
        }
        Scale {
            lo,
            hi,
            log: true,
            x0,
            x1,
        }
    }

    /// The pixel of `v`, clamped to the axis (a log axis puts values <= 0
    /// at its start).
    pub fn px(&self, v: f64) -> f64 {
        let t = if self.log {
            if v <= 0.0 {
                0.0
            } else {
                (v / self.lo).ln() / (self.hi / self.lo).ln()
            }
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        self.x0 + t.clamp(0.0, 1.0) * (self.x1 - self.x0)
    }

    /// Tick values: every step of a linear axis; on a log axis 1, 2 and 5
    /// times each power of ten while a decade is wide enough to label
    /// them, else the powers of ten alone.
    pub fn ticks(&self) -> Vec<f64> {
        let eps = 1e-9;
        if !self.log {
            let step = nice_step((self.hi - self.lo) / 5.0);
            let n = ((self.hi - self.lo) / step + eps).floor() as i64;
            return (0..=n).map(|i| self.lo + i as f64 * step).collect();
        }
        let decades = (self.hi / self.lo).log10();
        let per_decade = (self.x1 - self.x0) / decades.max(eps);
        let mantissas: &[f64] = if per_decade >= 180.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        let (k0, k1) = (self.lo.log10().floor() as i32, self.hi.log10().ceil() as i32);
        let mut v = Vec::new();
        for k in k0..=k1 {
            for m in mantissas {
                let t = m * 10f64.powi(k);
                if t >= self.lo * (1.0 - eps) && t <= self.hi * (1.0 + eps) {
                    v.push(t);
                }
            }
        }
        v
    }
}

/// 1, 2 or 5 times a power of ten, the smallest >= `raw` (> 0).
pub fn nice_step(raw: f64) -> f64 {
    step125_ceil(raw)
}

/// A distribution as a box plot draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStats {
    pub min: f64,
    pub p5: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p95: f64,
    pub max: f64,
    /// Samples beyond the whiskers, drawn as dots.
    pub outside: Vec<f64>,
}

impl BoxStats {
    /// `None` for no samples.
    pub fn from_samples(samples: &[f64]) -> Option<BoxStats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let q = |p| stats::quantile(&s, p);
        let (p5, p95) = (q(0.05), q(0.95));
        Some(BoxStats {
            min: s[0],
            p5,
            p25: q(0.25),
            median: q(0.5),
            p75: q(0.75),
            p95,
            max: s[s.len() - 1],
            outside: s.iter().copied().filter(|v| *v < p5 || *v > p95).collect(),
        })
    }
}

/// Where a box plot's parts land, in pixels along the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxGeom {
    /// p5 .. p95.
    pub whisker: (f64, f64),
    /// p25 .. p75.
    pub body: (f64, f64),
    pub median: f64,
    pub dots: Vec<f64>,
}

pub fn box_geom(b: &BoxStats, s: &Scale) -> BoxGeom {
    BoxGeom {
        whisker: (s.px(b.p5), s.px(b.p95)),
        body: (s.px(b.p25), s.px(b.p75)),
        median: s.px(b.median),
        dots: b.outside.iter().map(|v| s.px(*v)).collect(),
    }
}

/// Rough width of `text` at the charts' 11px font, for margins.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.6
}

const WIDTH: f64 = 860.0;

/// Opening tag, `<title>` and a white background of a chart.
fn open(out: &mut String, id: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-labelledby=\"{id}-title\"><title id=\"{id}-title\">{}</title>\
         <rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#fff\"/>",
        escape(title)
    );
}

/// Vertical grid lines at the ticks from `top` to `bottom`, labels below.
fn x_axis(out: &mut String, s: &Scale, top: f64, bottom: f64, label: &dyn Fn(f64) -> String) {
    for t in s.ticks() {
        let x = s.px(t);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#e3e3e3\"/>\
             <line x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#777\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 16.0,
            escape(&label(t))
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{:.1}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#777\"/>",
        s.x0, s.x1
    );
}

/// One row of a box plot.
pub struct BoxRow<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub stats: Option<BoxStats>,
}

/// Horizontal box plots, one row per runtime, on a shared axis: whiskers
/// p5..p95, box p25..p75, a line at the median, dots for the samples
/// beyond the whiskers, the median written at the right. `fmt` labels
/// the ticks and medians with their unit.
pub fn box_plot(id: &str, title: &str, rows: &[BoxRow], log: bool, fmt: &dyn Fn(f64) -> String) -> String {
    let row_h = 30.0;
    let top = 10.0;
    let left = 16.0 + rows.iter().map(|r| text_width(r.label)).fold(40.0, f64::max);
    let right = 110.0;
    let plot_bottom = top + row_h * rows.len() as f64;
    let height = plot_bottom + 30.0;
    let all = rows.iter().filter_map(|r| r.stats.as_ref());
    let lo = all.clone().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let hi = all.map(|b| b.max).fold(f64::NEG_INFINITY, f64::max);
    let (x0, x1) = (left, WIDTH - right);
    let scale = match (lo.is_finite(), log && lo > 0.0) {
        (false, _) => Scale::linear(0.0, 1.0, x0, x1),
        (true, true) => Scale::log(lo, hi, x0, x1),
        (true, false) => Scale::linear(lo, hi, x0, x1),
    };
    let mut out = String::new();
    open(&mut out, id, title, height);
    x_axis(&mut out, &scale, top, plot_bottom, fmt);
    for (i, r) in rows.iter().enumerate() {
        let cy = top + row_h * (i as f64 + 0.5);
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            cy + 4.0,
            escape(r.label)
        );
        let Some(b) = &r.stats else {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#999\">not measured</text>",
                x0 + 4.0,
                cy + 4.0
            );
            continue;
        };
        let g = box_geom(b, &scale);
        let (bh, cap) = (row_h * 0.55, row_h * 0.3);
        let _ = write!(
            out,
            "<g stroke=\"{c}\"><line x1=\"{:.1}\" y1=\"{cy:.1}\" x2=\"{:.1}\" y2=\"{cy:.1}\"/>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{c}\" fill-opacity=\"0.3\"/>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke-width=\"2.5\"/>",
            g.whisker.0,
            g.whisker.1,
            g.whisker.0,
            cy - cap / 2.0,
            g.whisker.0,
            cy + cap / 2.0,
            g.whisker.1,
            cy - cap / 2.0,
            g.whisker.1,
            cy + cap / 2.0,
            g.body.0,
            cy - bh / 2.0,
            (g.body.1 - g.body.0).max(1.0),
            g.median,
            cy - bh / 2.0,
            g.median,
            cy + bh / 2.0,
            c = r.color,
        );
        for d in &g.dots {
            let _ = write!(out, "<circle cx=\"{d:.1}\" cy=\"{cy:.1}\" r=\"2.2\" fill=\"none\"/>");
        }
        let _ = write!(
            out,
            "</g><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x1 + 10.0,
            cy + 4.0,
            escape(&fmt(b.median))
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar: a runtime's ratio and its 95% interval, or nothing measured.
pub struct Bar<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub ratio: Option<(f64, (f64, f64))>,
}

pub struct BarGroup<'a> {
    pub label: &'a str,
    pub bars: Vec<Bar<'a>>,
}

/// `12.0x`, `1.05x`, `0.96x`, `440x`.
pub fn ratio_label(v: f64) -> String {
    format!("{}x", sig3(v))
}

/// `0.5x`, `1x`, `20x`: a tick needs no more digits than it has.
fn tick_ratio(v: f64) -> String {
    let s = format!("{v:.3}");
    format!("{}x", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Horizontal bars grouped by workload, one per runtime, on a log axis of
/// the ratio to a baseline: each bar runs from the 1x reference line to
/// the ratio, a thin line across it spans the 95% interval, and the ratio
/// is written past its end.
pub fn ratio_bars(id: &str, title: &str, groups: &[BarGroup], legend: &[(&str, &str)]) -> String {
    let bar_h = 13.0;
    let gap = 12.0;
    let top = 30.0;
    let left = 16.0 + groups.iter().map(|g| text_width(g.label)).fold(40.0, f64::max);
    let right = 70.0;
    let rows: usize = groups.iter().map(|g| g.bars.len()).sum();
    let plot_bottom = top + rows as f64 * bar_h + groups.len() as f64 * gap;
    let height = plot_bottom + 30.0;
    let mut lo: f64 = 1.0;
    let mut hi: f64 = 1.0;
    for (v, (a, b)) in groups.iter().flat_map(|g| g.bars.iter().filter_map(|b| b.ratio)) {
        for x in [v, a, b] {
            if x > 0.0 {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
    }
    let (x0, x1) = (left, WIDTH - right);
    let scale = Scale::log(lo, hi, x0, x1);
    let mut out = String::new();
    open(&mut out, id, title, height);
    // Legend across the top.
    let mut lx = x0;
    for (name, c) in legend {
        let _ = write!(
            out,
            "<rect x=\"{lx:.1}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{c}\"/>\
             <text x=\"{:.1}\" y=\"18\">{}</text>",
            lx + 16.0,
            escape(name)
        );
        lx += 16.0 + text_width(name) + 18.0;
    }
    x_axis(&mut out, &scale, top - 4.0, plot_bottom, &tick_ratio);
    let one = scale.px(1.0);
    let mut y = top;
    for g in groups {
        y += gap / 2.0;
        let gh = g.bars.len() as f64 * bar_h;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + gh / 2.0 + 4.0,
            escape(g.label)
        );
        for b in &g.bars {
            let cy = y + bar_h / 2.0;
            match b.ratio {
                Some((v, (a, c))) => {
                    let x = scale.px(v);
                    let (ca, cb) = (scale.px(a), scale.px(c));
                    let _ = write!(
                        out,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                         <title>{}: {} [{}, {}]</title></rect>\
                         <line x1=\"{ca:.1}\" y1=\"{cy:.1}\" x2=\"{cb:.1}\" y2=\"{cy:.1}\" stroke=\"#222\"/>\
                         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                        x.min(one),
                        y + 1.0,
                        (x - one).abs().max(1.0),
                        bar_h - 2.0,
                        b.color,
                        escape(b.label),
                        ratio_label(v),
                        ratio_label(a),
                        ratio_label(c),
                        x.max(one).max(cb) + 4.0,
                        cy + 3.5,
                        ratio_label(v)
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#999\">{}: not measured</text>",
                        one + 4.0,
                        cy + 3.5,
                        escape(b.label)
                    );
                }
            }
            y += bar_h;
        }
        y += gap / 2.0;
    }
    let _ = write!(
        out,
        "<line x1=\"{one:.1}\" y1=\"{:.1}\" x2=\"{one:.1}\" y2=\"{plot_bottom:.1}\" stroke=\"#222\" \
         stroke-dasharray=\"4 3\"/>",
        top - 4.0
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * a.abs().max(1.0)
    }

    #[test]
    fn linear_scale_starts_at_zero_and_ends_on_a_round_step() {
        let s = Scale::linear(3.8e6, 5.3e6, 100.0, 600.0);
        assert_eq!((s.lo, s.hi), (0.0, 6e6));
        assert_eq!(s.ticks(), vec![0.0, 2e6, 4e6, 6e6]);
        assert!(close(s.px(0.0), 100.0) && close(s.px(3e6), 350.0) && close(s.px(6e6), 600.0));
        // Negative data (a memory delta) gets a round start below zero.
        let s = Scale::linear(-1620.0, 144.0, 0.0, 100.0);
        assert_eq!((s.lo, s.hi), (-2000.0, 500.0));
        assert_eq!(s.ticks(), vec![-2000.0, -1500.0, -1000.0, -500.0, 0.0, 500.0]);
        assert!(close(s.px(0.0), 80.0));
    }

    #[test]
    fn log_scale_snaps_to_125_steps_and_thins_ticks_when_crowded() {
        // native create 3.8 ms .. runsc 122 ms: 2..200 ms, two decades.
        let s = Scale::log(3.8e6, 1.22e8, 0.0, 600.0);
        assert_eq!((s.lo, s.hi), (2e6, 2e8));
        assert!(close(s.px(2e7), 300.0), "{}", s.px(2e7));
        let t = s.ticks();
        assert_eq!(t.len(), 7, "{t:?}");
        for (a, b) in t.iter().zip([2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 2e8]) {
            assert!(close(*a, b), "{t:?}");
        }
        // Six decades in 600 px: powers of ten alone.
        let s = Scale::log(0.9, 4.4e5, 0.0, 600.0);
        assert_eq!((s.lo, s.hi), (0.5, 5e5));
        let t = s.ticks();
        assert_eq!(t.len(), 6, "{t:?}");
        assert!(close(t[0], 1.0) && close(t[5], 1e5), "{t:?}");
        // Out of range and non-positive values stay on the axis.
        assert_eq!(s.px(0.0), 0.0);
        assert_eq!(s.px(1e9), 600.0);
    }

    #[test]
    fn spread_decides_log() {
        assert!(wants_log(&[4.3e6, 1.05e8]));
        assert!(!wants_log(&[4.3e6, 1.7e7]));
        assert!(!wants_log(&[]));
        assert!(!wants_log(&[-5.0, 3.0]));
    }

    #[test]
    fn box_geometry_from_quantiles() {
        let samples: Vec<f64> = (0..=100).map(f64::from).collect();
        let b = BoxStats::from_samples(&samples).unwrap();
        assert_eq!((b.p5, b.p25, b.median, b.p75, b.p95), (5.0, 25.0, 50.0, 75.0, 95.0));
        assert_eq!((b.min, b.max), (0.0, 100.0));
        assert_eq!(b.outside.len(), 10);
        let s = Scale::linear(0.0, 100.0, 0.0, 200.0);
        let g = box_geom(&b, &s);
        assert_eq!(g.whisker, (10.0, 190.0));
        assert_eq!(g.body, (50.0, 150.0));
        assert_eq!(g.median, 100.0);
        assert_eq!(g.dots.first(), Some(&0.0));
        assert_eq!(g.dots.last(), Some(&200.0));
        assert!(BoxStats::from_samples(&[]).is_none());
    }

    #[test]
    fn charts_are_titled_and_escaped() {
        let rows = [
            BoxRow {
                label: "a<b",
                color: color(0),
                stats: BoxStats::from_samples(&[1.0, 2.0, 3.0]),
            },
            BoxRow {
                label: "c",
                color: color(1),
                stats: None,
            },
        ];
        let svg = box_plot("x", "t & u", &rows, false, &|v| format!("{v}"));
        assert!(svg.starts_with("<svg class=\"chart\" id=\"x\""), "{svg}");
        assert!(svg.contains("<title id=\"x-title\">t &amp; u</title>"), "{svg}");
        assert!(svg.contains(">a&lt;b</text>") && svg.contains("not measured"), "{svg}");
        let groups = [BarGroup {
            label: "getpid",
            bars: vec![Bar {
                label: "runsc",
                color: color(3),
                ratio: Some((440.0, (430.0, 452.0))),
            }],
        }];
        let svg = ratio_bars("y", "overhead", &groups, &[("runsc", color(3))]);
        assert!(
            svg.contains(">440x</text>") && svg.contains("stroke-dasharray"),
            "{svg}"
        );
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn ratio_labels() {
        assert_eq!(ratio_label(440.3), "440x");
        assert_eq!(ratio_label(24.43), "24.4x");
        assert_eq!(ratio_label(0.996), "1.00x");
        assert_eq!(tick_ratio(0.5), "0.5x");
        assert_eq!(tick_ratio(100.0), "100x");
    }
}
