//! Generative and differential conformance (`harness fuzz`): configs drawn
//! by proptest strategies (`gen`), run on every runtime given; the probe's
//! report is checked against what the config promises (`expect`), reports
//! of different runtimes on the same config are compared, and invalid
//! configs must be refused leaving nothing behind. Each finding is shrunk
//! with proptest's value tree and written out as a reproducer that
//! `replay` runs again.

pub mod expect;
pub mod gen;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::case::Verdict;
use crate::cleanup::MARKER;
use crate::ctx::{parse_report, tail, Ctx, Shared};
use crate::host::Host;
use crate::runtime::{CreateOpts, ExitStatus, Runtime};
use expect::{Expectation, Observation};
use gen::Case;

/// Version of `fuzz.json` and `finding.json`.
pub const SCHEMA: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("reproducer {path}: {reason}")]
    Reproducer { path: PathBuf, reason: String },
    #[error("probe {0}: {1}")]
    Probe(PathBuf, String),
}

/// A runtime under test and the name it goes by in findings.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub runtime: Runtime,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub targets: Vec<Target>,
    pub cases: usize,
    pub seed: u64,
    pub jobs: usize,
    /// Where fuzz.json and findings/ go.
    pub output: PathBuf,
    pub timeout: Duration,
    pub probe: PathBuf,
    pub workdir: PathBuf,
    /// Container runs one finding's shrinking may spend.
    pub shrink_runs: usize,
    /// Every n-th case is an invalid config (0: none).
    pub invalid_every: usize,
    pub command: Vec<String>,
    /// Flags a replay needs as well (`--hybrid-as-v1`).
    pub replay_flags: Vec<String>,
}

/// Something a runtime did wrong on one config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// departure, divergence, lifecycle, accepted, crashed, leak.
    pub kind: String,
    pub clause: String,
    pub what: String,
    pub expected: Value,
    /// By runtime label.
    pub observed: BTreeMap<String, Value>,
    pub runtimes: Vec<String>,
}

impl Finding {
    /// What makes two findings the same bug, for shrinking and deduplication.
    pub fn signature(&self) -> String {
        format!("{}|{}|{}", self.kind, self.what, self.runtimes.join(","))
    }
}

/// A finding as the summary lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reported {
    #[serde(flatten)]
    pub finding: Finding,
    /// The index of the first case that showed it.
    pub case: usize,
    /// Later cases that showed the same signature.
    pub repeats: usize,
    pub reproducer: Option<String>,
    pub shrink_runs: usize,
    /// The container runs of the shrunk config (per runtime).
    pub replay: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeSummary {
    pub label: String,
    pub path: String,
    pub args: Vec<String>,
    pub version: String,
    /// Cases this runtime came through with no finding of its own.
    pub passed: usize,
    pub findings: usize,
    /// Its features annotations: changes by design the run allowed for.
    pub declared: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema: u32,
    pub seed: u64,
    pub cases: usize,
    pub valid: usize,
    pub invalid: usize,
    pub duration_ms: u64,
    pub command: Vec<String>,
    pub runtimes: Vec<RuntimeSummary>,
    pub findings: Vec<Reported>,
}

impl Summary {
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.findings.is_empty())
    }
}

/// What `finding.json` holds besides the finding: enough to run it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReproducerMeta {
    pub schema: u32,
    pub seed: u64,
    pub case: usize,
    #[serde(flatten)]
    pub finding: Finding,
    /// Set for an invalid config: the mutation it carries.
    pub mutation: Option<gen::Mutation>,
    pub replay: String,
}

/// Everything shared by the runs of one fuzz session.
struct Session {
    shared: Arc<Shared>,
    targets: Vec<Target>,
    /// Each target's features annotations (what it changes by design).
    declared: BTreeMap<String, Vec<String>>,
    work: PathBuf,
    token: String,
    seq: AtomicUsize,
}

fn host_namespaces() -> BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
        .into_iter()
        .filter_map(|n| {
            std::fs::metadata(format!("/proc/self/ns/{n}"))
                .ok()
                .map(|m| (n.to_string(), m.ino()))
        })
        .collect()
}

/// A problem one runtime had with one config.
#[derive(Debug, Clone)]
struct Problem {
    kind: &'static str,
    clause: String,
    what: String,
    expected: Value,
    observed: Value,
}

