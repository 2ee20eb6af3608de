//! What a CRI case works with: the client, the pushed test images, names
//! unique to the case, and the pods and containers it made, torn down at the
//! end whatever happened (and a leak is a failure).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cri_api::v1 as api;
use probe::report::Report;

use super::client::{CallError, CallResult, Client};
use super::registry::Pushed;
use crate::case::{fail, Verdict};

/// The label every pod and container of a run carries (value: the run's
/// token), and the one naming the case.
pub const RUN_LABEL: &str = "oci-harness.run";
pub const CASE_LABEL: &str = "oci-harness.case";

/// What every case of a run shares.
#[derive(Debug)]
pub struct Shared {
    pub client: Client,
    pub images: Pushed,
    /// `RunPodSandboxRequest.runtime_handler`.
    pub handler: String,
    pub token: String,
    /// Per call and per wait.
    pub timeout: Duration,
    /// What the handler changes by design, by key (`host-files`,
    /// `host-namespaces`...): the endpoint's verbose Status carries each
    /// handler's OCI `features`, whose annotations declare them as
    /// `org.ociharness.by-design.KEY` (see `crate::case::Need::Unchanged`).
    pub by_design: BTreeMap<String, String>,
}

pub type Step<T> = Result<T, Verdict>;

/// One case's context.
pub struct Ctx<'a> {
    pub id: &'static str,
    /// The case's first clause: failures of helpers are charged to it.
    pub clause: &'static str,
    pub shared: &'a Shared,
    /// A directory of the case's own (pod log directories, host mounts).
    pub dir: PathBuf,
    pods: Vec<String>,
    containers: Vec<String>,
    log: Vec<String>,
    seq: u32,
}

/// `cri.NAME` for an RPC.
pub fn clause_of(e: &CallError) -> String {
    match e {
        CallError::Status { rpc, .. } | CallError::Timeout { rpc, .. } => format!("cri.{rpc}"),
    }
}

/// A failure because an RPC that should succeed failed.
pub fn call_failed(e: &CallError) -> Verdict {
    fail(&clause_of(e), "the call to succeed", e)
}

/// The run-unique label value for a case id (`::` is not label-safe).
fn case_label(id: &str) -> String {
    id.replace("::", ".")
}

impl<'a> Ctx<'a> {
    pub fn new(id: &'static str, clause: &'static str, shared: &'a Shared, dir: PathBuf) -> Self {
        Ctx {
            id,
            clause,
            shared,
            dir,
            pods: Vec::new(),
            containers: Vec::new(),
            log: Vec::new(),
            seq: 0,
        }
    }

    /// Why the handler changes `key` by design, if it declares so.
    pub fn by_design(&self, key: &str) -> Option<String> {
        self.shared.by_design.get(key).cloned()
    }

    /// Skips the case when the handler changes `key` by design: what it
    /// checks is then not the host's.
    pub fn unchanged(&self, key: &str) -> Step<()> {
        match self.by_design(key) {
            Some(why) => Err(crate::case::skip(format!(
                "handler {:?} does not keep {key} as the host has it, by design: {why}",
                self.shared.handler
            ))),
            None => Ok(()),
        }
    }

    pub fn c(&self) -> &Client {
        &self.shared.client
    }

    pub fn log(&self) -> &[String] {
        &self.log
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
    }

    /// Logs `what` and the result; an error fails the case with the RPC as
    /// the clause.
    pub fn ok<T>(&mut self, what: &str, r: CallResult<T>) -> Step<T> {
        match r {
            Ok(v) => {
                self.log.push(format!("{what}: ok"));
                Ok(v)
            }
            Err(e) => {
                self.log.push(format!("{what}: {e}"));
                Err(call_failed(&e))
            }
        }
    }

    /// Logs `what` and passes the result through (for calls expected to fail).
    pub fn try_<T>(&mut self, what: &str, r: CallResult<T>) -> CallResult<T> {
        match &r {
            Ok(_) => self.log.push(format!("{what}: ok")),
            Err(e) => self.log.push(format!("{what}: {e}")),
        }
        r
    }

    /// The image reference of the test image tagged `tag`.
    pub fn image(&self, tag: &str) -> String {
        self.shared.images.image(tag)
    }

