//! The JSON of `harness bench`: raw samples for every figure, the summaries
//! and ratios computed from them, and what could not be measured. The raw
//! samples are the source of truth: `finalize` recomputes everything else,
//! so a report or the CI gate can do the same from the file alone.

use serde::{Deserialize, Serialize};

use crate::stats::{self, Summary};

/// Bump when a field changes meaning or is removed.
pub const SCHEMA: u32 = 1;

/// The runtime name under which workloads run directly on the host.
pub const HOST: &str = "host";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// One container's create, start, state, kill, delete, and `run`.
    Lifecycle,
    /// Many containers started at once and held.
    Density,
    /// Workloads inside a container against the same on the host.
    Overhead,
    /// The harness's own cost, for judging the other figures.
    Harness,
    /// Pods and containers through a CRI endpoint (`--cri`).
    Cri,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Lifecycle => "lifecycle",
            Phase::Density => "density",
            Phase::Overhead => "overhead",
            Phase::Harness => "harness",
            Phase::Cri => "cri",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds per operation.
    Ns,
    ContainersPerSec,
    Kib,
    /// Pods (each with its container) started per second.
    PodsPerSec,
}

impl Unit {
    pub fn higher_is_better(self) -> bool {
        matches!(self, Unit::ContainersPerSec | Unit::PodsPerSec)
    }
}

/// A ratio of medians with its 95% bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// The runtime in the denominator (the first runtime, or `host`).
    pub baseline: String,
    pub value: f64,
    pub ci95: (f64, f64),
}

/// One figure of one runtime: `id` is `phase.name` (`lifecycle.create`,
/// `overhead.getpid`), the same for every runtime so runs can be matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub id: String,
    pub phase: Phase,
    pub runtime: String,
    pub unit: Unit,
    /// What one sample is, in words.
    pub what: String,
    pub samples: Vec<f64>,
    /// Computed from `samples` by `finalize`; absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
}

/// Something that was to be measured and was not, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    pub runtime: String,
    pub phase: Phase,
    /// The metric, iteration or workload concerned.
    pub what: String,
    pub reason: String,
}

/// What the harness found left behind after a runtime's containers were
/// deleted, and removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leftover {
    pub runtime: String,
    pub kind: String,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeEntry {
    /// The label used in tables and metric rows.
    pub name: String,
    pub path: String,
    pub args: Vec<String>,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub iterations: usize,
    pub warmup: usize,
    pub density: usize,
    pub density_rounds: usize,
    pub overhead_rounds: usize,
    pub batches: usize,
    pub batch_ms: u64,
    pub workloads: Vec<String>,
    pub phases: Vec<Phase>,
    /// Whether the run hid a hybrid host's cgroup2 mount (`--hybrid-as-v1`).
    pub hybrid_as_v1: bool,
    /// Whether each turn began with a throwaway cgroup migration, so the
    /// kernel's migration lock was warm for every runtime alike.
    #[serde(default)]
    pub cgroup_warmup: bool,
    /// The CRI phase's settings, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cri: Option<CriSettings>,
}

/// What the CRI phase measured against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CriSettings {
    /// The endpoints' labels, in order: the first is the baseline of the
    /// phase's ratios (the OCI runtimes, if any, come before them in
    /// `runtimes`).
    pub endpoints: Vec<String>,
    /// `RunPodSandboxRequest.runtime_handler` ("" the endpoint's default).
    pub runtime_handler: String,
    /// Pods started at once in a parallel round, and the rounds.
    pub parallel_pods: usize,
    pub parallel_rounds: usize,
    /// Pods ran in the host's network namespace (`--cri-host-network`).
    #[serde(default)]
    pub host_network: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
    pub memory_kib: u64,
    pub cgroup_mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    pub schema: u32,
    /// Always `bench`: tells these results from `conform`'s.
    pub kind: String,
    pub harness_version: String,
    pub command: Vec<String>,
    pub started_at: String,
    pub duration_ms: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub runtimes: Vec<RuntimeEntry>,
    pub metrics: Vec<Metric>,
    pub missing: Vec<Missing>,
    pub leftovers: Vec<Leftover>,
    /// The run was stopped (^C); what was measured until then is kept.
    pub interrupted: bool,
}

/// The harness's own cost, as the results show it: what every rendering
/// reports beside the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HarnessCost {
    /// Each runtime's median harness time per operation (ns), in order.
    pub per_runtime: Vec<(String, f64)>,
    /// The largest of those.
    pub worst: f64,
    /// The fastest lifecycle figure (runtime, metric id, median, unit): what
    /// the harness's own time must stay small against.
    pub fastest: Option<(String, String, f64, Unit)>,
    /// The median cost of spawning a static no-op on the host (ns).
    pub spawn: Option<f64>,
}

