//! CRI latency: what a kubelet waits for, asked of any CRI endpoint (ours,
//! containerd's) through the same client. Three parts, endpoints taking
//! turns in each as the OCI runtimes do in `lifecycle`:
//!
//! - image pull: PullImage of the test image from the loopback registry,
//!   the image removed (untimed) before each pull;
//! - lifecycle: a pod with one container (`probe sleep inf`) run, created,
//!   started, stopped and removed, each call timed, and the pod plus
//!   container start end to end (the figure kubelet's pod start waits for);
//! - parallel: N pods, each with its container, started at once: pods per
//!   second, and each pod's start latency under that load.
//!
//! Everything made carries the run's label; it is stopped and removed after
//! each iteration (untimed), after a failure, and at the end, when whatever
//! the endpoint still lists under the label is removed and reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cri_api::v1 as api;

use super::results::{Leftover, Phase, RuntimeEntry, Unit};
use super::{interrupted, ns, turn_order, workdir_error, Error, Recorder, GIVE_UP_AFTER};
use crate::cri::client::{CallError, Client};
use crate::cri::ctx::{default_namespaces, RUN_LABEL};
use crate::cri::runner::{self, Session};

/// A CRI endpoint to measure, under the name its figures carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriTarget {
    pub name: String,
    /// `unix:///PATH`.
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct CriOptions {
    pub targets: Vec<CriTarget>,
    /// `RunPodSandboxRequest.runtime_handler` ("" the endpoint's default).
    pub handler: String,
    /// `HOST:PORT` of a registry every endpoint pulls from over plain HTTP;
    /// `None` starts Debian's `docker-registry` on loopback.
    pub registry: Option<String>,
    /// Pods started at once in a parallel round, and the rounds.
    pub parallel_pods: usize,
    pub parallel_rounds: usize,
    /// Pods in the host's network namespace: no CNI setup (containerd runs
    /// its CNI plugins for a pod network; ours only brings up loopback), so
    /// the endpoints are compared on the same work.
    pub host_network: bool,
    /// Deadline of one CRI call.
    pub timeout: Duration,
}

/// The lifecycle figures, in the order they are taken.
pub const OPS: &[&str] = &[
    "run_pod",
    "create",
    "start",
    "pod_start",
    "stop",
    "remove",
    "stop_pod",
    "remove_pod",
];

/// The figure the issue compares across endpoints.
pub const POD_START: &str = "cri.pod_start";

fn what(op: &str) -> &'static str {
    match op {
        "pull" => "PullImage of the test image from the loopback registry, the image removed before each pull",
        "run_pod" => "RunPodSandbox of a pod with its own IPC namespace, and network and UTS namespaces unless the settings say host_network",
        "create" => "CreateContainer of `probe sleep inf` from the pulled test image in the new pod",
        "start" => "StartContainer of the created container",
        "pod_start" => {
            "pod plus container start: RunPodSandbox, CreateContainer and StartContainer end to end"
        }
        "stop" => "StopContainer with timeout 0 (killed at once) of the running container",
        "remove" => "RemoveContainer of the stopped container",
        "stop_pod" => "StopPodSandbox of the pod without running containers",
        "remove_pod" => "RemovePodSandbox of the stopped pod",
        "parallel.throughput" => {
            "pods (each with its container) started at once: pods per second, from the first RunPodSandbox to the last StartContainer's return"
        }
        _ => "one pod's RunPodSandbox, CreateContainer and StartContainer, end to end, while the others of its round start too",
    }
}

/// Parts of the phase, for the progress line and the missing entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Pull,
    Lifecycle,
    Parallel,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Pull => "pull",
            Part::Lifecycle => "lifecycle",
            Part::Parallel => "parallel",
        }
    }
}

/// Steps the phase reports progress for, with `endpoints` endpoints.
pub fn steps(o: &CriOptions, warmup: usize, iterations: usize) -> usize {
    let n = o.targets.len();
    2 * (warmup + iterations) * n + (usize::from(warmup > 0) + o.parallel_rounds) * n
}

