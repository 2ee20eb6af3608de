//! CRI pods and containers as OCI runtime configs (config.json).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::spec::{ContainerSpec, ImageConfig, NsMode, PodSpec, Propagation, Seccomp};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {container}: no command: neither the request's command/args nor the image's entrypoint/cmd")]
    NoCommand { container: String },
    #[error("container {container}: user {user:?} not found in the image's /etc/passwd")]
    UnknownUser { container: String, user: String },
    #[error("container {container}: group {group:?} not found in the image's /etc/group")]
    UnknownGroup { container: String, group: String },
    #[error("container {container}: mount {container_path}: host path {host_path} does not exist")]
    MissingHostPath {
        container: String,
        container_path: String,
        host_path: String,
    },
    #[error("container {container}: seccomp profile {path}: {reason}")]
    SeccompProfile {
        container: String,
        path: PathBuf,
        reason: String,
    },
    #[error("container {container}: {field} must be an absolute path, got {value:?}")]
    RelativePath {
        container: String,
        field: &'static str,
        value: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The capabilities a container has unless told otherwise (runc's and
/// containerd's default set).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux 5.x/6.x knows, in number order (the container
/// library's table).
pub const ALL_CAPS: &[&str] = container::process::CAPABILITIES;

const DEFAULT_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const DEFAULT_READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Syscalls the RuntimeDefault profile refuses with EPERM: kernel modules and
/// images, tracing and BPF, keyrings, clocks, mounts and namespaces, swap and
/// reboot. Everything else is allowed (a deny list, unlike Docker's allow
/// list: a smaller profile that still closes the usual escapes).
const DEFAULT_DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "adjtimex",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "init_module",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "name_to_handle_at",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "userfaultfd",
    "vhangup",
];

/// Host files of the pod that its containers see.
#[derive(Debug, Clone)]
pub struct PodFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    /// Bound at /dev/shm.
    pub shm: PathBuf,
}

/// How a container gets each namespace: `None` is the host's (no entry),
/// `Some(None)` a new one, `Some(Some(path))` an existing one.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    pub network: Option<Option<PathBuf>>,
    pub ipc: Option<Option<PathBuf>>,
    pub uts: Option<Option<PathBuf>>,
    pub pid: Option<Option<PathBuf>>,
}

impl Namespaces {
    fn to_json(&self) -> Vec<Value> {
        let mut out = vec![json!({"type": "mount"})];
        for (kind, ns) in [
            ("network", &self.network),
            ("ipc", &self.ipc),
            ("uts", &self.uts),
            ("pid", &self.pid),
        ] {
            match ns {
                None => {}
                Some(None) => out.push(json!({"type": kind})),
                Some(Some(path)) => out.push(json!({"type": kind, "path": path})),
            }
        }
        out
    }
}

fn base_mounts(privileged: bool) -> Vec<Value> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", sys_mode]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]}),
    ]
}

fn bind(destination: &str, source: &Path, readonly: bool) -> Value {
    let mut options = vec!["rbind", "rprivate"];
    if readonly {
        options.push("ro");
    }
    json!({"destination": destination, "type": "bind", "source": source, "options": options})
}

/// The pod's infra container: `pause` holding the pod's namespaces. With
/// `pause`, that binary (this server's) is bind-mounted at `/pause` and run
/// as `/pause pause`; without, `/pause` is the rootfs's own program.
pub fn infra_config(
    pod_id: &str,
    pod: &PodSpec,
    rootfs: &Path,
    pause: Option<&Path>,
    ns: &Namespaces,
    cgroups_path: &str,
) -> Value {
    let lo_up = matches!(ns.network, Some(None));
    let mut args = vec!["/pause".to_string(), "pause".to_string()];
    let mut caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    if lo_up {
        args.push("--lo-up".into());
        caps.push("CAP_NET_ADMIN");
    }
    let mut mounts = base_mounts(false);
    if let Some(pause) = pause {
        mounts.push(bind("/pause", pause, true));
    }
    let mut config = json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": true},
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true,
        },
        "mounts": mounts,
        // As containerd annotates them: runtimes that run a pod as one
        // sandbox (runsc, Kata) find the pod by its sandbox id.
        "annotations": {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-id": pod_id,
            "io.kubernetes.cri.sandbox-name": pod.name,
            "io.kubernetes.cri.sandbox-namespace": pod.namespace,
        },
        "linux": {
            "namespaces": ns.to_json(),
            "cgroupsPath": cgroups_path,
            "maskedPaths": DEFAULT_MASKED,
            "readonlyPaths": DEFAULT_READONLY,
            "sysctl": pod.sysctls,
        },
    });
    if matches!(ns.uts, Some(None)) && !pod.hostname.is_empty() {
        config["hostname"] = json!(pod.hostname);
    }
    config
}