impl BenchResults {
    /// The harness's own cost; `None` when the run measured none of it.
    pub fn harness_cost(&self) -> Option<HarnessCost> {
        let per_runtime: Vec<(String, f64)> = self
            .runtimes
            .iter()
            .filter_map(|r| {
                let m = self.metric("harness.overhead", &r.name)?.summary.as_ref()?.median;
                Some((r.name.clone(), m))
            })
            .collect();
        let spawn = self
            .metric("harness.spawn", HOST)
            .and_then(|m| m.summary.as_ref())
            .map(|s| s.median);
        if per_runtime.is_empty() && spawn.is_none() {
            return None;
        }
        let fastest = self
            .metrics
            .iter()
            // A runtime verb's figure; a VM's boot breakdown is part of one.
            .filter(|m| m.phase == Phase::Lifecycle && !m.id.starts_with("lifecycle.vm."))
            .filter_map(|m| Some((m, m.summary.as_ref()?.median)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(m, v)| (m.runtime.clone(), m.id.clone(), v, m.unit));
        Some(HarnessCost {
            worst: per_runtime.iter().map(|x| x.1).fold(0.0, f64::max),
            per_runtime,
            fastest,
            spawn,
        })
    }

    /// Recomputes every summary and ratio from the raw samples: lifecycle,
    /// density and harness figures against the first runtime's, overhead
    /// figures against the host's, CRI figures against the first endpoint's.
    pub fn finalize(&mut self) {
        let first = self.runtimes.first().map(|r| r.name.clone()).unwrap_or_default();
        let first_endpoint = self.cri_baseline().unwrap_or_default().to_string();
        let snapshot: Vec<(String, String, Vec<f64>)> = self
            .metrics
            .iter()
            .map(|m| (m.id.clone(), m.runtime.clone(), m.samples.clone()))
            .collect();
        let find = |id: &str, rt: &str| {
            snapshot
                .iter()
                .find(|(i, r, _)| i == id && r == rt)
                .map(|(_, _, s)| s.as_slice())
        };
        for m in &mut self.metrics {
            m.summary = stats::summarize(&m.samples);
            let baseline = match m.phase {
                Phase::Overhead => HOST,
                Phase::Cri => first_endpoint.as_str(),
                _ => first.as_str(),
            };
            // The harness's own time is judged against the figures, not
            // compared across runtimes.
            m.ratio = if m.runtime == baseline || m.phase == Phase::Harness {
                None
            } else {
                find(&m.id, baseline)
                    .and_then(|b| stats::ratio(&m.samples, b))
                    .map(|(value, ci95)| Ratio {
                        baseline: baseline.to_string(),
                        value,
                        ci95,
                    })
            };
        }
    }

    /// The endpoint the CRI figures are compared with.
    pub fn cri_baseline(&self) -> Option<&str> {
        self.settings.cri.as_ref()?.endpoints.first().map(String::as_str)
    }

    pub fn metric(&self, id: &str, runtime: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.id == id && m.runtime == runtime)
    }