fn verdict_problem(kind: &'static str, what: &str, v: Verdict) -> Problem {
    match v {
        Verdict::Fail(f) => Problem {
            kind,
            clause: f.clause,
            what: what.to_string(),
            expected: json!(f.expected),
            observed: json!(f.observed),
        },
        Verdict::Skip(s) => Problem {
            kind,
            clause: "harness".into(),
            what: what.to_string(),
            expected: json!("to run"),
            observed: json!(s),
        },
    }
}

/// Reads the container's cgroup files the expectations name, from the host,
/// for the process `pid`.
fn read_cgroups(host: &Host, pid: i32, exps: &[Expectation]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return out;
    };
    for x in exps {
        let expect::Check::Cgroup(f) = &x.check else { continue };
        let Some((ctrl, file)) = f.split_once('/') else {
            continue;
        };
        let path = text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls.split(',').any(|c| c == ctrl).then(|| path.to_string())
        });
        let value = path
            .and_then(|p| host.cgroup_dir(ctrl, &p))
            .and_then(|d| std::fs::read_to_string(d.join(file)).ok());
        if let Some(v) = value {
            out.insert(f.clone(), v.trim().to_string());
        }
    }
    out
}

impl Session {
    fn new(opts: &Options) -> Result<Session, Error> {
        crate::runner::check_probe(&opts.probe).map_err(|e| Error::Probe(opts.probe.clone(), e.to_string()))?;
        crate::reaper::start();
        let token = crate::runner::token();
        let work = opts.workdir.join(format!("oci-harness-fuzz-{token}"));
        std::fs::create_dir_all(&work).map_err(|source| Error::Dir {
            path: work.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            host: Host::detect(),
            features: None,
            probe: opts.probe.clone(),
            timeout: opts.timeout,
            host_name: crate::cleanup::host_name(),
        });
        let declared = opts
            .targets
            .iter()
            .map(|t| {
                let f = crate::runner::features(&t.runtime, &work.join(format!("features-{}", t.label)));
                let keys = f
                    .as_ref()
                    .and_then(|f| f["annotations"].as_object())
                    .map(|a| a.keys().cloned().collect())
                    .unwrap_or_default();
                (t.label.clone(), keys)
            })
            .collect();
        Ok(Session {
            shared,
            declared,
            targets: opts.targets.clone(),
            work,
            token,
            seq: AtomicUsize::new(0),
        })
    }

