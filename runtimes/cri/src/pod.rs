//! Pod sandboxes: an infra container (`cri pause` under the handler's
//! runtime) holding the pod's network, IPC and UTS namespaces (PID when the
//! pod shares one), the pod's hosts, hostname and resolv.conf files, and its
//! /dev/shm.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::monitor::{self, now_ns};
use crate::oci;
use crate::spec::{NsMode, PodSpec};
use crate::store::Kind;
use crate::{Cri, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodState {
    Ready,
    NotReady,
}

/// A pod as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub id: String,
    pub spec: PodSpec,
    pub created_at: i64,
    pub state: PodState,
    pub infra_pid: i32,
    /// The pod's /dev/shm is a tmpfs this server mounted.
    pub shm_mounted: bool,
    /// Containers' cgroups go under this path.
    pub cgroup_parent: String,
    /// `cgroup_parent` was made by us (no parent was given): removed with the pod.
    pub own_cgroup_parent: bool,
    /// The pod's network attachment (CNI ADD's result), until its DEL.
    #[serde(default)]
    pub network: Option<crate::cni::Attachment>,
}

impl PodRecord {
    pub fn dir(&self, cri: &Cri) -> PathBuf {
        cri.store.dir(Kind::Pod, &self.id)
    }

    pub fn files(&self, cri: &Cri) -> oci::PodFiles {
        let dir = self.dir(cri);
        let resolv = dir.join("resolv.conf");
        oci::PodFiles {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: resolv.exists().then_some(resolv),
            shm: if self.shm_mounted {
                dir.join("shm")
            } else {
                PathBuf::from("/dev/shm")
            },
        }
    }

    /// Ready, and its infra process still alive.
    pub fn current_state(&self) -> PodState {
        if self.state == PodState::Ready && process_alive(self.infra_pid) {
            PodState::Ready
        } else {
            PodState::NotReady
        }
    }
}

pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // A zombie is not alive: look at the state in /proc.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn resolv_conf(dns: &crate::spec::Dns) -> String {
    let mut s = String::new();
    for server in &dns.servers {
        s.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    if !dns.options.is_empty() {
        s.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    s
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("{what} {}: {e}", path.display()))
}

/// Runs `cri monitor` for a container (or an infra container) and waits for
/// its `ok PID` line. The monitor runs in its own process group, so it
/// outlives the server.
pub fn spawn_monitor(cri: &Cri, opts: &monitor::Options) -> Result<i32> {
    let mut child = Command::new(&cri.exe)
        .args(opts.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| io_err("spawning monitor", &cri.exe, e))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    // The monitor is our child until it exits: reap it whenever it does.
    std::thread::spawn(move || child.wait());
    let line = line.trim();
    match line.strip_prefix("ok ").and_then(|p| p.parse::<i32>().ok()) {
        Some(pid) => Ok(pid),
        None if line.is_empty() => Err(Error::Internal(format!(
            "container {}: monitor exited without a word",
            opts.id
        ))),
        None => Err(Error::Internal(format!(
            "container {}: {}",
            opts.id,
            line.trim_start_matches("error ")
        ))),
    }
}

/// Waits until `done` holds or `timeout` passes; true when it held.
pub fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

impl Cri {
    pub fn pod(&self, id: &str) -> Result<PodRecord> {
        self.store.load(Kind::Pod, id)?.ok_or_else(|| Error::NotFound {
            kind: "pod sandbox",
            id: id.into(),
        })
    }

    pub fn pods(&self) -> Result<Vec<PodRecord>> {
        let mut pods: Vec<PodRecord> = self.store.list(Kind::Pod)?;
        pods.sort_by_key(|p| p.created_at);
        Ok(pods)
    }

