//! Containers: created from a CRI config in a ready pod, run under a
//! `monitor`, their state derived from what the monitor wrote (so it is the
//! same after a server restart).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::monitor::{self, now_ns, Exit};
use crate::oci;
use crate::pod::{process_alive, spawn_monitor, wait_for, PodRecord, PodState};
use crate::spec::{ContainerSpec, NsMode, Resources};
use crate::store::Kind;
use crate::{Cri, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub pod_id: String,
    pub spec: ContainerSpec,
    /// A digested reference of the image, or its id (Container.image_ref).
    pub image_ref: String,
    /// The image's id (Container.image_id).
    #[serde(default)]
    pub image_id: String,
    pub handler: String,
    pub log_path: Option<PathBuf>,
    pub cgroups_path: String,
    pub created_at: i64,
    pub started_at: i64,
    pub pid: i32,
}

/// What ContainerStatus reports.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub exit: Option<Exit>,
    /// "Completed", "Error", "OOMKilled" once exited.
    pub reason: String,
    pub message: String,
}

impl ContainerRecord {
    pub fn state_dir(&self, cri: &Cri) -> PathBuf {
        cri.store.dir(Kind::Container, &self.id)
    }

    pub fn status(&self, cri: &Cri) -> Status {
        let exit = monitor::read_exit(&self.state_dir(cri));
        let (state, reason, message) = match &exit {
            Some(e) if e.oom_killed => (State::Exited, "OOMKilled", String::new()),
            Some(e) if e.code == 0 => (State::Exited, "Completed", String::new()),
            Some(e) => (
                State::Exited,
                "Error",
                e.signal.map(|s| format!("killed by signal {s}")).unwrap_or_default(),
            ),
            None if process_alive(self.pid) && self.started_at > 0 => (State::Running, "", String::new()),
            None if process_alive(self.pid) => (State::Created, "", String::new()),
            // The container and its monitor are gone without a record of
            // the exit (the host rebooted, say).
            None => (State::Unknown, "Unknown", "the container's monitor is gone".into()),
        };
        Status {
            state,
            exit,
            reason: reason.into(),
            message,
        }
    }
}

/// The image and its rootfs for a new container.
fn prepare(
    cri: &Cri,
    spec: &ContainerSpec,
    id: &str,
) -> Result<(crate::rootfs::Resolved, crate::spec::ImageConfig, PathBuf)> {
    use crate::rootfs::Error as E;
    let map = |e: E| match e {
        E::NotFound(r) => Error::NotFound { kind: "image", id: r },
        e @ E::Invalid { .. } => Error::InvalidArgument(e.to_string()),
        other => Error::Internal(other.to_string()),
    };
    let image_ref = cri.images.resolve(&spec.image).map_err(map)?;
    let config = cri.images.image_config(&spec.image).map_err(map)?;
    let rootfs = cri.images.snapshot(&spec.image, id).map_err(map)?;
    Ok((image_ref, config, rootfs))
}

/// The OCI `linux.resources` object for `runtime update`.
pub fn resources_json(r: &Resources) -> serde_json::Value {
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), r.cpu_shares.into());
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), r.cpu_quota.into());
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), r.cpu_period.into());
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), r.cpuset_cpus.clone().into());
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), r.cpuset_mems.clone().into());
    }
    let mut out = serde_json::json!({});
    if !cpu.is_empty() {
        out["cpu"] = serde_json::Value::Object(cpu);
    }
    if r.memory_limit > 0 {
        out["memory"] = serde_json::json!({"limit": r.memory_limit});
        if r.memory_swap_limit > 0 {
            out["memory"]["swap"] = r.memory_swap_limit.into();
        }
    }
    out
}

impl Cri {
    pub fn container(&self, id: &str) -> Result<ContainerRecord> {
        self.store.load(Kind::Container, id)?.ok_or_else(|| Error::NotFound {
            kind: "container",
            id: id.into(),
        })
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let mut v: Vec<ContainerRecord> = self.store.list(Kind::Container)?;
        v.sort_by_key(|c| c.created_at);
        Ok(v)
    }