    /// Metric ids of `phase`, in first-seen order.
    pub fn ids(&self, phase: Phase) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for m in self.metrics.iter().filter(|m| m.phase == phase) {
            if !v.contains(&m.id.as_str()) {
                v.push(&m.id);
            }
        }
        v
    }

    /// 0 when everything asked for was measured, 1 when something is
    /// missing, 130 after an interrupt (what the shell reports for ^C).
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            130
        } else {
            i32::from(!self.missing.is_empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(id: &str, phase: Phase, rt: &str, samples: Vec<f64>) -> Metric {
        Metric {
            id: id.into(),
            phase,
            runtime: rt.into(),
            unit: Unit::Ns,
            what: String::new(),
            samples,
            summary: None,
            ratio: None,
        }
    }

    fn results(metrics: Vec<Metric>) -> BenchResults {
        let rt = |n: &str| RuntimeEntry {
            name: n.into(),
            path: n.into(),
            args: vec![],
            version: "v".into(),
        };
        BenchResults {
            schema: SCHEMA,
            kind: "bench".into(),
            harness_version: "0".into(),
            command: vec![],
            started_at: String::new(),
            duration_ms: 0,
            machine: Machine::default(),
            settings: Settings {
                iterations: 1,
                ..Settings::default()
            },
            runtimes: vec![rt("a"), rt("b")],
            metrics,
            missing: vec![],
            leftovers: vec![],
            interrupted: false,
        }
    }

    #[test]
    fn ratios_against_the_first_runtime_and_the_host() {
        let mut r = results(vec![
            metric("lifecycle.create", Phase::Lifecycle, "a", vec![10.0, 10.0, 10.0]),
            metric("lifecycle.create", Phase::Lifecycle, "b", vec![30.0, 30.0, 30.0]),
            metric("overhead.getpid", Phase::Overhead, HOST, vec![2.0, 2.0]),
            metric("overhead.getpid", Phase::Overhead, "a", vec![2.0, 2.0]),
            metric("overhead.getpid", Phase::Overhead, "b", vec![80.0, 80.0]),
            metric("lifecycle.start", Phase::Lifecycle, "b", vec![1.0]),
        ]);
        r.finalize();
        assert!(r.metric("lifecycle.create", "a").unwrap().ratio.is_none());
        let b = r.metric("lifecycle.create", "b").unwrap().ratio.clone().unwrap();
        assert_eq!((b.baseline.as_str(), b.value), ("a", 3.0));
        assert_eq!(
            r.metric("overhead.getpid", "b").unwrap().ratio.as_ref().unwrap().value,
            40.0
        );
        assert_eq!(
            r.metric("overhead.getpid", "a").unwrap().ratio.as_ref().unwrap().value,
            1.0
        );
        assert!(r.metric("overhead.getpid", HOST).unwrap().ratio.is_none());
        // No baseline samples: no ratio, but the summary stands.
        let lone = r.metric("lifecycle.start", "b").unwrap();
        assert!(lone.ratio.is_none() && lone.summary.is_some());
        assert_eq!(r.ids(Phase::Lifecycle), vec!["lifecycle.create", "lifecycle.start"]);
    }

    #[test]
    fn cri_figures_against_the_first_endpoint_not_the_first_runtime() {
        let mut r = results(vec![
            metric("lifecycle.create", Phase::Lifecycle, "a", vec![10.0, 10.0]),
            metric("cri.pod_start", Phase::Cri, "ours", vec![20.0, 20.0]),
            metric("cri.pod_start", Phase::Cri, "cd", vec![100.0, 100.0]),
        ]);
        for n in ["ours", "cd"] {
            r.runtimes.push(RuntimeEntry {
                name: n.into(),
                path: format!("unix:///{n}.sock"),
                args: vec![],
                version: "v".into(),
            });
        }
        r.settings.cri = Some(CriSettings {
            endpoints: vec!["ours".into(), "cd".into()],
            ..CriSettings::default()
        });
        r.finalize();
        let q = r.metric("cri.pod_start", "cd").unwrap().ratio.clone().unwrap();
        assert_eq!((q.baseline.as_str(), q.value), ("ours", 5.0));
        assert!(r.metric("cri.pod_start", "ours").unwrap().ratio.is_none());
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<BenchResults>(&text).unwrap(), r);
        // Results from before the phase existed still read.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["settings"].as_object_mut().unwrap().remove("cri");
        assert!(serde_json::from_value::<BenchResults>(v)
            .unwrap()
            .settings
            .cri
            .is_none());
        assert!(Unit::PodsPerSec.higher_is_better());
    }

    #[test]
    fn the_harness_cost_against_the_fastest_figure() {
        let mut r = results(vec![
            metric("lifecycle.state", Phase::Lifecycle, "a", vec![1000.0]),
            metric("lifecycle.state", Phase::Lifecycle, "b", vec![4000.0]),
            metric("harness.overhead", Phase::Harness, "a", vec![30.0]),
            metric("harness.overhead", Phase::Harness, "b", vec![50.0]),
        ]);
        assert!(results(vec![]).harness_cost().is_none());
        r.finalize();
        let c = r.harness_cost().unwrap();
        assert_eq!(c.per_runtime, vec![("a".to_string(), 30.0), ("b".to_string(), 50.0)]);
        assert_eq!(c.worst, 50.0);
        assert_eq!(
            c.fastest,
            Some(("a".into(), "lifecycle.state".into(), 1000.0, Unit::Ns))
        );
        assert_eq!(c.spawn, None);
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let mut r = results(vec![metric("lifecycle.run", Phase::Lifecycle, "a", vec![1.5, 2.5])]);
        r.finalize();
        let text = serde_json::to_string(&r).unwrap();
        let back: BenchResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!(text.contains("\"samples\":[1.5,2.5]"), "{text}");
    }

    #[test]
    fn exit_codes() {
        let mut r = results(vec![]);
        assert_eq!(r.exit_code(), 0);
        r.missing.push(Missing {
            runtime: "a".into(),
            phase: Phase::Lifecycle,
            what: "create".into(),
            reason: "exit 1".into(),
        });
        assert_eq!(r.exit_code(), 1);
        r.interrupted = true;
        assert_eq!(r.exit_code(), 130);
    }
}