    /// Runs `case` on one runtime: the observation (valid configs that ran)
    /// and the problems.
    fn run_one(&self, case: &Case, target: &Target) -> (Option<Observation>, Vec<Problem>) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let dir = self.work.join(format!("{n}"));
        let root = dir.join("root");
        let share = dir.join("work/share");
        if let Err(e) = std::fs::create_dir_all(&root).and_then(|_| std::fs::create_dir_all(&share)) {
            return (
                None,
                vec![Problem {
                    kind: "lifecycle",
                    clause: "harness".into(),
                    what: "harness setup".into(),
                    expected: json!("a run directory"),
                    observed: json!(e.to_string()),
                }],
            );
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&share, std::fs::Permissions::from_mode(0o777));
            let _ = std::fs::write(share.join("file"), "fuzz");
        }
        let prefix = format!("oh{}f{n}", self.token);
        let mut ctx = Ctx::new(
            "fuzz",
            "runtime.create.apply-config",
            self.shared.clone(),
            target.runtime.driver(&root),
            dir.clone(),
            prefix.clone(),
        );
        let config = instantiate(&case.config(), &self.shared.probe, &dir.join("work"));
        let (obs, mut problems) = match case.mutation() {
            None => {
                let declared = self.declared.get(&target.label).map(Vec::as_slice).unwrap_or(&[]);
                self.run_valid(&mut ctx, config, declared, &prefix, &dir)
            }
            Some(m) => (None, run_invalid(&mut ctx, config, m)),
        };
        let leak_clause = if case.mutation().is_some() {
            "runtime.create.apply-error-no-container"
        } else {
            "runtime.delete.remove-resources"
        };
        for l in ctx.teardown() {
            problems.push(Problem {
                kind: "leak",
                clause: leak_clause.into(),
                what: format!("leak {}", l.kind),
                expected: json!("nothing left behind"),
                observed: json!(l.what.replace(&prefix, "<id>")),
            });
        }
        let _ = std::fs::remove_dir_all(&dir);
        (obs, problems)
    }

    fn run_valid(
        &self,
        ctx: &mut Ctx,
        mut config: Value,
        declared: &[String],
        prefix: &str,
        dir: &Path,
    ) -> (Option<Observation>, Vec<Problem>) {
        let exps: Vec<Expectation> = expect::expectations(&expect::as_declared(&config, declared))
            .into_iter()
            .filter(|x| expect::applies(x, declared))
            .collect();
        let mut args = vec![json!(crate::bundle::PROBE), json!("report")];
        args.extend(expect::items(&exps).into_iter().map(Value::from));
        config["process"]["args"] = json!(args);
        if let Some(env) = config["process"]["env"].as_array_mut() {
            env.push(json!(format!("{MARKER}={prefix}")));
        }
        let lifecycle = |v| (None, vec![verdict_problem("lifecycle", "lifecycle", v)]);
        let b = match ctx.bundle_raw(&config) {
            Ok(b) => b,
            Err(v) => return lifecycle(v),
        };
        let c = match ctx.create(&b) {
            Ok(c) => c,
            Err(v) => return lifecycle(v),
        };
        let cgroup = c
            .pid
            .map(|p| read_cgroups(&self.shared.host, p, &exps))
            .unwrap_or_default();
        if let Err(v) = ctx.start(&c) {
            return lifecycle(v);
        }
        if let Err(v) = ctx
            .wait_exit(&c)
            .and_then(|_| ctx.wait_status(&c.id, "stopped").map(|_| ()))
        {
            return lifecycle(v);
        }
        match ctx.delete(&c.id, false) {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return lifecycle(crate::case::fail(
                    "runtime.lifecycle.destroy",
                    "delete of a stopped container to succeed",
                    format!("{}: {}", o.status, o.reason()),
                ))
            }
            Err(v) => return lifecycle(v),
        }
        let report = match parse_report(&c.io.stdout()) {
            Ok(r) => r,
            Err(e) => {
                return lifecycle(crate::case::fail(
                    "runtime.lifecycle.run-program",
                    "the probe to print its report",
                    format!("{e}; stderr: {:?}", tail(&c.io.stderr(), 300)),
                ))
            }
        };
        let hooks = std::fs::read_to_string(dir.join("work/hooks.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["hook"].as_str().map(str::to_string))
            .collect();
        let obs = Observation {
            report,
            hooks,
            cgroup,
            host_ns: host_namespaces(),
        };
        let problems = exps
            .iter()
            .filter_map(|x| {
                x.departure(&obs).map(|observed| Problem {
                    kind: "departure",
                    clause: x.clause.to_string(),
                    what: x.what.clone(),
                    expected: x.expected.clone(),
                    observed,
                })
            })
            .collect();
        (Some(obs), problems)
    }

    fn evaluate(&self, case: &Case) -> Vec<Finding> {
        self.evaluate_on(case, &[])
    }

    /// Runs `case` on the targets labelled in `only` (every target when
    /// empty) and turns what they did into findings.
    fn evaluate_on(&self, case: &Case, only: &[String]) -> Vec<Finding> {
        let config = case.config();
        let runs: Vec<(String, Option<Observation>, Vec<Problem>)> = self
            .targets
            .iter()
            .filter(|t| only.is_empty() || only.contains(&t.label))
            .map(|t| {
                let (o, p) = self.run_one(case, t);
                (t.label.clone(), o, p)
            })
            .collect();
        let mut findings = merge(runs.iter().map(|(l, _, p)| (l, p.as_slice())));
        // Differences between runtimes, judged only where every runtime met
        // every expectation: otherwise the departure already says it.
        let seen: Vec<(&String, BTreeMap<String, Value>)> = runs
            .iter()
            .filter_map(|(l, o, _)| o.as_ref().map(|o| (l, expect::comparable(o, &config))))
            .collect();
        let declared: Vec<String> = self
            .targets
            .iter()
            .filter(|t| only.is_empty() || only.contains(&t.label))
            .flat_map(|t| self.declared.get(&t.label).cloned().unwrap_or_default())
            .collect();
        let excused = expect::by_design(&config, &declared);
        if findings.iter().all(|f| f.kind != "departure") && seen.len() > 1 {
            for key in seen[0].1.keys().filter(|k| !excused.contains(&k.as_str())) {
                let first = &seen[0].1[key];
                if seen.iter().all(|(_, m)| m.get(key) == Some(first)) {
                    continue;
                }
                findings.push(Finding {
                    kind: "divergence".into(),
                    clause: "config.valid-values.subset".into(),
                    what: format!("differs: {key}"),
                    expected: json!("the same on every runtime"),
                    observed: seen
                        .iter()
                        .map(|(l, m)| ((*l).clone(), m.get(key).cloned().unwrap_or(Value::Null)))
                        .collect(),
                    runtimes: seen.iter().map(|(l, _)| (*l).clone()).collect(),
                });
            }
        }
        findings
    }
}