    pub fn create_container(&self, pod_id: &str, spec: ContainerSpec) -> Result<String> {
        let lock = self.locks.get(pod_id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let pod = self.pod(pod_id)?;
        if pod.current_state() != PodState::Ready {
            return Err(Error::FailedPrecondition(format!("pod sandbox {pod_id} is not ready")));
        }
        if let Some(c) = self
            .containers()?
            .into_iter()
            .find(|c| c.pod_id == pod_id && c.spec.name == spec.name && c.spec.attempt == spec.attempt)
        {
            return Err(Error::AlreadyExists(format!(
                "container {:?} (attempt {}) already exists in pod sandbox {pod_id}: {}",
                spec.name, spec.attempt, c.id
            )));
        }
        let id = crate::new_id();
        let log_path = match (pod.spec.log_directory.as_str(), spec.log_path.as_str()) {
            (_, "") => None,
            (dir, p) if !dir.is_empty() => Some(PathBuf::from(dir).join(p)),
            (_, p) if p.starts_with('/') => Some(PathBuf::from(p)),
            _ => None,
        };
        let mut record = ContainerRecord {
            id: id.clone(),
            pod_id: pod_id.into(),
            image_ref: String::new(),
            image_id: String::new(),
            handler: pod.spec.handler.clone(),
            log_path,
            cgroups_path: format!("{}/{}", pod.cgroup_parent, id),
            created_at: now_ns(),
            started_at: 0,
            pid: 0,
            spec,
        };
        match self.make_container(&pod, &mut record) {
            Ok(()) => Ok(id),
            Err(e) => {
                if let Err(cleanup) = self.destroy_container(&record) {
                    return Err(Error::Internal(format!("{e}; cleaning up after it: {cleanup}")));
                }
                Err(e)
            }
        }
    }

    fn make_container(&self, pod: &PodRecord, record: &mut ContainerRecord) -> Result<()> {
        let runtime = self.runtime(&pod.spec.handler)?;
        self.store.save(Kind::Container, &record.id, record)?;
        let (resolved, image, rootfs) = prepare(self, &record.spec, &record.id)?;
        record.image_ref = resolved.image_ref;
        record.image_id = resolved.id;
        self.store.save(Kind::Container, &record.id, record)?;
        let target_pid = if record.spec.security.pid == NsMode::Target {
            let target = self.container(&record.spec.security.target_id).map_err(|_| {
                Error::InvalidArgument(format!(
                    "namespace_options.target_id {:?} is not a container",
                    record.spec.security.target_id
                ))
            })?;
            Some(target.pid)
        } else {
            None
        };
        let namespaces = oci::container_namespaces(&pod.spec, pod.infra_pid, record.spec.security.pid, target_pid);
        let files = pod.files(self);
        let ctx = oci::ContainerContext {
            pod_id: &pod.id,
            pod: &pod.spec,
            image: &image,
            rootfs: &rootfs,
            files: &files,
            namespaces: &namespaces,
            cgroups_path: &record.cgroups_path,
            bounding_caps: oci::own_bounding_set(),
        };
        let config = oci::container_config(&record.spec, &ctx)?;
        let dir = record.state_dir(self);
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| Error::Internal(format!("{}: {e}", bundle.display())))?;
        let config_path = bundle.join("config.json");
        std::fs::write(&config_path, config.to_string())
            .map_err(|e| Error::Internal(format!("{}: {e}", config_path.display())))?;
        let opts = monitor::Options {
            runtime: runtime.handler.binary.clone(),
            runtime_args: runtime.handler.args.clone(),
            runtime_root: runtime.root.clone(),
            bundle,
            id: record.id.clone(),
            state_dir: dir,
            log_path: record.log_path.clone(),
            oom_files: crate::stats::oom_files(&record.cgroups_path),
            stdin: record.spec.stdin,
            stdin_once: record.spec.stdin_once,
            tty: record.spec.tty,
        };
        record.pid = spawn_monitor(self, &opts)?;
        self.store.save(Kind::Container, &record.id, record)?;
        Ok(())
    }

