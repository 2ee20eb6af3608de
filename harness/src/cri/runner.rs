//! Runs CRI cases against one endpoint, in parallel, each with its own
//! directory and names, tearing down what each made and charging leaks to
//! it. The results are conform's: the same JSON, renderings and exit codes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cri_api::v1 as api;

use super::case::{CriCase, CLAUSES};
use super::client::Client;
use super::ctx::{Ctx, Shared};
use super::daemon;
use super::registry::{self, LocalRegistry};
use crate::results::{self, CaseResult, FailureDetail, Results, RuntimeInfo, Status, Summary};
use crate::runner::{interrupted, judge, now_rfc3339, record, token, Leak, Progress};

/// What the runner reports a failure of its own setup as (the clause of a
/// case that could not even start).
pub const LEAK_CLAUSE: &str = "cri.RemovePodSandbox";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] super::client::Error),
    #[error(transparent)]
    Service(#[from] daemon::Error),
    #[error("work directory {path}: {source}")]
    Workdir { path: PathBuf, source: std::io::Error },
    #[error("the endpoint {endpoint} does not answer Version: {reason}")]
    Version { endpoint: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// `unix:///PATH`.
    pub endpoint: String,
    /// `RunPodSandboxRequest.runtime_handler` ("" the default).
    pub handler: String,
    /// `HOST:PORT` of a registry to push the test image to; `None` starts
    /// Debian's `docker-registry` on loopback.
    pub registry: Option<String>,
    pub probe: PathBuf,
    pub jobs: usize,
    pub workdir: PathBuf,
    pub timeout: Duration,
    pub command: Vec<String>,
}

/// The services and the connection a run (or a bench) needs.
pub struct Session {
    pub shared: Shared,
    pub version: api::VersionResponse,
    pub work: PathBuf,
    /// Kept alive for the run.
    _registry: Option<LocalRegistry>,
}

impl Session {
    /// Connects, asks Version, starts a registry if none is given and
    /// pushes the test images to it.
    pub fn open(o: &Options) -> Result<Self, Error> {
        let token = token();
        let work = o.workdir.join(format!("oci-harness-cri-{token}"));
        std::fs::create_dir_all(&work).map_err(|e| Error::Workdir {
            path: work.clone(),
            source: e,
        })?;
        let client = Client::connect(&o.endpoint, o.timeout)?;
        let version = client
            .version(api::VersionRequest {
                version: cri_api::API_VERSION.into(),
            })
            .map_err(|e| Error::Version {
                endpoint: o.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let by_design = by_design_of(&client, &o.handler);
        let (reg, host) = match &o.registry {
            Some(h) => (None, h.clone()),
            None => {
                let r = LocalRegistry::start(&work.join("registry"), o.timeout.max(Duration::from_secs(20)))?;
                let h = r.host.clone();
                (Some(r), h)
            }
        };
        let images = registry::push_test_images(&o.probe, &work, &host, o.timeout.max(Duration::from_secs(60)))?;
        Ok(Session {
            shared: Shared {
                client,
                images,
                handler: o.handler.clone(),
                by_design,
                token,
                timeout: o.timeout,
            },
            version,
            work,
            _registry: reg,
        })
    }

    /// Pulls the images the cases run, once, before them.
    pub fn pull_images(&self) -> Result<(), String> {
        for tag in ["latest", "user"] {
            let image = self.shared.images.image(tag);
            self.shared
                .client
                .with_deadline(self.shared.timeout * 6)
                .pull_image(api::PullImageRequest {
                    image: Some(api::ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .map_err(|e| format!("pulling {image}: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// The info key under which a verbose Status carries each handler's OCI
/// `features` document (our server's; others have none).
pub const FEATURES_INFO: &str = "features";

/// What `handler` declares it changes by design, from the endpoint's
/// verbose Status: `org.ociharness.by-design.KEY` annotations of its
/// features, by KEY. Empty when the endpoint says nothing of it.
fn by_design_of(client: &Client, handler: &str) -> std::collections::BTreeMap<String, String> {
    let Ok(status) = client.status(api::StatusRequest { verbose: true }) else {
        return Default::default();
    };
    by_design_in(status.info.get(FEATURES_INFO).map(String::as_str), handler)
}

fn by_design_in(features_info: Option<&str>, handler: &str) -> std::collections::BTreeMap<String, String> {
    let all: serde_json::Value = features_info
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let prefix = crate::case::by_design_annotation("");
    all.get(handler)
        .and_then(|f| f.get("annotations"))
        .and_then(|a| a.as_object())
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn result_of(case: &CriCase, d: Duration) -> CaseResult {
    CaseResult {
        id: case.id.to_string(),
        group: case.group().to_string(),
        status: Status::Skipped,
        clauses: case.clauses.iter().map(|c| c.to_string()).collect(),
        duration_ms: d.as_millis() as u64,
        message: String::new(),
        failure: None,
        log: Vec::new(),
    }
}

fn failed(mut r: CaseResult, clause: &str, expected: &str, observed: String, log: Vec<String>) -> CaseResult {
    r.status = Status::Failed;
    r.message = format!("[{clause}] expected {expected}, observed {observed}");
    r.failure = Some(FailureDetail {
        clause: clause.into(),
        expected: expected.into(),
        observed,
    });
    r.log = log;
    r
}

fn run_one(
    case: &CriCase,
    index: usize,
    shared: &Shared,
    work: &std::path::Path,
    setup: &Result<(), String>,
) -> CaseResult {
    let start = Instant::now();
    if let Err(e) = setup {
        // Without the test images no container can be made: charge it to
        // PullImage rather than to whatever call a case would fail next.
        if !matches!(case.group(), "runtime" | "bad_input") {
            let r = result_of(case, start.elapsed());
            return failed(
                r,
                "cri.PullImage",
                "the test images pulled before the cases",
                e.clone(),
                vec![],
            );
        }
    }
    let dir = work.join(format!("case{index}"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let r = result_of(case, start.elapsed());
        return failed(
            r,
            "harness",
            "a case directory",
            format!("{}: {e}", dir.display()),
            vec![],
        );
    }
    let clause = case.clauses.first().copied().unwrap_or("harness");
    let mut cx = Ctx::new(case.id, clause, shared, dir.clone());
    let outcome = catch_unwind(AssertUnwindSafe(|| (case.run)(&mut cx)));
    let leaks = cx.teardown();
    let verdict = judge(
        outcome,
        &leaks,
        &Leak {
            clause: LEAK_CLAUSE,
            expected: "nothing of the case's left after stop and remove",
            label: "still listed",
        },
    );
    super::containerd::unmount_under(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let log = cx.log().to_vec();
    record(result_of(case, start.elapsed()), verdict, log)
}

/// Counts, and coverage of the CRI contracts in [`CLAUSES`] (each is a
/// requirement, so the MUST figures equal the totals).
pub fn summarize(cases: &[CaseResult]) -> Summary {
    let mut s = Summary::default();
    let mut covered = std::collections::BTreeSet::new();
    for c in cases {
        match c.status {
            Status::Passed => s.passed += 1,
            Status::Failed => s.failed += 1,
            Status::Skipped => s.skipped += 1,
        }
        if c.status != Status::Skipped {
            covered.extend(c.clauses.iter().map(String::as_str));
        }
    }
    s.clauses_total = CLAUSES.len();
    s.clauses_covered = CLAUSES.iter().filter(|(id, _)| covered.contains(id)).count();
    s.must_total = s.clauses_total;
    s.must_covered = s.clauses_covered;
    s
}

/// Runs `cases` against the session's endpoint.
pub fn run_cases(
    cases: &[CriCase],
    session: &Session,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Results {
    crate::runner::install_interrupt_handler();
    let started_at = now_rfc3339();
    let start = Instant::now();
    let setup = session.pull_images();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let jobs = opts.jobs.max(1).min(cases.len().max(1));
    let shared = &session.shared;
    let work = &session.work;
    let setup = &setup;
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() {
                    break;
                }
                let r = if interrupted() {
                    let mut r = result_of(&cases[i], Duration::ZERO);
                    r.message = "interrupted".into();
                    r
                } else {
                    run_one(&cases[i], i, shared, work, setup)
                };
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(Progress {
                    done: n,
                    total: cases.len(),
                    last: &r,
                });
                slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    let cases: Vec<CaseResult> = slots
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let summary = summarize(&cases);
    let v = &session.version;
    let mut args = Vec::new();
    if !opts.handler.is_empty() {
        args.push(format!("--runtime-handler={}", opts.handler));
    }
    Results {
        schema: results::SCHEMA,
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: RuntimeInfo {
            path: opts.endpoint.clone(),
            version: format!(
                "{} {} (CRI {})",
                v.runtime_name, v.runtime_version, v.runtime_api_version
            ),
            args,
        },
        host: serde_json::to_value(crate::host::Host::detect()).unwrap_or_default(),
        started_at,
        command: opts.command.clone(),
        duration_ms: start.elapsed().as_millis() as u64,
        cases,
        summary,
    }
}

/// Opens a session and runs `cases`.
pub fn run(cases: &[CriCase], opts: &Options, progress: &(dyn Fn(Progress) + Sync)) -> Result<Results, Error> {
    crate::runner::check_probe(&opts.probe).map_err(|e| Error::Workdir {
        path: opts.probe.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let session = Session::open(opts)?;
    Ok(run_cases(cases, &session, opts, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_design_keys_come_from_the_handler_features_annotations() {
        let info = serde_json::json!({
            "vm": {"ociVersionMax": "1.3.0", "annotations": {
                "org.ociharness.by-design.host-files": "mounts are copies in the guest",
                "org.other": "x"
            }},
            "": {"annotations": {}}
        })
        .to_string();
        let m = by_design_in(Some(&info), "vm");
        assert_eq!(m.len(), 1);
        assert_eq!(m["host-files"], "mounts are copies in the guest");
        assert!(by_design_in(Some(&info), "").is_empty());
        assert!(by_design_in(Some(&info), "absent").is_empty());
        assert!(by_design_in(None, "vm").is_empty());
        assert!(by_design_in(Some("not json"), "vm").is_empty());
    }
}