    /// The labels that mark what this case made.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (RUN_LABEL.to_string(), self.shared.token.clone()),
            (CASE_LABEL.to_string(), case_label(self.id)),
        ])
    }

    fn next(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// A pod config: unique metadata, log directory under the case's
    /// directory, the case's labels, namespaces as kubelet defaults them.
    pub fn pod_config(&mut self, name: &str) -> api::PodSandboxConfig {
        let n = self.next();
        let full = format!(
            "{}-{}-{name}",
            self.shared.token,
            case_label(self.id).replace(['.', '_'], "-")
        );
        let logs = self.dir.join(format!("pod{n}-logs"));
        let _ = std::fs::create_dir_all(&logs);
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: full.clone(),
                uid: format!("{full}-uid{n}"),
                namespace: "oci-harness".into(),
                attempt: 0,
            }),
            hostname: format!("pod{n}"),
            log_directory: logs.display().to_string(),
            labels: self.labels(),
            annotations: HashMap::from([("oci-harness.annotation".to_string(), format!("pod-{n}"))]),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(default_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// RunPodSandbox with the run's handler; the pod is torn down at the end.
    pub fn run_pod(&mut self, cfg: &api::PodSandboxConfig) -> Step<String> {
        let r = self.c().run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: self.shared.handler.clone(),
        });
        let id = self.ok("RunPodSandbox", r)?.pod_sandbox_id;
        self.note(format!("  pod {id}"));
        self.pods.push(id.clone());
        Ok(id)
    }

    /// A pod with the default config.
    pub fn pod(&mut self, name: &str) -> Step<(String, api::PodSandboxConfig)> {
        let cfg = self.pod_config(name);
        let id = self.run_pod(&cfg)?;
        Ok((id, cfg))
    }

    /// A container config running `/probe ARGS...` from the `latest` image,
    /// logging to `NAME.log`.
    pub fn container_config(&mut self, name: &str, args: &[&str]) -> api::ContainerConfig {
        api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: self.image("latest"),
                ..Default::default()
            }),
            command: vec!["/probe".into()],
            args: args.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            labels: self.labels(),
            annotations: HashMap::from([("oci-harness.annotation".to_string(), name.to_string())]),
            linux: Some(api::LinuxContainerConfig {
                security_context: Some(api::LinuxContainerSecurityContext {
                    namespace_options: Some(default_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// CreateContainer; the container is removed at the end.
    pub fn create(&mut self, pod: &str, pod_cfg: &api::PodSandboxConfig, cfg: &api::ContainerConfig) -> Step<String> {
        let r = self.c().create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.to_string(),
            config: Some(cfg.clone()),
            sandbox_config: Some(pod_cfg.clone()),
        });
        let id = self.ok("CreateContainer", r)?.container_id;
        self.note(format!("  container {id}"));
        self.containers.push(id.clone());
        Ok(id)
    }

    pub fn start(&mut self, id: &str) -> Step<()> {
        let r = self.c().start_container(api::StartContainerRequest {
            container_id: id.to_string(),
        });
        self.ok("StartContainer", r).map(drop)
    }

    /// StopPodSandbox, given twice the call timeout: it stops every
    /// container of the pod first.
    pub fn stop_pod(&mut self, id: &str) -> Step<()> {
        let r = self
            .c()
            .with_deadline(self.shared.timeout * 2)
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            });
        self.ok("StopPodSandbox", r).map(drop)
    }

    /// StopPodSandbox, then RemovePodSandbox.
    pub fn stop_and_remove_pod(&mut self, id: &str) -> Step<()> {
        self.stop_pod(id)?;
        let r = self.c().remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        });
        self.ok("RemovePodSandbox", r).map(drop)
    }

    /// Create and start.
    pub fn run(&mut self, pod: &str, pod_cfg: &api::PodSandboxConfig, cfg: &api::ContainerConfig) -> Step<String> {
        let id = self.create(pod, pod_cfg, cfg)?;
        self.start(&id)?;
        Ok(id)
    }

    pub fn container_status(&mut self, id: &str) -> Step<api::ContainerStatus> {
        let r = self.c().container_status(api::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        });
        let s = self.ok("ContainerStatus", r)?;
        s.status
            .ok_or_else(|| fail("cri.ContainerStatus", "a status", "a response without status"))
    }

    pub fn pod_status(&mut self, id: &str) -> Step<api::PodSandboxStatus> {
        let r = self.c().pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        });
        let s = self.ok("PodSandboxStatus", r)?;
        s.status
            .ok_or_else(|| fail("cri.PodSandboxStatus", "a status", "a response without status"))
    }

    /// Polls ContainerStatus until the container has exited.
    pub fn wait_exit(&mut self, id: &str) -> Step<api::ContainerStatus> {
        let start = Instant::now();
        loop {
            let r = self.c().container_status(api::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            });
            let s = match r {
                Ok(r) => r.status.unwrap_or_default(),
                Err(e) => {
                    self.note(format!("ContainerStatus: {e}"));
                    return Err(call_failed(&e));
                }
            };
            if s.state == api::ContainerState::ContainerExited as i32 {
                self.note(format!("ContainerStatus: exited {} ({})", s.exit_code, s.reason));
                return Ok(s);
            }
            if start.elapsed() > self.shared.timeout {
                return Err(fail(
                    "cri.ContainerStatus",
                    format!("the container to exit within {:.0}s", self.shared.timeout.as_secs_f64()),
                    format!("state {}", state_name(s.state)),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The container's log file on the host.
    pub fn log_file(pod_cfg: &api::PodSandboxConfig, cfg: &api::ContainerConfig) -> PathBuf {
        Path::new(&pod_cfg.log_directory).join(&cfg.log_path)
    }

    /// Runs `/probe report ITEMS...` as a container in `pod` and parses
    /// its stdout from the CRI log.
    pub fn report_in(
        &mut self,
        pod: &str,
        pod_cfg: &api::PodSandboxConfig,
        mut cfg: api::ContainerConfig,
    ) -> Step<Report> {
        if cfg.args.first().map(String::as_str) != Some("report") {
            cfg.args.insert(0, "report".into());
        }
        let id = self.run(pod, pod_cfg, &cfg)?;
        let st = self.wait_exit(&id)?;
        let path = Self::log_file(pod_cfg, &cfg);
        let lines = read_log(&path).map_err(|e| fail("cri.ContainerConfig.log_path", "a readable CRI log", e))?;
        let out = stream_text(&lines, "stdout");
        if st.exit_code != 0 {
            return Err(fail(
                self.clause,
                "probe report to exit 0",
                format!(
                    "exit {} ({}), stderr: {}",
                    st.exit_code,
                    st.reason,
                    stream_text(&lines, "stderr").trim()
                ),
            ));
        }
        serde_json::from_str(out.trim()).map_err(|e| {
            fail(
                self.clause,
                "the probe's JSON report on stdout",
                format!("{e}: {:.200}", out.trim()),
            )
        })
    }

    /// ExecSync with its own deadline (`timeout` seconds plus slack).
    pub fn exec(&mut self, id: &str, cmd: &[&str], timeout: i64) -> CallResult<api::ExecSyncResponse> {
        let deadline = self.shared.timeout + Duration::from_secs(timeout.max(0) as u64);
        let r = self.c().with_deadline(deadline).exec_sync(api::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        });
        let what = format!("ExecSync {cmd:?}");
        self.try_(&what, r)
    }

    /// `/probe report` through ExecSync in a running container.
    pub fn exec_report(&mut self, id: &str) -> Step<Report> {
        let r = self.exec(id, &["/probe", "report"], 0).map_err(|e| call_failed(&e))?;
        if r.exit_code != 0 {
            return Err(fail(
                "cri.ExecSync",
                "probe report to exit 0",
                format!("exit {}: {}", r.exit_code, String::from_utf8_lossy(&r.stderr).trim()),
            ));
        }
        serde_json::from_slice(&r.stdout).map_err(|e| fail("cri.ExecSync", "the probe's JSON report on stdout", e))
    }

    /// Stops and removes what the case made; returns what is still listed
    /// afterwards under the case's labels.
    pub fn teardown(&mut self) -> Vec<String> {
        let c = &self.shared.client;
        for id in self.containers.drain(..).rev() {
            let _ = c
                .with_deadline(self.shared.timeout * 2)
                .stop_container(api::StopContainerRequest {
                    container_id: id.clone(),
                    timeout: 0,
                });
            let _ = c.remove_container(api::RemoveContainerRequest { container_id: id });
        }
        for id in self.pods.drain(..).rev() {
            let _ = c
                .with_deadline(self.shared.timeout * 2)
                .stop_pod_sandbox(api::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                });
            let _ = c.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id });
        }
        let selector = self.labels();
        let mut left = Vec::new();
        if let Ok(r) = c.list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            }),
        }) {
            left.extend(r.items.into_iter().map(|p| format!("pod {}", p.id)));
        }
        if let Ok(r) = c.list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                label_selector: selector,
                ..Default::default()
            }),
        }) {
            left.extend(r.containers.into_iter().map(|x| format!("container {}", x.id)));
        }
        left
    }
}