    pub fn start_container(&self, id: &str) -> Result<()> {
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut record = self.container(id)?;
        let status = record.status(self);
        if status.state != State::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {:?}, only a created container can be started",
                status.state
            )));
        }
        self.runtime(&record.handler)?.start(id)?;
        record.started_at = now_ns();
        self.store.save(Kind::Container, id, &record)?;
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `timeout` seconds (at once when 0);
    /// succeeds when the container is not running or gone.
    pub fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(record) = self.store.load::<ContainerRecord>(Kind::Container, id)? else {
            return Ok(());
        };
        if !matches!(record.status(self).state, State::Running | State::Created) {
            return Ok(());
        }
        let runtime = self.runtime(&record.handler)?;
        let dir = record.state_dir(self);
        let exited = || monitor::read_exit(&dir).is_some();
        if timeout > 0 {
            let _ = runtime.kill(id, "TERM");
            if wait_for(Duration::from_secs(timeout as u64), exited) {
                return Ok(());
            }
        }
        if runtime.kill(id, "KILL").is_err() && process_alive(record.pid) {
            // SAFETY: kill() with a pid the monitor reported and a signal number.
            unsafe { libc::kill(record.pid, libc::SIGKILL) };
        }
        if !wait_for(Duration::from_secs(10), exited) {
            return Err(Error::Internal(format!(
                "container {id}: still running 10 s after SIGKILL"
            )));
        }
        Ok(())
    }

    /// Stops the container if needed and removes everything it made;
    /// succeeds when it is already gone.
    pub fn remove_container(&self, id: &str) -> Result<()> {
        let Some(record) = self.store.load::<ContainerRecord>(Kind::Container, id)? else {
            return Ok(());
        };
        self.stop_container(id, 0)?;
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.destroy_container(&record)
    }

    fn destroy_container(&self, record: &ContainerRecord) -> Result<()> {
        if process_alive(record.pid) && monitor::read_exit(&record.state_dir(self)).is_none() {
            // SAFETY: kill() with the pid the monitor reported and a signal number.
            unsafe { libc::kill(record.pid, libc::SIGKILL) };
            let dir = record.state_dir(self);
            wait_for(Duration::from_secs(10), || monitor::read_exit(&dir).is_some());
        }
        if let Ok(runtime) = self.runtime(&record.handler) {
            // Fails when the runtime never created it: nothing to delete.
            let _ = runtime.delete_force(&record.id);
        }
        self.images
            .remove_snapshot(&record.id)
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.store.remove(Kind::Container, &record.id)?;
        Ok(())
    }

    pub fn update_container(&self, id: &str, resources: Resources) -> Result<()> {
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut record = self.container(id)?;
        if !matches!(record.status(self).state, State::Running | State::Created) {
            return Err(Error::FailedPrecondition(format!("container {id} is not running")));
        }
        self.runtime(&record.handler)?.update(id, &resources_json(&resources))?;
        record.spec.resources = Resources {
            oom_score_adj: record.spec.resources.oom_score_adj,
            ..resources
        };
        self.store.save(Kind::Container, id, &record)?;
        Ok(())
    }

    /// Asks the monitor to reopen the log file, and waits until it exists.
    pub fn reopen_log(&self, id: &str) -> Result<()> {
        let record = self.container(id)?;
        if record.status(self).state != State::Running {
            return Err(Error::FailedPrecondition(format!("container {id} is not running")));
        }
        let Some(log) = record.log_path.clone() else {
            return Ok(());
        };
        let monitor_pid = std::fs::read_to_string(record.state_dir(self).join(monitor::MONITOR_PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| process_alive(*p))
            .ok_or_else(|| Error::FailedPrecondition(format!("container {id}: its monitor is gone")))?;
        // SAFETY: kill() with the monitor's pid and a signal number.
        unsafe { libc::kill(monitor_pid, libc::SIGUSR1) };
        if !wait_for(Duration::from_secs(5), || log.exists()) {
            return Err(Error::Internal(format!(
                "container {id}: log {} was not reopened",
                log.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_resources_only_name_what_is_set() {
        let r = Resources {
            cpu_quota: 5000,
            memory_limit: 1 << 20,
            ..Default::default()
        };
        assert_eq!(
            resources_json(&r),
            serde_json::json!({"cpu": {"quota": 5000}, "memory": {"limit": 1 << 20}})
        );
        assert_eq!(resources_json(&Resources::default()), serde_json::json!({}));
    }
}
