//! Security context: user and group, read-only rootfs, capabilities,
//! privileged, no_new_privs, and the namespace options (host network, PID,
//! IPC; a pod-wide PID namespace).

use cri_api::v1 as api;

use crate::case::{check, check_eq, CaseResult, Verdict};
use crate::cri::case::CriCase;
use crate::cri::cases::host_namespaces;
use crate::cri::ctx::{call_failed, Ctx};
use probe::report::Report;

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "security::run_as_user_group",
        clauses: &["cri.SecurityContext"],
        summary: "run_as_user and run_as_group set the process's uid and gid",
        run: run_as_user_group,
    },
    CriCase {
        id: "security::readonly_rootfs",
        clauses: &["cri.SecurityContext"],
        summary: "with readonly_rootfs the root filesystem cannot be written",
        run: readonly_rootfs,
    },
    CriCase {
        id: "security::capabilities_add_drop",
        clauses: &["cri.SecurityContext"],
        summary: "added capabilities are effective, dropped ones are not",
        run: capabilities_add_drop,
    },
    CriCase {
        id: "security::unprivileged_default",
        clauses: &["cri.SecurityContext"],
        summary: "by default a container lacks CAP_SYS_ADMIN and the host's devices",
        run: unprivileged_default,
    },
    CriCase {
        id: "security::privileged",
        clauses: &["cri.SecurityContext"],
        summary: "a privileged container in a privileged pod has every capability",
        run: privileged,
    },
    CriCase {
        id: "security::no_new_privs",
        clauses: &["cri.SecurityContext"],
        summary: "no_new_privs sets the process's no_new_privs flag",
        run: no_new_privs,
    },
    CriCase {
        id: "security::pod_namespaces_private",
        clauses: &["cri.NamespaceOption"],
        summary: "by default a pod has its own network, PID, IPC and UTS namespaces",
        run: pod_namespaces_private,
    },
    CriCase {
        id: "security::host_network",
        clauses: &["cri.NamespaceOption"],
        summary: "network NODE puts the container in the host's network namespace",
        run: host_network,
    },
    CriCase {
        id: "security::host_pid",
        clauses: &["cri.NamespaceOption"],
        summary: "pid NODE puts the container in the host's PID namespace",
        run: host_pid,
    },
    CriCase {
        id: "security::host_ipc",
        clauses: &["cri.NamespaceOption"],
        summary: "ipc NODE puts the container in the host's IPC namespace",
        run: host_ipc,
    },
    CriCase {
        id: "security::pod_pid_sharing",
        clauses: &["cri.NamespaceOption"],
        summary: "pid POD gives a pod's containers one PID namespace; the default CONTAINER gives each its own",
        run: pod_pid_sharing,
    },
];

const CAP_CHOWN: u32 = 0;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_TIME: u32 = 25;

fn has(mask: u64, cap: u32) -> bool {
    mask & (1u64 << cap) != 0
}