/// A call that failed, and which.
#[derive(Debug)]
struct Failure {
    op: &'static str,
    reason: String,
}

impl Failure {
    fn call(op: &'static str, e: CallError) -> Self {
        Failure {
            op,
            reason: e.to_string(),
        }
    }
}

/// Pods and containers made and not removed yet.
#[derive(Debug, Default)]
struct Made {
    pods: Vec<String>,
    containers: Vec<String>,
}

impl Made {
    fn absorb(&mut self, other: Made) {
        self.pods.extend(other.pods);
        self.containers.extend(other.containers);
    }
}

/// One endpoint in the run.
struct Ep {
    name: String,
    endpoint: String,
    /// `None` when it could not be set up (the reason is in `missing`).
    session: Option<Session>,
    /// Pod log directories.
    dir: PathBuf,
    seq: u64,
    made: Made,
    /// Parts it is no longer measured in.
    down: Vec<Part>,
}

/// What a pod and its container need: the run's label, names unique to the
/// endpoint, a log directory the endpoint writes to.
struct Configs {
    token: String,
    handler: String,
    host_network: bool,
}

impl Configs {
    fn namespaces(&self) -> api::NamespaceOption {
        let mut ns = default_namespaces();
        if self.host_network {
            ns.network = api::NamespaceMode::Node as i32;
        }
        ns
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(RUN_LABEL.to_string(), self.token.clone())])
    }

    fn pod(&self, ep: &mut Ep) -> api::PodSandboxConfig {
        ep.seq += 1;
        let n = ep.seq;
        let name = format!("bench-{}-{n}", self.token);
        let logs = ep.dir.join(format!("pod{n}"));
        let _ = std::fs::create_dir_all(&logs);
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: name.clone(),
                uid: format!("{name}-uid"),
                namespace: "oci-harness-bench".into(),
                attempt: 0,
            }),
            // A pod in the host's network has the host's UTS namespace too
            // (as kubelet does it): no hostname of its own.
            hostname: if self.host_network {
                String::new()
            } else {
                format!("bench{n}")
            },
            log_directory: logs.display().to_string(),
            labels: self.labels(),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(self.namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container(&self, image: &str) -> api::ContainerConfig {
        api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: "sleeper".into(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            command: vec!["/probe".into()],
            args: vec!["sleep".into(), "inf".into()],
            log_path: "sleeper.log".into(),
            labels: self.labels(),
            linux: Some(api::LinuxContainerConfig {
                security_context: Some(api::LinuxContainerSecurityContext {
                    namespace_options: Some(self.namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// A pod and its container, started; the three calls' times and the whole.
struct Started {
    run_pod: Duration,
    create: Duration,
    start: Duration,
    total: Duration,
}

/// RunPodSandbox, CreateContainer, StartContainer; what was made goes to
/// `made` whatever happens.
fn start_pod(
    c: &Client,
    handler: &str,
    pod: &api::PodSandboxConfig,
    ctr: &api::ContainerConfig,
    made: &mut Made,
) -> Result<Started, Failure> {
    let t0 = Instant::now();
    let r = c
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.to_string(),
        })
        .map_err(|e| Failure::call("run_pod", e))?;
    let t1 = Instant::now();
    made.pods.push(r.pod_sandbox_id.clone());
    let r = c
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: r.pod_sandbox_id,
            config: Some(ctr.clone()),
            sandbox_config: Some(pod.clone()),
        })
        .map_err(|e| Failure::call("create", e))?;
    let t2 = Instant::now();
    made.containers.push(r.container_id.clone());
    c.start_container(api::StartContainerRequest {
        container_id: r.container_id,
    })
    .map_err(|e| Failure::call("start", e))?;
    let t3 = Instant::now();
    Ok(Started {
        run_pod: t1 - t0,
        create: t2 - t1,
        start: t3 - t2,
        total: t3 - t0,
    })
}

/// Times `f`.
fn timed<T>(op: &'static str, f: impl FnOnce() -> Result<T, CallError>) -> Result<Duration, Failure> {
    let t = Instant::now();
    f().map_err(|e| Failure::call(op, e))?;
    Ok(t.elapsed())
}

/// One lifecycle iteration: each figure of [`OPS`].
fn lifecycle(
    c: &Client,
    cfg: &Configs,
    pod: &api::PodSandboxConfig,
    image: &str,
    made: &mut Made,
) -> Result<Vec<(&'static str, Duration)>, Failure> {
    let ctr = cfg.container(image);
    let s = start_pod(c, &cfg.handler, pod, &ctr, made)?;
    let pod_id = made.pods.last().cloned().unwrap_or_default();
    let ctr_id = made.containers.last().cloned().unwrap_or_default();
    let mut ops = vec![
        ("run_pod", s.run_pod),
        ("create", s.create),
        ("start", s.start),
        ("pod_start", s.total),
    ];
    let long = c.with_deadline(c.timeout * 2);
    ops.push((
        "stop",
        timed("stop", || {
            long.stop_container(api::StopContainerRequest {
                container_id: ctr_id.clone(),
                timeout: 0,
            })
        })?,
    ));
    ops.push((
        "remove",
        timed("remove", || {
            c.remove_container(api::RemoveContainerRequest {
                container_id: ctr_id.clone(),
            })
        })?,
    ));
    made.containers.retain(|x| *x != ctr_id);
    ops.push((
        "stop_pod",
        timed("stop_pod", || {
            long.stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: pod_id.clone(),
            })
        })?,
    ));
    ops.push((
        "remove_pod",
        timed("remove_pod", || {
            c.remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: pod_id.clone(),
            })
        })?,
    ));
    made.pods.retain(|x| *x != pod_id);
    Ok(ops)
}