/// One finding per problem shared by runtimes (same kind, clause and
/// subject), listing each runtime once with what it showed.
fn merge<'a>(runs: impl Iterator<Item = (&'a String, &'a [Problem])>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for (label, problems) in runs {
        for p in problems {
            if let Some(f) = findings
                .iter_mut()
                .find(|f| f.kind == p.kind && f.what == p.what && f.clause == p.clause)
            {
                // One runtime may leave several things of a kind: its
                // observations are collected in a list.
                match f.observed.get_mut(label) {
                    Some(Value::Array(seen)) => seen.push(p.observed.clone()),
                    Some(first) => *first = json!([first.clone(), p.observed.clone()]),
                    None => {
                        f.runtimes.push(label.clone());
                        f.observed.insert(label.clone(), p.observed.clone());
                    }
                }
                continue;
            }
            findings.push(Finding {
                kind: p.kind.to_string(),
                clause: p.clause.clone(),
                what: p.what.clone(),
                expected: p.expected.clone(),
                observed: BTreeMap::from([(label.clone(), p.observed.clone())]),
                runtimes: vec![label.clone()],
            });
        }
    }
    findings
}

fn run_invalid(ctx: &mut Ctx, config: Value, m: gen::Mutation) -> Vec<Problem> {
    let problem = |kind, observed: String| Problem {
        kind,
        clause: m.clause().into(),
        what: format!("invalid {m:?}"),
        expected: json!("create to fail with a non-zero exit"),
        observed: json!(observed),
    };
    let b = match ctx.bundle_raw(&config) {
        Ok(b) => b,
        Err(v) => return vec![verdict_problem("lifecycle", "harness setup", v)],
    };
    let id = ctx.new_id();
    match ctx.create_raw(&id, &b, &CreateOpts::default()) {
        Ok((o, _)) => match o.status {
            ExitStatus::Code(0) => vec![problem("accepted", "exit 0".into())],
            ExitStatus::Signal(s) => vec![problem("crashed", format!("killed by signal {s}: {}", o.reason()))],
            ExitStatus::Code(_) => Vec::new(),
        },
        Err(v) => vec![verdict_problem("lifecycle", &format!("invalid {m:?}"), v)],
    }
}

/// The config with the placeholders replaced for one run.
pub fn instantiate(config: &Value, probe: &Path, work: &Path) -> Value {
    let text = config.to_string();
    let text = text
        .replace(gen::PROBE_VAR, &probe.display().to_string())
        .replace(gen::WORK_VAR, &work.display().to_string());
    serde_json::from_str(&text).unwrap_or_else(|_| config.clone())
}