fn normalise_cap(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") || upper == "ALL" {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The capabilities of `ALL_CAPS` (indexed by number) whose bit is set in
/// `mask` (a CapBnd value).
pub fn caps_in(mask: u64) -> Vec<String> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// This process's bounding set (`CapBnd` of /proc/self/status): what a
/// container can be given at most. Every capability when it cannot be read.
pub fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The container's capability set: the defaults, plus `add`, minus `drop`
/// ("ALL" in either means every capability). Privileged, and "ALL", mean
/// every capability in `bounding` (the server's own bounding set, as
/// containerd grants "all current capabilities"): a runtime cannot raise a
/// capability its parent lacks, so asking for more fails every container.
pub fn capabilities(privileged: bool, add: &[String], drop: &[String], bounding: u64) -> Vec<String> {
    if privileged {
        return caps_in(bounding);
    }
    let add: Vec<String> = add.iter().map(|c| normalise_cap(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| normalise_cap(c)).collect();
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = caps_in(bounding);
    } else {
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    caps.retain(|c| !drop.contains(c));
    caps
}

fn passwd_lookup(rootfs: &Path, file: &str, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(rootfs.join(file)).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0] != name {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().unwrap_or(0)))
    })
}

fn uid_primary_gid(rootfs: &Path, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[3].parse().ok())?
    })
}

fn group_lookup(rootfs: &Path, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(rootfs.join("etc/group")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok())?
    })
}

/// The container's uid and gid: the request's run_as_user/run_as_username
/// and run_as_group, else the image's `User` ("name", "uid", "uid:gid",
/// "name:group"), resolved in the rootfs; root when nothing says.
pub fn resolve_user(c: &ContainerSpec, image: &ImageConfig, rootfs: &Path) -> Result<(u32, u32)> {
    let unknown_user = |user: &str| Error::UnknownUser {
        container: c.name.clone(),
        user: user.into(),
    };
    let (uid, mut gid) = if let Some(u) = c.security.run_as_user {
        let u = u as u32;
        (u, uid_primary_gid(rootfs, u).unwrap_or(0))
    } else if !c.security.run_as_username.is_empty() {
        passwd_lookup(rootfs, "etc/passwd", &c.security.run_as_username)
            .ok_or_else(|| unknown_user(&c.security.run_as_username))?
    } else if !image.user.is_empty() {
        let (user, group) = match image.user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (image.user.as_str(), None),
        };
        let (uid, primary) = match user.parse::<u32>() {
            Ok(u) => (u, uid_primary_gid(rootfs, u).unwrap_or(0)),
            Err(_) => passwd_lookup(rootfs, "etc/passwd", user).ok_or_else(|| unknown_user(user))?,
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(g) => g,
                Err(_) => group_lookup(rootfs, g).ok_or_else(|| Error::UnknownGroup {
                    container: c.name.clone(),
                    group: g.into(),
                })?,
            },
        };
        (uid, gid)
    } else {
        (0, 0)
    };
    if let Some(g) = c.security.run_as_group {
        gid = g as u32;
    }
    Ok((uid, gid))
}