/// The namespace options kubelet gives a pod without host namespaces or a
/// shared process namespace: the pod's network and IPC, a PID namespace per
/// container.
pub fn default_namespaces() -> api::NamespaceOption {
    api::NamespaceOption {
        network: api::NamespaceMode::Pod as i32,
        pid: api::NamespaceMode::Container as i32,
        ipc: api::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

pub fn state_name(s: i32) -> &'static str {
    match api::ContainerState::try_from(s) {
        Ok(api::ContainerState::ContainerCreated) => "CONTAINER_CREATED",
        Ok(api::ContainerState::ContainerRunning) => "CONTAINER_RUNNING",
        Ok(api::ContainerState::ContainerExited) => "CONTAINER_EXITED",
        Ok(api::ContainerState::ContainerUnknown) => "CONTAINER_UNKNOWN",
        Err(_) => "an unknown state value",
    }
}

/// One line of a CRI log file: `TIMESTAMP STREAM TAG CONTENT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: String,
    pub stream: String,
    /// `F` (full) or `P` (partial: the line continues in the next entry).
    pub tag: String,
    pub content: String,
}

/// Parses one CRI log line; `None` when it is not in the format.
pub fn parse_log_line(line: &str) -> Option<LogLine> {
    let mut it = line.splitn(4, ' ');
    let timestamp = it.next()?;
    let stream = it.next()?;
    let tag = it.next()?;
    let content = it.next().unwrap_or("");
    let ts_ok = timestamp.len() >= 20
        && timestamp.as_bytes()[4] == b'-'
        && timestamp.as_bytes()[10] == b'T'
        && (timestamp.ends_with('Z') || timestamp[19..].contains(['+', '-']));
    let tag_ok = tag.split(':').next().is_some_and(|t| t == "F" || t == "P");
    if !ts_ok || !(stream == "stdout" || stream == "stderr") || !tag_ok {
        return None;
    }
    Some(LogLine {
        timestamp: timestamp.into(),
        stream: stream.into(),
        tag: tag.split(':').next().unwrap_or("F").into(),
        content: content.into(),
    })
}