fn sc(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn pod_sc(p: &mut api::PodSandboxConfig) -> &mut api::LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// Runs `probe report` with the container config changed by `f`.
fn report_with(
    cx: &mut Ctx,
    pod_f: impl FnOnce(&mut api::PodSandboxConfig),
    f: impl FnOnce(&mut api::ContainerConfig),
) -> Result<Report, Verdict> {
    let mut pcfg = cx.pod_config("sec");
    pod_f(&mut pcfg);
    let pod = cx.run_pod(&pcfg)?;
    let mut c = cx.container_config("c", &["report"]);
    f(&mut c);
    cx.report_in(&pod, &pcfg, c)
}

fn run_as_user_group(cx: &mut Ctx) -> CaseResult {
    let rep = report_with(
        cx,
        |_| {},
        |c| {
            sc(c).run_as_user = Some(api::Int64Value { value: 1000 });
            sc(c).run_as_group = Some(api::Int64Value { value: 1000 });
        },
    )?;
    check_eq("cri.SecurityContext", "uid", 1000, rep.ids.uid)?;
    check_eq("cri.SecurityContext", "euid", 1000, rep.ids.euid)?;
    check_eq("cri.SecurityContext", "gid", 1000, rep.ids.gid)
}

fn readonly_rootfs(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("rorootfs")?;
    let mut c = cx.container_config("c", &["sleep", "inf"]);
    sc(&mut c).readonly_rootfs = true;
    let id = cx.run(&pod, &pcfg, &c)?;
    let w = cx
        .exec(&id, &["/probe", "write", "/written"], 0)
        .map_err(|e| call_failed(&e))?;
    check(
        w.exit_code != 0,
        "cri.SecurityContext",
        "a write to / to fail",
        format!("exit {}", w.exit_code),
    )?;
    let rep = cx.exec_report(&id)?;
    let root = rep.mounts.iter().rev().find(|m| m.mount_point == "/");
    check(
        root.is_some_and(|m| m.options.iter().any(|o| o == "ro")),
        "cri.SecurityContext",
        "/ mounted ro",
        format!("{root:?}"),
    )
}

fn capabilities_add_drop(cx: &mut Ctx) -> CaseResult {
    let rep = report_with(
        cx,
        |_| {},
        |c| {
            sc(c).capabilities = Some(api::Capability {
                add_capabilities: vec!["SYS_TIME".into()],
                drop_capabilities: vec!["CHOWN".into()],
                ..Default::default()
            });
        },
    )?;
    let eff = rep.caps.effective;
    check(
        has(eff, CAP_SYS_TIME),
        "cri.SecurityContext",
        "CAP_SYS_TIME (added) effective",
        format!("CapEff {eff:#x}"),
    )?;
    check(
        !has(eff, CAP_CHOWN),
        "cri.SecurityContext",
        "CAP_CHOWN (dropped) not effective",
        format!("CapEff {eff:#x}"),
    )
}

fn unprivileged_default(cx: &mut Ctx) -> CaseResult {
    let rep = report_with(cx, |_| {}, |_| {})?;
    let eff = rep.caps.effective;
    check(
        !has(eff, CAP_SYS_ADMIN),
        "cri.SecurityContext",
        "no CAP_SYS_ADMIN",
        format!("CapEff {eff:#x}"),
    )?;
    let host_only = ["/dev/kvm", "/dev/mem", "/dev/sda", "/dev/vda"];
    let seen: Vec<&str> = rep
        .devices
        .iter()
        .map(|d| d.path.as_str())
        .filter(|p| host_only.contains(p))
        .collect();
    check(
        seen.is_empty(),
        "cri.SecurityContext",
        "none of the host's devices",
        format!("{seen:?}"),
    )
}

fn privileged(cx: &mut Ctx) -> CaseResult {
    let rep = report_with(cx, |p| pod_sc(p).privileged = true, |c| sc(c).privileged = true)?;
    let eff = rep.caps.effective;
    for (cap, name) in [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_RAW, "CAP_NET_RAW"),
        (CAP_SYS_TIME, "CAP_SYS_TIME"),
    ] {
        check(
            has(eff, cap),
            "cri.SecurityContext",
            format!("{name} effective"),
            format!("CapEff {eff:#x}"),
        )?;
    }
    Ok(())
}

fn no_new_privs(cx: &mut Ctx) -> CaseResult {
    let rep = report_with(cx, |_| {}, |c| sc(c).no_new_privs = true)?;
    check_eq("cri.SecurityContext", "no_new_privs", true, rep.no_new_privs)
}

fn ns_opts(network: i32, pid: i32, ipc: i32) -> api::NamespaceOption {
    api::NamespaceOption {
        network,
        pid,
        ipc,
        ..Default::default()
    }
}

const POD: i32 = api::NamespaceMode::Pod as i32;
const CONTAINER: i32 = api::NamespaceMode::Container as i32;
const NODE: i32 = api::NamespaceMode::Node as i32;

/// A report from a pod and container whose namespace options are `o`.
fn report_ns(cx: &mut Ctx, o: api::NamespaceOption) -> Result<Report, Verdict> {
    let o2 = o.clone();
    report_with(
        cx,
        |p| pod_sc(p).namespace_options = Some(o),
        |c| sc(c).namespace_options = Some(o2),
    )
}

fn pod_namespaces_private(cx: &mut Ctx) -> CaseResult {
    let rep = report_ns(cx, ns_opts(POD, CONTAINER, POD))?;
    let host = host_namespaces();
    for ns in ["net", "pid", "ipc", "uts", "mnt"] {
        check(
            rep.namespaces.contains_key(ns) && rep.namespaces.get(ns) != host.get(ns),
            "cri.NamespaceOption",
            format!("a {ns} namespace other than the host's"),
            format!("{:?} (host {:?})", rep.namespaces.get(ns), host.get(ns)),
        )?;
    }
    Ok(())
}

fn host_network(cx: &mut Ctx) -> CaseResult {
    cx.unchanged("host-namespaces")?;
    // A pod on the host's network shares its UTS namespace too: it is not
    // given a hostname of its own.
    let o = ns_opts(NODE, CONTAINER, POD);
    let o2 = o.clone();
    let rep = report_with(
        cx,
        |p| {
            p.hostname.clear();
            pod_sc(p).namespace_options = Some(o);
        },
        |c| sc(c).namespace_options = Some(o2),
    )?;
    let host = host_namespaces();
    check_eq(
        "cri.NamespaceOption",
        "net namespace inode (host's)",
        host.get("net"),
        rep.namespaces.get("net"),
    )
}