/// The process's argv (Kubernetes' rules): the request's command replaces
/// the image's entrypoint and then its cmd too; args alone replace cmd.
pub fn argv(c: &ContainerSpec, image: &ImageConfig) -> Result<Vec<String>> {
    let argv = if !c.command.is_empty() {
        let mut v = c.command.clone();
        v.extend(c.args.iter().cloned());
        v
    } else {
        let mut v = image.entrypoint.clone();
        v.extend(if c.args.is_empty() {
            image.cmd.iter().cloned()
        } else {
            c.args.iter().cloned()
        });
        v
    };
    if argv.is_empty() {
        return Err(Error::NoCommand {
            container: c.name.clone(),
        });
    }
    Ok(argv)
}

/// The environment: the image's, then the request's (a request variable
/// replaces the image's of the same name), PATH and HOSTNAME when missing.
pub fn environment(c: &ContainerSpec, image: &ImageConfig, hostname: &str) -> Vec<String> {
    let mut env: Vec<(String, String)> = image
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect();
    for (k, v) in &c.envs {
        if let Some(slot) = env.iter_mut().find(|(ek, _)| ek == k) {
            slot.1 = v.clone();
        } else {
            env.push((k.clone(), v.clone()));
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(
            0,
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        );
    }
    if !hostname.is_empty() && !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.push(("HOSTNAME".into(), hostname.into()));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn seccomp(c: &ContainerSpec) -> Result<Option<Value>> {
    if c.security.privileged {
        return Ok(None);
    }
    match &c.security.seccomp {
        Seccomp::Unconfined => Ok(None),
        Seccomp::RuntimeDefault => Ok(Some(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": DEFAULT_DENIED_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}],
        }))),
        Seccomp::Localhost(path) => {
            let bad = |reason: String| Error::SeccompProfile {
                container: c.name.clone(),
                path: path.clone(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
            Ok(Some(v))
        }
    }
}

/// Everything a container's config.json needs beyond the request.
pub struct ContainerContext<'a> {
    /// The pod's id, which is also its infra container's id in the runtime.
    pub pod_id: &'a str,
    pub pod: &'a PodSpec,
    pub image: &'a ImageConfig,
    pub rootfs: &'a Path,
    pub files: &'a PodFiles,
    pub namespaces: &'a Namespaces,
    pub cgroups_path: &'a str,
    /// The most a container may get (`own_bounding_set()`).
    pub bounding_caps: u64,
}

pub fn container_config(c: &ContainerSpec, ctx: &ContainerContext) -> Result<Value> {
    let argv = argv(c, ctx.image)?;
    let (uid, gid) = resolve_user(c, ctx.image, ctx.rootfs)?;
    let cwd = if !c.working_dir.is_empty() {
        c.working_dir.clone()
    } else if !ctx.image.working_dir.is_empty() {
        ctx.image.working_dir.clone()
    } else {
        "/".into()
    };
    if !cwd.starts_with('/') {
        return Err(Error::RelativePath {
            container: c.name.clone(),
            field: "working_dir",
            value: cwd,
        });
    }
    let caps = capabilities(
        c.security.privileged,
        &c.security.cap_add,
        &c.security.cap_drop,
        ctx.bounding_caps,
    );
    let sec = &c.security;

    let mut mounts = base_mounts(sec.privileged);
    mounts.push(bind("/dev/shm", &ctx.files.shm, false));
    mounts.push(bind("/etc/hosts", &ctx.files.hosts, false));
    mounts.push(bind("/etc/hostname", &ctx.files.hostname, false));
    if let Some(r) = &ctx.files.resolv_conf {
        mounts.push(bind("/etc/resolv.conf", r, false));
    }
    for m in &c.mounts {
        if !m.container_path.starts_with('/') {
            return Err(Error::RelativePath {
                container: c.name.clone(),
                field: "mounts.container_path",
                value: m.container_path.clone(),
            });
        }
        if !Path::new(&m.host_path).exists() {
            return Err(Error::MissingHostPath {
                container: c.name.clone(),
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
            });
        }
        let dest = m.container_path.trim_end_matches('/');
        mounts.retain(|x| x["destination"] != dest);
        let propagation = match m.propagation {
            Propagation::Private => "rprivate",
            Propagation::HostToContainer => "rslave",
            Propagation::Bidirectional => "rshared",
        };
        let mut options = vec!["rbind", propagation];
        if m.readonly {
            options.push("ro");
        }
        mounts.push(
            json!({"destination": m.container_path, "type": "bind", "source": m.host_path,
                           "options": options}),
        );
    }

    let mut resources = json!({});
    let r = &c.resources;
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if r.memory_limit > 0 {
        resources["memory"] = json!({"limit": r.memory_limit});
        if r.memory_swap_limit > 0 {
            resources["memory"]["swap"] = json!(r.memory_swap_limit);
        }
    }
    if sec.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }

    let mut devices = Vec::new();
    for d in &c.devices {
        devices.push(device(d)?);
    }

    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid,
                 "additionalGids": sec.supplemental_groups.iter().map(|g| *g as u32).collect::<Vec<_>>()},
        "args": argv,
        "env": environment(c, ctx.image, &ctx.pod.hostname),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": sec.no_new_privs,
    });
    if r.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(r.oom_score_adj);
    }
    let mut linux = json!({
        "namespaces": ctx.namespaces.to_json(),
        "cgroupsPath": ctx.cgroups_path,
        "resources": resources,
    });
    if !devices.is_empty() {
        linux["devices"] = json!(devices.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>());
        let rules: Vec<Value> = devices.iter().map(|(_, rule)| rule.clone()).collect();
        if !sec.privileged {
            linux["resources"]["devices"] = json!(rules);
        }
    }
    if !sec.privileged {
        let masked: Vec<String> = if sec.masked_paths.is_empty() {
            DEFAULT_MASKED.iter().map(|s| s.to_string()).collect()
        } else {
            sec.masked_paths.clone()
        };
        let readonly: Vec<String> = if sec.readonly_paths.is_empty() {
            DEFAULT_READONLY.iter().map(|s| s.to_string()).collect()
        } else {
            sec.readonly_paths.clone()
        };
        linux["maskedPaths"] = json!(masked);
        linux["readonlyPaths"] = json!(readonly);
    }
    if let Some(s) = seccomp(c)? {
        linux["seccomp"] = s;
    }
    let mut annotations = serde_json::Map::new();
    for (k, v) in &c.annotations {
        annotations.insert(k.clone(), json!(v));
    }
    annotations.insert("io.kubernetes.cri.container-type".into(), json!("container"));
    annotations.insert("io.kubernetes.cri.container-name".into(), json!(c.name));
    annotations.insert("io.kubernetes.cri.sandbox-id".into(), json!(ctx.pod_id));
    annotations.insert("io.kubernetes.cri.sandbox-name".into(), json!(ctx.pod.name));
    Ok(json!({
        "ociVersion": "1.0.2",
        "root": {"path": ctx.rootfs, "readonly": sec.readonly_rootfs},
        "process": process,
        "mounts": mounts,
        "annotations": annotations,
        "linux": linux,
    }))
}