/// Reads a CRI log file; any line not in the format is an error naming it.
pub fn read_log(path: &Path) -> Result<Vec<LogLine>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|l| parse_log_line(l).ok_or_else(|| format!("{}: not a CRI log line: {l:?}", path.display())))
        .collect()
}

/// The text of one stream, partial lines joined, each full line ended by a
/// newline.
pub fn stream_text(lines: &[LogLine], stream: &str) -> String {
    let mut s = String::new();
    for l in lines.iter().filter(|l| l.stream == stream) {
        s.push_str(&l.content);
        if l.tag == "F" {
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines_parse_and_partials_join() {
        let a = parse_log_line("2016-10-06T00:17:09.669794202Z stdout P {\"a\":").unwrap();
        let b = parse_log_line("2016-10-06T00:17:09.669794203Z stdout F 1}").unwrap();
        let c = parse_log_line("2016-10-06T00:17:10.1+02:00 stderr F oops").unwrap();
        assert_eq!(stream_text(&[a.clone(), b.clone(), c.clone()], "stdout"), "{\"a\":1}\n");
        assert_eq!(stream_text(&[a, b, c], "stderr"), "oops\n");
        let empty = parse_log_line("2016-10-06T00:17:09.669794202Z stdout F ").unwrap();
        assert_eq!(empty.content, "");
        assert!(parse_log_line("hello world").is_none());
        assert!(parse_log_line("2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(parse_log_line("2016-10-06T00:17:09Z stdout X x").is_none());
    }
}