/// RemoveImage (an absent image is no error: CRI says removal is
/// idempotent, and some endpoints answer NotFound), then a timed PullImage.
fn pull(c: &Client, image: &str) -> Result<Duration, Failure> {
    let spec = || api::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    };
    match c.remove_image(api::RemoveImageRequest { image: Some(spec()) }) {
        Ok(_) => {}
        Err(e) if e.code() == tonic::Code::NotFound => {}
        Err(e) => return Err(Failure::call("remove_image", e)),
    }
    let long = c.with_deadline(c.timeout * 4);
    timed("pull", || {
        long.pull_image(api::PullImageRequest {
            image: Some(spec()),
            ..Default::default()
        })
    })
}

/// One parallel round's outcome.
struct Round {
    /// Pods per second, when every pod started.
    throughput: Option<f64>,
    /// Each started pod's latency.
    starts: Vec<Duration>,
    failures: Vec<Failure>,
}

/// Starts every (pod, container) of `cfgs` at once, each on its thread.
fn parallel(
    c: &Client,
    handler: &str,
    cfgs: &[(api::PodSandboxConfig, api::ContainerConfig)],
    made: &mut Made,
) -> Round {
    let barrier = Barrier::new(cfgs.len());
    let outcomes: Vec<(Instant, Instant, Made, Result<Started, Failure>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cfgs
            .iter()
            .map(|(pod, ctr)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut mine = Made::default();
                    barrier.wait();
                    let t0 = Instant::now();
                    let r = start_pod(c, handler, pod, ctr, &mut mine);
                    (t0, Instant::now(), mine, r)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let first = outcomes.iter().map(|o| o.0).min();
    let last = outcomes.iter().map(|o| o.1).max();
    let mut round = Round {
        throughput: None,
        starts: Vec::new(),
        failures: Vec::new(),
    };
    for (_, _, mine, r) in outcomes {
        made.absorb(mine);
        match r {
            Ok(s) => round.starts.push(s.total),
            Err(f) => round.failures.push(f),
        }
    }
    if round.failures.is_empty() && round.starts.len() == cfgs.len() {
        if let (Some(a), Some(b)) = (first, last) {
            let secs = (b - a).as_secs_f64();
            if secs > 0.0 {
                round.throughput = Some(cfgs.len() as f64 / secs);
            }
        }
    }
    round
}

/// Stops and removes what `made` holds (containers first); what fails to
/// go stays in it, with the reasons returned.
fn teardown(c: &Client, made: &mut Made) -> Vec<String> {
    let long = c.with_deadline(c.timeout * 2);
    let mut errors = Vec::new();
    let mut kept = Vec::new();
    for id in std::mem::take(&mut made.containers).into_iter().rev() {
        let _ = long.stop_container(api::StopContainerRequest {
            container_id: id.clone(),
            timeout: 0,
        });
        if let Err(e) = c.remove_container(api::RemoveContainerRequest {
            container_id: id.clone(),
        }) {
            if e.code() != tonic::Code::NotFound {
                errors.push(format!("container {id}: {e}"));
                kept.push(id);
            }
        }
    }
    made.containers = kept;
    let mut kept = Vec::new();
    for id in std::mem::take(&mut made.pods).into_iter().rev() {
        let _ = long.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        });
        if let Err(e) = c.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        }) {
            if e.code() != tonic::Code::NotFound {
                errors.push(format!("pod {id}: {e}"));
                kept.push(id);
            }
        }
    }
    made.pods = kept;
    errors
}