/// The start time (field 22) of a `/proc/PID/stat` text.
fn start_time_of(stat: &str) -> Option<&str> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)
}

/// A report from a container in namespaces `o` that also reads `path`;
/// the path's content as it saw it.
fn report_reading(cx: &mut Ctx, o: api::NamespaceOption, path: &str) -> Result<(Report, Option<String>), Verdict> {
    let o2 = o.clone();
    let item = path.to_string();
    let rep = report_with(
        cx,
        |p| pod_sc(p).namespace_options = Some(o),
        |c| {
            sc(c).namespace_options = Some(o2);
            c.args.push(item);
        },
    )?;
    let content = rep.paths.get(path).and_then(|p| p.content.clone());
    Ok((rep, content))
}

fn host_pid(cx: &mut Ctx) -> CaseResult {
    cx.unchanged("host-namespaces")?;
    // The inode alone proves little: a VM's initial PID namespace has the
    // same fixed number as the host's. The harness's own process must be
    // there, with its start time.
    let path = format!("/proc/{}/stat", std::process::id());
    let host =
        std::fs::read_to_string(&path).map_err(|e| crate::case::fail("harness", format!("reading {path}"), e))?;
    let (rep, seen) = report_reading(cx, ns_opts(POD, NODE, POD), &path)?;
    check_eq(
        "cri.NamespaceOption",
        &format!("the start time in {path} (the harness's process, seen from the container)"),
        start_time_of(&host),
        seen.as_deref().and_then(start_time_of),
    )?;
    let host_ns = host_namespaces();
    check_eq(
        "cri.NamespaceOption",
        "pid namespace inode (host's)",
        host_ns.get("pid"),
        rep.namespaces.get("pid"),
    )
}

/// A SysV message queue made on the host for a case, removed when dropped.
struct HostQueue {
    key: i32,
    id: i32,
}

impl HostQueue {
    fn new() -> std::io::Result<HostQueue> {
        // A key of this process's own, unlikely to be anyone else's.
        let key = 0x0c1_0000 | (std::process::id() as i32 & 0xffff);
        // SAFETY: msgget takes plain integers.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(HostQueue { key, id })
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID on the queue we made; no buffer is read.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

fn host_ipc(cx: &mut Ctx) -> CaseResult {
    cx.unchanged("host-namespaces")?;
    // The initial IPC namespace's inode is a fixed number, a VM's too: the
    // container must see a message queue the harness made on the host.
    let q = HostQueue::new().map_err(|e| crate::case::fail("harness", "a SysV message queue on the host", e))?;
    let (rep, seen) = report_reading(cx, ns_opts(POD, CONTAINER, NODE), "/proc/sysvipc/msg")?;
    let keys: Vec<String> = seen
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    check(
        keys.contains(&q.key.to_string()),
        "cri.NamespaceOption",
        format!("the host's message queue (key {}) in /proc/sysvipc/msg", q.key),
        format!("keys {keys:?}"),
    )?;
    let host_ns = host_namespaces();
    check_eq(
        "cri.NamespaceOption",
        "ipc namespace inode (host's)",
        host_ns.get("ipc"),
        rep.namespaces.get("ipc"),
    )
}

/// Two sleeping containers in one pod whose pid mode is `pid`: their PID
/// namespace inodes.
fn two_pid_namespaces(cx: &mut Ctx, pid: i32) -> Result<(Option<u64>, Option<u64>), Verdict> {
    let mut pcfg = cx.pod_config("pidshare");
    pod_sc(&mut pcfg).namespace_options = Some(ns_opts(POD, pid, POD));
    let pod = cx.run_pod(&pcfg)?;
    let mut reps = Vec::new();
    for name in ["a", "b"] {
        let mut c = cx.container_config(name, &["sleep", "inf"]);
        sc(&mut c).namespace_options = Some(ns_opts(POD, pid, POD));
        let id = cx.run(&pod, &pcfg, &c)?;
        reps.push(cx.exec_report(&id)?);
    }
    Ok((
        reps[0].namespaces.get("pid").copied(),
        reps[1].namespaces.get("pid").copied(),
    ))
}

fn pod_pid_sharing(cx: &mut Ctx) -> CaseResult {
    let (a, b) = two_pid_namespaces(cx, POD)?;
    check(
        a.is_some() && a == b,
        "cri.NamespaceOption",
        "one PID namespace for the pod's containers (pid POD)",
        format!("{a:?} and {b:?}"),
    )?;
    let (a, b) = two_pid_namespaces(cx, CONTAINER)?;
    check(
        a.is_some() && b.is_some() && a != b,
        "cri.NamespaceOption",
        "a PID namespace each (pid CONTAINER)",
        format!("{a:?} and {b:?}"),
    )
}