/// A host device as an OCI device and the cgroup rule that allows it.
fn device(d: &crate::spec::DeviceSpec) -> Result<(Value, Value)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let missing = || Error::MissingHostPath {
        container: String::new(),
        container_path: d.container_path.clone(),
        host_path: d.host_path.clone(),
    };
    let meta = std::fs::metadata(&d.host_path).map_err(|_| missing())?;
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return Err(missing());
    };
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let access = if d.permissions.is_empty() {
        "rwm".to_string()
    } else {
        d.permissions.clone()
    };
    Ok((
        json!({"path": d.container_path, "type": kind, "major": major, "minor": minor,
               "fileMode": meta.mode() & 0o777, "uid": meta.uid(), "gid": meta.gid()}),
        json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}),
    ))
}

/// The namespaces of a container in a pod whose infra process is `infra_pid`.
pub fn container_namespaces(pod: &PodSpec, infra_pid: i32, pid: NsMode, target_pid: Option<i32>) -> Namespaces {
    let path = |ns: &str| Some(Some(PathBuf::from(format!("/proc/{infra_pid}/ns/{ns}"))));
    Namespaces {
        network: if pod.network == NsMode::Node { None } else { path("net") },
        ipc: if pod.ipc == NsMode::Node { None } else { path("ipc") },
        uts: if pod.network == NsMode::Node { None } else { path("uts") },
        pid: match (pid, target_pid) {
            (NsMode::Node, _) => None,
            (NsMode::Pod, _) if pod.pid == NsMode::Pod => path("pid"),
            (NsMode::Target, Some(t)) => Some(Some(PathBuf::from(format!("/proc/{t}/ns/pid")))),
            _ => Some(None),
        },
    }
}