    pub fn run_pod(&self, spec: PodSpec) -> Result<String> {
        let runtime = self.runtime(&spec.handler)?;
        let clash = self.pods()?.into_iter().find(|p| {
            p.spec.name == spec.name
                && p.spec.namespace == spec.namespace
                && p.spec.uid == spec.uid
                && p.spec.attempt == spec.attempt
        });
        if let Some(p) = clash {
            return Err(Error::AlreadyExists(format!(
                "pod sandbox {}/{} (uid {}, attempt {}) already exists: {}",
                spec.namespace, spec.name, spec.uid, spec.attempt, p.id
            )));
        }
        let id = crate::new_id();
        let lock = self.locks.get(&id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (cgroup_parent, own_cgroup_parent) = if spec.cgroup_parent.is_empty() {
            (format!("/cri/{id}"), true)
        } else {
            (spec.cgroup_parent.trim_end_matches('/').to_string(), false)
        };
        let mut record = PodRecord {
            id: id.clone(),
            spec,
            created_at: now_ns(),
            state: PodState::NotReady,
            infra_pid: 0,
            shm_mounted: false,
            cgroup_parent,
            own_cgroup_parent,
            network: None,
        };
        match self.make_pod(&mut record, &runtime) {
            Ok(()) => Ok(id),
            Err(e) => {
                if let Err(cleanup) = self.destroy_pod(&record) {
                    return Err(Error::Internal(format!("{e}; cleaning up after it: {cleanup}")));
                }
                Err(e)
            }
        }
    }

    fn make_pod(&self, record: &mut PodRecord, runtime: &crate::runtime::Runtime) -> Result<()> {
        self.store.save(Kind::Pod, &record.id, record)?;
        let dir = record.dir(self);
        let spec = &record.spec;
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| io_err("writing", &p, e))
        };
        let host_network = spec.network == NsMode::Node;
        let hosts = if host_network {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            HOSTS.into()
        };
        write("hosts", &hosts)?;
        let hostname = if spec.hostname.is_empty() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string()
        } else {
            spec.hostname.clone()
        };
        write("hostname", &format!("{hostname}\n"))?;
        match &spec.dns {
            Some(dns) => write("resolv.conf", &resolv_conf(dns))?,
            None => {
                if let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") {
                    write("resolv.conf", &text)?;
                }
            }
        }
        if spec.ipc != NsMode::Node {
            let shm = dir.join("shm");
            std::fs::create_dir_all(&shm).map_err(|e| io_err("creating", &shm, e))?;
            mount_tmpfs(&shm).map_err(|e| io_err("mounting tmpfs on", &shm, e))?;
            record.shm_mounted = true;
            self.store.save(Kind::Pod, &record.id, record)?;
        }
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["proc", "dev", "sys", "etc", "tmp"] {
            let p = rootfs.join(d);
            std::fs::create_dir_all(&p).map_err(|e| io_err("creating", &p, e))?;
        }
        let pause_file = rootfs.join("pause");
        // The server's own binary is bind-mounted as pause; a pod VM gets a
        // copy of its rootfs, where a few hundred bytes do the same work.
        let (pause_text, pause_bind) = if runtime.handler.pod_vm {
            (crate::pause_elf::program(), None)
        } else {
            (Vec::new(), Some(self.exe.as_path()))
        };
        std::fs::write(&pause_file, pause_text).map_err(|e| io_err("creating", &pause_file, e))?;
        if pause_bind.is_none() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pause_file, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io_err("chmod", &pause_file, e))?;
        }
        let ns = oci::infra_namespaces(&record.spec);
        let cgroups_path = format!("{}/{}", record.cgroup_parent, record.id);
        let config = oci::infra_config(&record.id, &record.spec, &rootfs, pause_bind, &ns, &cgroups_path);
        let config_path = bundle.join("config.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| io_err("writing", &config_path, e))?;
        let infra_state = dir.join("infra");
        std::fs::create_dir_all(&infra_state).map_err(|e| io_err("creating", &infra_state, e))?;
        let opts = monitor::Options {
            runtime: runtime.handler.binary.clone(),
            runtime_args: runtime.handler.args.clone(),
            runtime_root: runtime.root.clone(),
            bundle,
            id: record.id.clone(),
            state_dir: infra_state,
            log_path: None,
            oom_files: Vec::new(),
            stdin: false,
            stdin_once: false,
            tty: false,
        };
        record.infra_pid = spawn_monitor(self, &opts)?;
        self.store.save(Kind::Pod, &record.id, record)?;
        // The pod's network namespace exists: attach it (containerd's order:
        // the network before the sandbox runs). A pod VM's namespaces are in
        // its guest, out of the plugins' reach.
        if record.spec.network != NsMode::Node && !runtime.handler.pod_vm {
            if let Some(net) = self.config.cni.network().map_err(|e| Error::Internal(e.to_string()))? {
                let netns = PathBuf::from(format!("/proc/{}/ns/net", record.infra_pid));
                let args = crate::cni::pod_args(&record.spec.namespace, &record.spec.name, &record.id);
                let a = net
                    .add(&self.config.cni.bin_dirs, &record.id, &netns, &args)
                    .map_err(|e| Error::Internal(format!("pod {}: network {:?}: {e}", record.id, net.name)))?;
                record.network = Some(a);
                self.store.save(Kind::Pod, &record.id, record)?;
            }
        }
        runtime.start(&record.id)?;
        record.state = PodState::Ready;
        self.store.save(Kind::Pod, &record.id, record)?;
        Ok(())
    }

    /// Kills the pod's containers and its infra process; idempotent.
    pub fn stop_pod(&self, id: &str) -> Result<()> {
        let Some(mut record) = self.store.load::<PodRecord>(Kind::Pod, id)? else {
            return Ok(());
        };
        for c in self.containers()?.into_iter().filter(|c| c.pod_id == id) {
            self.stop_container(&c.id, 0)?;
        }
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.detach_network(&mut record)?;
        self.kill_infra(&record)?;
        if record.state != PodState::NotReady {
            record.state = PodState::NotReady;
            self.store.save(Kind::Pod, id, &record)?;
        }
        Ok(())
    }

    /// CNI DEL of the pod's attachment, once: while the infra process holds
    /// the namespace, or without it when it is gone.
    fn detach_network(&self, record: &mut PodRecord) -> Result<()> {
        let Some(a) = record.network.clone() else {
            return Ok(());
        };
        let net = match self.config.cni.network() {
            Ok(Some(n)) if n.name == a.network => n,
            // The configuration changed or went: nothing can run its DEL.
            _ => {
                record.network = None;
                self.store.save(Kind::Pod, &record.id, record)?;
                return Ok(());
            }
        };
        let netns =
            process_alive(record.infra_pid).then(|| PathBuf::from(format!("/proc/{}/ns/net", record.infra_pid)));
        let args = crate::cni::pod_args(&record.spec.namespace, &record.spec.name, &record.id);
        net.del(
            &self.config.cni.bin_dirs,
            &record.id,
            netns.as_deref(),
            &args,
            &a.result,
        )
        .map_err(|e| Error::Internal(format!("pod {}: network {:?}: {e}", record.id, a.network)))?;
        record.network = None;
        self.store.save(Kind::Pod, &record.id, record)?;
        Ok(())
    }

    fn kill_infra(&self, record: &PodRecord) -> Result<()> {
        if !process_alive(record.infra_pid) {
            return Ok(());
        }
        let runtime = self.runtime(&record.spec.handler)?;
        // The runtime may have lost the container (its state root wiped):
        // the process still goes.
        if runtime.kill(&record.id, "KILL").is_err() {
            // SAFETY: kill() with a pid we started and a signal number.
            unsafe { libc::kill(record.infra_pid, libc::SIGKILL) };
        }
        let infra = record.dir(self).join("infra");
        if !wait_for(Duration::from_secs(10), || monitor::read_exit(&infra).is_some()) {
            return Err(Error::Internal(format!(
                "pod {}: infra process {} did not exit",
                record.id, record.infra_pid
            )));
        }
        Ok(())
    }

    /// Stops the pod, removes its containers and everything it made;
    /// succeeds when the pod is already gone.
    pub fn remove_pod(&self, id: &str) -> Result<()> {
        let Some(record) = self.store.load::<PodRecord>(Kind::Pod, id)? else {
            return Ok(());
        };
        self.stop_pod(id)?;
        for c in self.containers()?.into_iter().filter(|c| c.pod_id == id) {
            self.remove_container(&c.id)?;
        }
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.destroy_pod(&record)
    }

    /// Undoes whatever of the pod exists: the runtime's container, the shm
    /// mount, the cgroup parent we made, the state directory.
    fn destroy_pod(&self, record: &PodRecord) -> Result<()> {
        // The record on disk is the latest (a stop may have detached the
        // network since the caller loaded it).
        let mut record = self
            .store
            .load::<PodRecord>(Kind::Pod, &record.id)?
            .unwrap_or_else(|| record.clone());
        self.detach_network(&mut record)?;
        let record = &record;
        self.kill_infra(record)?;
        if let Ok(runtime) = self.runtime(&record.spec.handler) {
            // Fails when the runtime never created it: nothing to delete.
            let _ = runtime.delete_force(&record.id);
        }
        let dir = record.dir(self);
        if record.shm_mounted {
            let shm = dir.join("shm");
            umount(&shm).map_err(|e| io_err("unmounting", &shm, e))?;
        }
        if record.own_cgroup_parent {
            crate::stats::remove_cgroup(&record.cgroup_parent);
            // The common parent of our pods goes with the last of them.
            if let Some((common, _)) = record.cgroup_parent.rsplit_once('/') {
                crate::stats::remove_cgroup(common);
            }
        }
        self.store.remove(Kind::Pod, &record.id)?;
        Ok(())
    }
}

fn cstr(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

fn mount_tmpfs(target: &Path) -> std::io::Result<()> {
    let target = cstr(target)?;
    let data = c"mode=1777,size=65536k";
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            c"shm".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data.as_ptr().cast(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts `target` (lazily, a container may still hold it); not mounted
/// or absent is success.
fn umount(target: &Path) -> std::io::Result<()> {
    let c = cstr(target)?;
    // SAFETY: c is a NUL-terminated path that outlives the call.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_from_dns_config() {
        let dns = crate::spec::Dns {
            servers: vec!["10.0.0.10".into(), "8.8.8.8".into()],
            searches: vec!["ns.svc.cluster.local".into(), "cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "nameserver 10.0.0.10\nnameserver 8.8.8.8\nsearch ns.svc.cluster.local cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn liveness_sees_this_process_and_not_a_bogus_pid() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
        assert!(!process_alive(i32::MAX));
    }
}