fn rng(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

type Tree = Box<dyn ValueTree<Value = Case>>;

/// Draws the session's cases: every `invalid_every`-th is invalid.
fn draw(opts: &Options) -> Vec<Tree> {
    let mut runner = rng(opts.seed);
    let valid = gen::valid();
    let invalid = gen::invalid();
    (0..opts.cases)
        .filter_map(|i| {
            let s = if opts.invalid_every > 0 && i % opts.invalid_every == opts.invalid_every - 1 {
                &invalid
            } else {
                &valid
            };
            s.new_tree(&mut runner).ok().map(|t| Box::new(t) as Tree)
        })
        .collect()
}

/// Shrinks the case of `tree` while the finding with `sig` keeps showing:
/// proptest's shrinking of the tree first, then a coarse pass putting each
/// knob left back to its plain value. Returns the smallest case that still
/// shows it with that finding, and the runs spent; `None` when the finding
/// did not show again on the first try.
fn shrink(
    session: &Session,
    tree: &mut Tree,
    sig: &str,
    only: &[String],
    budget: usize,
) -> (Option<(Case, Finding)>, usize) {
    let mut runs = 0;
    let shows = |c: &Case, runs: &mut usize| {
        *runs += 1;
        session.evaluate_on(c, only).into_iter().find(|f| f.signature() == sig)
    };
    let mut best_case = tree.current();
    let Some(mut best) = shows(&best_case, &mut runs) else {
        return (None, runs);
    };
    // Proptest's shrinking goes field by field through the tree, finely
    // but slowly: it gets half the budget.
    let mut more = tree.simplify();
    while more && runs < budget / 2 {
        let c = tree.current();
        match shows(&c, &mut runs) {
            Some(f) => {
                best_case = c;
                best = f;
                more = tree.simplify();
            }
            None => more = tree.complicate(),
        }
    }
    // Then sweeps putting each knob left back to plain, keeping each reset
    // that still shows the finding, until a sweep changes nothing.
    let mut progress = true;
    while progress && runs < budget {
        progress = false;
        let mut i = 0;
        loop {
            let reductions = best_case.knobs().reductions();
            if i >= reductions.len() || runs >= budget {
                break;
            }
            let c = best_case.with_knobs(reductions[i].clone());
            match shows(&c, &mut runs) {
                Some(f) => {
                    // The field is plain now, so the same index names the next one.
                    best_case = c;
                    best = f;
                    progress = true;
                }
                None => i += 1,
            }
        }
    }
    (Some((best_case, best)), runs)
}

/// The runtimes a finding's shrinking must run: its own, or every one for
/// a difference between runtimes.
fn shrink_on(f: &Finding) -> Vec<String> {
    if f.kind == "divergence" {
        Vec::new()
    } else {
        f.runtimes.clone()
    }
}

fn replay_command(dir: &Path, opts: &Options, labels: &[String]) -> String {
    let targets = &opts.targets;
    let mut cmd = format!("harness fuzz --replay {}", dir.display());
    for f in &opts.replay_flags {
        cmd.push(' ');
        cmd.push_str(f);
    }
    for t in targets.iter().filter(|t| labels.contains(&t.label)) {
        let mut spec = t.runtime.path.display().to_string();
        for a in &t.runtime.global_args {
            spec.push(' ');
            spec.push_str(a);
        }
        if spec.contains(' ') || t.label != t.runtime.path.display().to_string() {
            cmd.push_str(&format!(" --runtime '{}={}'", t.label, spec));
        } else {
            cmd.push_str(&format!(" --runtime {spec}"));
        }
    }
    cmd
}

/// Writes `DIR/findings/<n>/`: the config (with placeholders), the
/// finding, the case knobs, and a replay script.
fn write_reproducer(dir: &Path, case: &Case, meta: &ReproducerMeta) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&case.config())?)?;
    std::fs::write(dir.join("case.json"), serde_json::to_string_pretty(case)?)?;
    std::fs::write(dir.join("finding.json"), serde_json::to_string_pretty(meta)?)?;
    // The script finds its directory itself: a reproducer can be moved
    // (into a published report) and still replay.
    let here = meta.replay.replacen(
        &format!("--replay {}", dir.display()),
        "--replay \"$(dirname \"$0\")\"",
        1,
    );
    let script = format!(
        "#!/bin/sh\n# {} [{}] {}: {}\n# config.json names host paths as {} (the probe, run as a hook) and {}\n# (a private directory the run makes); the harness fills them in.\nexec {}\n",
        meta.finding.kind,
        meta.finding.clause,
        meta.finding.what,
        meta.finding.runtimes.join(", "),
        gen::PROBE_VAR,
        gen::WORK_VAR,
        here
    );
    let p = dir.join("replay.sh");
    std::fs::write(&p, script)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
}

/// Progress of a run: cases done, total, findings so far.
pub type Progress<'a> = &'a (dyn Fn(usize, usize, usize) + Sync);