/// The namespaces the infra container creates.
pub fn infra_namespaces(pod: &PodSpec) -> Namespaces {
    let new_unless_node = |m: NsMode| if m == NsMode::Node { None } else { Some(None) };
    Namespaces {
        network: new_unless_node(pod.network),
        ipc: new_unless_node(pod.ipc),
        uts: new_unless_node(pod.network),
        pid: new_unless_node(pod.pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{MountSpec, Security};

    fn ctx_files(dir: &Path) -> PodFiles {
        PodFiles {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: Some(dir.join("resolv.conf")),
            shm: dir.join("shm"),
        }
    }

    fn parse(v: &Value) -> oci_spec::runtime::Spec {
        serde_json::from_value(v.clone()).expect("a valid OCI config")
    }

    #[test]
    fn command_rules_follow_kubernetes() {
        let image = ImageConfig {
            entrypoint: vec!["/ep".into()],
            cmd: vec!["c1".into()],
            ..Default::default()
        };
        let mut c = ContainerSpec::default();
        assert_eq!(argv(&c, &image).unwrap(), ["/ep", "c1"]);
        c.args = vec!["a".into()];
        assert_eq!(argv(&c, &image).unwrap(), ["/ep", "a"]);
        c.command = vec!["/cmd".into()];
        assert_eq!(argv(&c, &image).unwrap(), ["/cmd", "a"]);
        c.args.clear();
        assert_eq!(argv(&c, &image).unwrap(), ["/cmd"]);
        assert!(matches!(
            argv(&ContainerSpec::default(), &ImageConfig::default()),
            Err(Error::NoCommand { .. })
        ));
    }

    #[test]
    fn request_env_overrides_image_env() {
        let image = ImageConfig {
            env: vec!["A=1".into(), "PATH=/x".into()],
            ..Default::default()
        };
        let c = ContainerSpec {
            envs: vec![("A".into(), "2".into()), ("B".into(), "3".into())],
            ..Default::default()
        };
        assert_eq!(environment(&c, &image, "h"), ["A=2", "PATH=/x", "B=3", "HOSTNAME=h"]);
    }

    #[test]
    fn capabilities_add_drop_all_and_privileged() {
        let caps = capabilities(false, &["net_admin".into()], &["CAP_KILL".into()], u64::MAX);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert!(caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(
            capabilities(false, &["CHOWN".into()], &["ALL".into()], u64::MAX),
            ["CAP_CHOWN"]
        );
        assert_eq!(capabilities(true, &[], &["ALL".into()], u64::MAX).len(), ALL_CAPS.len());
        // A bounding set without CAP_SYS_RESOURCE (24), as on hosts whose
        // root lacks it: privileged and "ALL" leave it out.
        let without: u64 = !(1 << 24);
        let caps = capabilities(true, &[], &[], without);
        assert_eq!(caps.len(), ALL_CAPS.len() - 1);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        let caps = capabilities(false, &["ALL".into()], &["KILL".into()], without);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()) && !caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(ALL_CAPS[24], "CAP_SYS_RESOURCE");
        assert_eq!(ALL_CAPS[40], "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn users_resolve_from_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nu:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\ng:x:2000:\n").unwrap();
        let mut c = ContainerSpec::default();
        let mut image = ImageConfig {
            user: "u".into(),
            ..Default::default()
        };
        assert_eq!(resolve_user(&c, &image, dir.path()).unwrap(), (1000, 1001));
        image.user = "u:g".into();
        assert_eq!(resolve_user(&c, &image, dir.path()).unwrap(), (1000, 2000));
        image.user = "1000".into();
        assert_eq!(resolve_user(&c, &image, dir.path()).unwrap(), (1000, 1001));
        c.security.run_as_user = Some(5);
        c.security.run_as_group = Some(6);
        assert_eq!(resolve_user(&c, &image, dir.path()).unwrap(), (5, 6));
        let c = ContainerSpec {
            security: Security {
                run_as_username: "nobody".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            resolve_user(&c, &image, dir.path()),
            Err(Error::UnknownUser { .. })
        ));
    }

    #[test]
    fn container_config_is_valid_oci_and_joins_the_pod() {
        let dir = tempfile::tempdir().unwrap();
        let pod = PodSpec {
            hostname: "p".into(),
            ..Default::default()
        };
        let image = ImageConfig {
            entrypoint: vec!["/probe".into()],
            ..Default::default()
        };
        let host = dir.path().join("data");
        std::fs::create_dir_all(&host).unwrap();
        let c = ContainerSpec {
            name: "c".into(),
            mounts: vec![MountSpec {
                container_path: "/data".into(),
                host_path: host.display().to_string(),
                readonly: true,
                propagation: Propagation::HostToContainer,
            }],
            resources: crate::spec::Resources {
                memory_limit: 1 << 26,
                cpu_shares: 512,
                ..Default::default()
            },
            security: Security {
                seccomp: Seccomp::RuntimeDefault,
                readonly_rootfs: true,
                no_new_privs: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let files = ctx_files(dir.path());
        let ns = container_namespaces(&pod, 42, NsMode::Container, None);
        let ctx = ContainerContext {
            pod_id: "p1",
            pod: &pod,
            image: &image,
            rootfs: dir.path(),
            files: &files,
            namespaces: &ns,
            cgroups_path: "/cri/x",
            bounding_caps: u64::MAX,
        };
        let v = container_config(&c, &ctx).unwrap();
        let spec = parse(&v);
        let linux = spec.linux().as_ref().unwrap();
        let nss = linux.namespaces().as_ref().unwrap();
        let net = nss
            .iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_deref(), Some(Path::new("/proc/42/ns/net")));
        let pid = nss
            .iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid)
            .unwrap();
        assert!(pid.path().is_none(), "a CONTAINER pid namespace is a new one");
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 1 << 26);
        assert_eq!(v["linux"]["resources"]["cpu"]["shares"], 512);
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        let data = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/data")
            .unwrap();
        assert_eq!(data["options"], json!(["rbind", "rslave", "ro"]));

        let missing = ContainerSpec {
            mounts: vec![MountSpec {
                container_path: "/x".into(),
                host_path: "/nonexistent/x".into(),
                ..Default::default()
            }],
            ..c.clone()
        };
        assert!(matches!(
            container_config(&missing, &ctx),
            Err(Error::MissingHostPath { .. })
        ));
    }

    #[test]
    fn host_network_pods_share_the_node_namespaces() {
        let pod = PodSpec {
            network: NsMode::Node,
            ipc: NsMode::Node,
            pid: NsMode::Node,
            ..Default::default()
        };
        let ns = infra_namespaces(&pod);
        assert!(ns.network.is_none() && ns.ipc.is_none() && ns.uts.is_none() && ns.pid.is_none());
        let dir = tempfile::tempdir().unwrap();
        let v = infra_config("p1", &pod, dir.path(), Some(Path::new("/bin/cri")), &ns, "/cri/p");
        assert_eq!(v["annotations"]["io.kubernetes.cri.sandbox-id"], "p1");
        parse(&v);
        assert_eq!(v["process"]["args"], json!(["/pause", "pause"]));
        let ns = container_namespaces(&pod, 7, NsMode::Node, None);
        assert_eq!(ns.to_json(), vec![json!({"type": "mount"})]);
    }
}