/// After the phase: removes what is still listed under the run's label
/// (charged to the endpoint as left behind) and the pulled test image.
fn sweep(ep: &mut Ep, cfg: &Configs, image: &str, rec: &mut Recorder) {
    let Some(s) = ep.session.as_ref() else { return };
    let c = &s.shared.client;
    let _ = teardown(c, &mut ep.made);
    let mut left = Made::default();
    if let Ok(r) = c.list_containers(api::ListContainersRequest {
        filter: Some(api::ContainerFilter {
            label_selector: cfg.labels(),
            ..Default::default()
        }),
    }) {
        left.containers = r.containers.into_iter().map(|x| x.id).collect();
    }
    if let Ok(r) = c.list_pod_sandbox(api::ListPodSandboxRequest {
        filter: Some(api::PodSandboxFilter {
            label_selector: cfg.labels(),
            ..Default::default()
        }),
    }) {
        left.pods = r.items.into_iter().map(|x| x.id).collect();
    }
    let listed: Vec<(String, String)> = left
        .containers
        .iter()
        .map(|id| ("cri container".to_string(), id.clone()))
        .chain(left.pods.iter().map(|id| ("cri pod".to_string(), id.clone())))
        .collect();
    let errors = teardown(c, &mut left);
    for (kind, id) in listed {
        let what = match errors.iter().find(|e| e.contains(&id)) {
            Some(e) => format!("{id}, still listed after its removal; removing it again failed: {e}"),
            None => format!("{id}, still listed after its removal"),
        };
        rec.leftovers.push(Leftover {
            runtime: ep.name.clone(),
            kind,
            what,
        });
    }
    let _ = c.remove_image(api::RemoveImageRequest {
        image: Some(api::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
    });
}

/// Opens a session per endpoint: the first starts the registry (unless one
/// is given), the others push to it too.
fn open(o: &CriOptions, rec: &mut Recorder, work: &Path) -> Result<Vec<Ep>, Error> {
    let mut registry = o.registry.clone();
    let mut eps = Vec::new();
    for (i, t) in o.targets.iter().enumerate() {
        let dir = work.join(format!("cri{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| workdir_error(&dir, e))?;
        let ro = runner::Options {
            endpoint: t.endpoint.clone(),
            handler: o.handler.clone(),
            registry: registry.clone(),
            probe: rec.options.probe.clone(),
            jobs: 1,
            workdir: dir.clone(),
            timeout: o.timeout,
            command: Vec::new(),
        };
        let session = match Session::open(&ro) {
            Ok(s) => {
                registry.get_or_insert_with(|| s.shared.images.registry.clone());
                Some(s)
            }
            Err(e) => {
                rec.missing(&t.name, Phase::Cri, "every figure", format!("setting up: {e}"));
                None
            }
        };
        eps.push(Ep {
            name: t.name.clone(),
            endpoint: t.endpoint.clone(),
            session,
            dir,
            seq: 0,
            made: Made::default(),
            down: Vec::new(),
        });
    }
    Ok(eps)
}

/// Counts failures in a row per endpoint and part; gives up after
/// [`GIVE_UP_AFTER`].
fn failed(ep: &mut Ep, part: Part, consecutive: &mut usize, rec: &mut Recorder, label: &str, f: &Failure) {
    *consecutive += 1;
    rec.missing(
        &ep.name,
        Phase::Cri,
        format!("{} {label}: {}", part.name(), f.op),
        f.reason.clone(),
    );
    if *consecutive == GIVE_UP_AFTER {
        ep.down.push(part);
        rec.missing(
            &ep.name,
            Phase::Cri,
            format!("{}: the remaining iterations", part.name()),
            format!("given up after {GIVE_UP_AFTER} failures in a row"),
        );
    }
}

/// Measures every endpoint of `rec.options.cri`; returns their entries for
/// the results' `runtimes`.
pub(super) fn run(rec: &mut Recorder, work: &Path) -> Result<Vec<RuntimeEntry>, Error> {
    let Some(o) = rec.options.cri.clone() else {
        return Ok(Vec::new());
    };
    let cfg = Configs {
        token: crate::runner::token(),
        handler: o.handler.clone(),
        host_network: o.host_network,
    };
    let mut eps = open(&o, rec, work)?;
    let entries = eps
        .iter()
        .map(|ep| RuntimeEntry {
            name: ep.name.clone(),
            path: ep.endpoint.clone(),
            args: if o.handler.is_empty() {
                Vec::new()
            } else {
                vec![format!("--runtime-handler={}", o.handler)]
            },
            version: ep
                .session
                .as_ref()
                .map(|s| {
                    let v = &s.version;
                    format!(
                        "{} {} (CRI {})",
                        v.runtime_name, v.runtime_version, v.runtime_api_version
                    )
                })
                .unwrap_or_default(),
        })
        .collect();
    let image = eps
        .iter()
        .find_map(|e| e.session.as_ref())
        .map(|s| s.shared.images.image("latest"))
        .unwrap_or_default();
    measure(&mut eps, &o, &cfg, &image, rec);
    for ep in &mut eps {
        sweep(ep, &cfg, &image, rec);
    }
    Ok(entries)
}

/// The three parts, endpoints in turns.
fn measure(eps: &mut [Ep], o: &CriOptions, cfg: &Configs, image: &str, rec: &mut Recorder) {
    let (warmup, iterations) = (rec.options.warmup, rec.options.iterations);
    let n = eps.len();
    for part in [Part::Pull, Part::Lifecycle] {
        let mut consecutive = vec![0usize; n];
        for it in 0..warmup + iterations {
            let measured = it >= warmup;
            let label = if measured {
                format!("iteration {}", it - warmup + 1)
            } else {
                format!("warm-up {}", it + 1)
            };
            for i in turn_order(n, it) {
                if interrupted() {
                    return;
                }
                let ep = &mut eps[i];
                if ep.session.is_some() && !ep.down.contains(&part) {
                    rec.warm();
                    turn(ep, part, cfg, image, rec, measured, &label, &mut consecutive[i]);
                }
                rec.step(format!("cri {} {label} {}", part.name(), ep.name));
            }
        }
        if part == Part::Pull {
            // The other parts need the image: pulled untimed where the last
            // timed pull failed.
            for ep in eps.iter_mut() {
                let Some(s) = ep.session.as_ref() else { continue };
                let long = s.shared.client.with_deadline(o.timeout * 4);
                if let Err(e) = long.pull_image(api::PullImageRequest {
                    image: Some(api::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }) {
                    rec.missing(
                        &ep.name,
                        Phase::Cri,
                        "lifecycle and parallel",
                        format!("pulling {image}: {e}"),
                    );
                    ep.down.extend([Part::Lifecycle, Part::Parallel]);
                }
            }
        }
    }
    let warm_rounds = usize::from(warmup > 0);
    let mut consecutive = vec![0usize; n];
    for round in 0..warm_rounds + o.parallel_rounds {
        let measured = round >= warm_rounds;
        let label = if measured {
            format!("round {}", round - warm_rounds + 1)
        } else {
            "warm-up round".to_string()
        };
        for i in turn_order(n, round) {
            if interrupted() {
                return;
            }
            let ep = &mut eps[i];
            if ep.session.is_some() && !ep.down.contains(&Part::Parallel) {
                rec.warm();
                parallel_turn(ep, o, cfg, image, rec, measured, &label, &mut consecutive[i]);
            }
            rec.step(format!("cri parallel {label} {}", ep.name));
        }
    }
}

/// One endpoint's turn at an iteration of the pull or lifecycle part.
#[allow(clippy::too_many_arguments)]
fn turn(
    ep: &mut Ep,
    part: Part,
    cfg: &Configs,
    image: &str,
    rec: &mut Recorder,
    measured: bool,
    label: &str,
    consecutive: &mut usize,
) {
    let pod = match part {
        Part::Lifecycle => Some(cfg.pod(ep)),
        _ => None,
    };
    let Some(s) = ep.session.as_ref() else { return };
    let c = &s.shared.client;
    let r = match &pod {
        None => pull(c, image).map(|d| vec![("pull", d)]),
        Some(pod) => lifecycle(c, cfg, pod, image, &mut ep.made),
    };
    match r {
        Ok(ops) => {
            *consecutive = 0;
            if measured {
                for (op, d) in ops {
                    rec.push(&format!("cri.{op}"), Phase::Cri, &ep.name, Unit::Ns, what(op), ns(d));
                }
            }
        }
        Err(f) => {
            let errors = teardown(c, &mut ep.made);
            let mut f = f;
            if !errors.is_empty() {
                f.reason = format!("{}; cleaning up: {}", f.reason, errors.join("; "));
            }
            failed(ep, part, consecutive, rec, label, &f);
        }
    }
}

/// One endpoint's parallel round, torn down (untimed) after it.
#[allow(clippy::too_many_arguments)]
fn parallel_turn(
    ep: &mut Ep,
    o: &CriOptions,
    cfg: &Configs,
    image: &str,
    rec: &mut Recorder,
    measured: bool,
    label: &str,
    consecutive: &mut usize,
) {
    let cfgs: Vec<_> = (0..o.parallel_pods)
        .map(|_| (cfg.pod(ep), cfg.container(image)))
        .collect();
    let Some(s) = ep.session.as_ref() else { return };
    let c = &s.shared.client;
    let round = parallel(c, &cfg.handler, &cfgs, &mut ep.made);
    let errors = teardown(c, &mut ep.made);
    if measured {
        for d in &round.starts {
            rec.push(
                "cri.parallel.pod_start",
                Phase::Cri,
                &ep.name,
                Unit::Ns,
                what("parallel.pod_start"),
                ns(*d),
            );
        }
        if let Some(t) = round.throughput {
            rec.push(
                "cri.parallel.throughput",
                Phase::Cri,
                &ep.name,
                Unit::PodsPerSec,
                what("parallel.throughput"),
                t,
            );
        }
    }
    match round.failures.into_iter().next() {
        None => *consecutive = 0,
        Some(mut f) => {
            let others = o.parallel_pods - round.starts.len();
            f.reason = format!("{} ({others} of {} pods did not start)", f.reason, o.parallel_pods);
            if !errors.is_empty() {
                f.reason = format!("{}; cleaning up: {}", f.reason, errors.join("; "));
            }
            failed(ep, Part::Parallel, consecutive, rec, label, &f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(n: usize) -> CriOptions {
        CriOptions {
            targets: (0..n)
                .map(|i| CriTarget {
                    name: format!("e{i}"),
                    endpoint: format!("unix:///e{i}.sock"),
                })
                .collect(),
            handler: String::new(),
            registry: None,
            parallel_pods: 4,
            parallel_rounds: 2,
            host_network: false,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn steps_count_every_turn() {
        // pull and lifecycle: 2 parts x (1 warm-up + 3) x 2 endpoints; parallel: (1 + 2) x 2.
        assert_eq!(steps(&opts(2), 1, 3), 16 + 6);
        assert_eq!(steps(&opts(1), 0, 3), 6 + 2);
    }

    #[test]
    fn every_figure_says_what_it_is() {
        let mut seen = std::collections::HashSet::new();
        for op in OPS.iter().chain(&["pull", "parallel.throughput", "parallel.pod_start"]) {
            assert!(seen.insert(what(op)), "{op} shares its description");
        }
        assert_eq!(POD_START, format!("cri.{}", OPS[3]));
    }

    #[test]
    fn configs_are_unique_labelled_and_log_where_the_endpoint_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut ep = Ep {
            name: "a".into(),
            endpoint: "unix:///a.sock".into(),
            session: None,
            dir: dir.path().to_path_buf(),
            seq: 0,
            made: Made::default(),
            down: Vec::new(),
        };
        let mut cfg = Configs {
            token: "t1".into(),
            handler: String::new(),
            host_network: false,
        };
        let a = cfg.pod(&mut ep);
        let b = cfg.pod(&mut ep);
        assert_ne!(a.metadata.as_ref().unwrap().name, b.metadata.as_ref().unwrap().name);
        assert_ne!(a.metadata.as_ref().unwrap().uid, b.metadata.as_ref().unwrap().uid);
        assert!(Path::new(&a.log_directory).is_dir());
        assert_eq!(a.labels.get(RUN_LABEL).map(String::as_str), Some("t1"));
        let c = cfg.container("r/x:latest");
        assert_eq!(c.labels, a.labels);
        assert_eq!(c.image.unwrap().image, "r/x:latest");
        assert_eq!(c.args, ["sleep", "inf"]);
        let pod_ns = |p: &api::PodSandboxConfig| {
            p.linux
                .as_ref()
                .unwrap()
                .security_context
                .as_ref()
                .unwrap()
                .namespace_options
                .as_ref()
                .unwrap()
                .network
        };
        assert_eq!(pod_ns(&a), api::NamespaceMode::Pod as i32);
        cfg.host_network = true;
        let host = cfg.pod(&mut ep);
        assert_eq!(pod_ns(&host), api::NamespaceMode::Node as i32);
        assert_eq!(host.hostname, "", "the host's UTS namespace has no pod hostname");
        let c = cfg.container("r/x:latest");
        let ctr_ns = c.linux.unwrap().security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ctr_ns.network, api::NamespaceMode::Node as i32);
    }

    #[test]
    fn a_dead_endpoint_fails_each_call_naming_it_and_teardown_keeps_what_did_not_go() {
        // A listener gone after the connection was made: every call fails.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gone.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let c = Client::connect(&format!("unix://{}", sock.display()), Duration::from_millis(300));
        drop(l);
        let c = c.expect("the connection is made before the listener goes");
        let mut made = Made {
            pods: vec!["p1".into()],
            containers: vec!["c1".into()],
        };
        let errors = teardown(&c, &mut made);
        assert_eq!(made.pods, ["p1"]);
        assert_eq!(made.containers, ["c1"]);
        assert!(errors.iter().any(|e| e.contains("c1")), "{errors:?}");
        let f = pull(&c, "r/x:latest").unwrap_err();
        assert_eq!(f.op, "remove_image");
    }
}