/// Runs a fuzz session and writes `fuzz.json` and the reproducers.
pub fn run(opts: &Options, progress: Progress<'_>) -> Result<Summary, Error> {
    let start = Instant::now();
    let session = Session::new(opts)?;
    let trees = draw(opts);
    let cases: Vec<Case> = trees.iter().map(|t| t.current()).collect();
    let slots: Mutex<Vec<Vec<Finding>>> = Mutex::new(vec![Vec::new(); cases.len()]);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1).min(cases.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() || crate::runner::interrupted() {
                    break;
                }
                let f = session.evaluate(&cases[i]);
                found.fetch_add(f.len(), Ordering::SeqCst);
                slots.lock().unwrap_or_else(|p| p.into_inner())[i] = f;
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(d, cases.len(), found.load(Ordering::SeqCst));
            });
        }
    });
    let per_case = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut runtimes: Vec<RuntimeSummary> = opts
        .targets
        .iter()
        .map(|t| RuntimeSummary {
            label: t.label.clone(),
            path: t.runtime.path.display().to_string(),
            args: t.runtime.global_args.clone(),
            version: t.runtime.version(),
            passed: 0,
            findings: 0,
            declared: session.declared.get(&t.label).cloned().unwrap_or_default(),
        })
        .collect();
    for fs in &per_case {
        for r in &mut runtimes {
            let mine = fs.iter().filter(|f| f.runtimes.contains(&r.label)).count();
            r.findings += mine;
            r.passed += usize::from(mine == 0);
        }
    }
    // First occurrence of each signature is shrunk; later ones counted.
    let mut reported: Vec<Reported> = Vec::new();
    let mut trees = trees;
    let mut shrunk_trees: Vec<usize> = Vec::new();
    for (i, fs) in per_case.iter().enumerate() {
        for f in fs {
            let sig = f.signature();
            if let Some(r) = reported.iter_mut().find(|r| r.finding.signature() == sig) {
                r.repeats += 1;
                continue;
            }
            let n = reported.len() + 1;
            let dir = opts.output.join("findings").join(n.to_string());
            // A tree is shrunk once: a second finding of the same case
            // keeps the case as drawn.
            let (shrunk, shrink_runs) = if opts.shrink_runs > 0 && !shrunk_trees.contains(&i) {
                shrunk_trees.push(i);
                shrink(&session, &mut trees[i], &sig, &shrink_on(f), opts.shrink_runs)
            } else {
                (None, 0)
            };
            let (case, finding) = shrunk.unwrap_or_else(|| (cases[i].clone(), f.clone()));
            let replay = replay_command(&dir, opts, &finding.runtimes);
            let meta = ReproducerMeta {
                schema: SCHEMA,
                seed: opts.seed,
                case: i,
                finding: finding.clone(),
                mutation: case.mutation(),
                replay: replay.clone(),
            };
            let reproducer = write_reproducer(&dir, &case, &meta)
                .ok()
                .map(|_| dir.display().to_string());
            reported.push(Reported {
                finding,
                case: i,
                repeats: 0,
                reproducer,
                shrink_runs,
                replay,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&session.work);
    let invalid = cases.iter().filter(|c| c.mutation().is_some()).count();
    Ok(Summary {
        schema: SCHEMA,
        seed: opts.seed,
        cases: per_case.len(),
        valid: cases.len() - invalid,
        invalid,
        duration_ms: start.elapsed().as_millis() as u64,
        command: opts.command.clone(),
        runtimes,
        findings: reported,
    })
}

/// Runs a reproducer again on `opts.targets`: the findings it shows now.
pub fn replay(dir: &Path, opts: &Options) -> Result<(ReproducerMeta, Vec<Finding>), Error> {
    let bad = |reason: String| Error::Reproducer {
        path: dir.to_path_buf(),
        reason,
    };
    let read = |name: &str| -> Result<String, Error> {
        std::fs::read_to_string(dir.join(name)).map_err(|e| bad(format!("{name}: {e}")))
    };
    let case: Case = serde_json::from_str(&read("case.json")?).map_err(|e| bad(format!("case.json: {e}")))?;
    let meta: ReproducerMeta =
        serde_json::from_str(&read("finding.json")?).map_err(|e| bad(format!("finding.json: {e}")))?;
    let session = Session::new(opts)?;
    let found = session.evaluate(&case);
    let _ = std::fs::remove_dir_all(&session.work);
    Ok((meta, found))
}

/// The human table of a summary.
pub fn table(s: &Summary) -> String {
    let mut out = format!(
        "fuzz: {} configs ({} valid, {} invalid), seed {}, {:.1} s\n\n{:<16} {:>8} {:>9}  version\n",
        s.cases,
        s.valid,
        s.invalid,
        s.seed,
        s.duration_ms as f64 / 1000.0,
        "runtime",
        "passed",
        "findings"
    );
    for r in &s.runtimes {
        out.push_str(&format!(
            "{:<16} {:>8} {:>9}  {}\n",
            r.label, r.passed, r.findings, r.version
        ));
    }
    if s.findings.is_empty() {
        out.push_str("\nno findings\n");
        return out;
    }
    out.push_str(&format!("\n{} distinct findings:\n", s.findings.len()));
    for (n, r) in s.findings.iter().enumerate() {
        let f = &r.finding;
        let observed: Vec<String> = f.observed.iter().map(|(k, v)| format!("{k}: {}", short(v))).collect();
        out.push_str(&format!(
            "{:>3}. {} [{}] {} on {} (x{}): expected {}, observed {}\n     replay: {}\n",
            n + 1,
            f.kind,
            f.clause,
            f.what,
            f.runtimes.join(","),
            r.repeats + 1,
            short(&f.expected),
            observed.join("; "),
            r.replay
        ));
    }
    out
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 160 {
        format!("{}...", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in_everywhere() {
        let mut k = gen::knobs().new_tree(&mut rng(5)).unwrap().current();
        k.hooks = true;
        k.bind = Some((false, true));
        let c = instantiate(&k.config(), Path::new("/p/probe"), Path::new("/w"));
        let text = c.to_string();
        assert!(
            !text.contains(gen::PROBE_VAR) && !text.contains(gen::WORK_VAR),
            "{text}"
        );
        assert_eq!(c["hooks"]["createRuntime"][0]["path"], "/p/probe");
        assert!(text.contains("/w/share") && text.contains("/w/hooks.jsonl"));
    }

    #[test]
    fn a_seed_draws_the_same_session() {
        let opts = |seed| Options {
            targets: vec![],
            cases: 12,
            seed,
            jobs: 1,
            output: PathBuf::new(),
            timeout: Duration::from_secs(1),
            probe: PathBuf::new(),
            workdir: PathBuf::new(),
            shrink_runs: 0,
            invalid_every: 4,
            command: vec![],
            replay_flags: vec![],
        };
        let a: Vec<Case> = draw(&opts(1)).iter().map(|t| t.current()).collect();
        let b: Vec<Case> = draw(&opts(1)).iter().map(|t| t.current()).collect();
        let c: Vec<Case> = draw(&opts(2)).iter().map(|t| t.current()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.iter().filter(|c| c.mutation().is_some()).count(), 3);
    }

    fn problem(what: &str, observed: &str) -> Problem {
        Problem {
            kind: "leak",
            clause: "runtime.delete.remove-resources".into(),
            what: what.into(),
            expected: json!("nothing"),
            observed: json!(observed),
        }
    }

    #[test]
    fn problems_merge_per_subject_naming_each_runtime_once() {
        let (a, b) = ("runc".to_string(), "crun".to_string());
        let pa = vec![problem("leak cgroup", "/x"), problem("leak cgroup", "/y")];
        let pb = vec![problem("leak cgroup", "/z"), problem("leak mount", "/m")];
        let f = merge([(&a, pa.as_slice()), (&b, pb.as_slice())].into_iter());
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].runtimes, ["runc", "crun"]);
        assert_eq!(f[0].observed["runc"], json!(["/x", "/y"]));
        assert_eq!(f[0].observed["crun"], json!("/z"));
        assert_eq!(f[1].runtimes, ["crun"]);
    }

    #[test]
    fn a_signature_names_kind_what_and_runtimes() {
        let f = Finding {
            kind: "leak".into(),
            clause: "c".into(),
            what: "leak process".into(),
            expected: Value::Null,
            observed: BTreeMap::new(),
            runtimes: vec!["runc".into(), "native".into()],
        };
        assert_eq!(f.signature(), "leak|leak process|runc,native");
    }
}
