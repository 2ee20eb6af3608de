//! Namespaces (config-linux.md, Namespaces and User namespace mappings): a
//! listed type without `path` is a new namespace, a listed `path` is joined,
//! an unlisted type is the runtime's own, and bad entries are errors.
//!
//! Namespaces are compared by the inode of /proc/PID/ns/TYPE: the probe
//! reports its own, the harness stats its own (the runtime runs in the
//! harness's namespaces, so those are the "runtime namespaces").

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceType, LinuxTimeOffset, Spec};
use serde_json::{json, Value};

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Need, Verdict};
use crate::cases::create::expect_refused;
use crate::ctx::{tail, Ctx};

pub const CASES: &[Case] = &[
    Case {
        id: "namespaces::pid_new",
        clauses: &["config-linux.namespaces.pid", "config-linux.namespaces.new"],
        needs: &[Need::Namespace("pid")],
        summary: "a listed pid namespace is new and the container process is pid 1 in it",
        run: pid_new,
    },
    Case {
        id: "namespaces::network_new",
        clauses: &["config-linux.namespaces.network", "config-linux.namespaces.new"],
        needs: &[Need::Namespace("net")],
        summary: "a listed network namespace is new and holds only the loopback interface",
        run: network_new,
    },
    Case {
        id: "namespaces::mount_new",
        clauses: &["config-linux.namespaces.mount", "config-linux.namespaces.new"],
        needs: &[Need::Namespace("mnt")],
        summary: "a listed mount namespace is new",
        run: mount_new,
    },
    Case {
        id: "namespaces::ipc_new",
        clauses: &["config-linux.namespaces.ipc", "config-linux.namespaces.new"],
        needs: &[Need::Namespace("ipc")],
        summary: "a listed ipc namespace is new",
        run: ipc_new,
    },
    Case {
        id: "namespaces::uts_new",
        clauses: &["config-linux.namespaces.uts", "config-linux.namespaces.new"],
        needs: &[Need::Namespace("uts")],
        summary: "a listed uts namespace is new and the host's hostname is left alone",
        run: uts_new,
    },
    Case {
        id: "namespaces::cgroup_new",
        clauses: &["config-linux.namespaces.cgroup", "config-linux.namespaces.new"],
        needs: &[Need::Namespace("cgroup"), Need::Unchanged("host-cgroup")],
        summary: "a listed cgroup namespace is new and rooted at the container's own cgroups",
        run: cgroup_new,
    },
    Case {
        id: "namespaces::user_new_mapped",
        clauses: &[
            "config-linux.namespaces.user",
            "config-linux.namespaces.new",
            "config-linux.id-mappings.uid",
            "config-linux.id-mappings.gid",
        ],
        needs: &[Need::Namespace("user")],
        summary: "a listed user namespace is new and its uid_map and gid_map are the configured mappings",
        run: user_new_mapped,
    },
    Case {
        id: "namespaces::user_files_owned_by_mapped_id",
        clauses: &[
            "config-linux.id-mappings.uid",
            "config-linux.id-mappings.gid",
            "config-linux.namespaces.user",
        ],
        // Read on the host, in the bundle: a VM's rootfs is a copy.
        needs: &[Need::Namespace("user"), Need::Unchanged("host-files")],
        summary: "a file the container's root creates is owned by the mapped host uid and gid",
        run: user_files_owned_by_mapped_id,
    },
    Case {
        id: "namespaces::time_new_offsets",
        clauses: &[
            "config-linux.namespaces.time",
            "config-linux.time-offsets",
            "config-linux.namespaces.new",
        ],
        needs: &[Need::Namespace("time")],
        summary: "a listed time namespace is new and carries the configured timeOffsets",
        run: time_new_offsets,
    },
    Case {
        id: "namespaces::unlisted_inherited",
        clauses: &["config-linux.namespaces.inherit"],
        needs: &[Need::Unchanged("host-namespaces")],
        summary: "with only a mount namespace listed, every other namespace is the runtime's own",
        run: unlisted_inherited,
    },
    Case {
        id: "namespaces::join_by_path",
        clauses: &["config-linux.namespaces.path-join"],
        needs: &[
            Need::Namespace("net"),
            Need::Namespace("uts"),
            Need::Namespace("ipc"),
            Need::Unchanged("host-namespaces"),
        ],
        summary: "network, uts and ipc entries with a path join the namespaces at those paths",
        run: join_by_path,
    },
    Case {
        id: "namespaces::path_not_a_namespace",
        clauses: &[
            "config-linux.namespaces.path-invalid-error",
            "runtime.create.apply-error-no-container",
        ],
        needs: &[],
        summary: "a network path naming a regular file is a create error and leaves nothing",
        run: path_not_a_namespace,
    },
    Case {
        id: "namespaces::path_wrong_type",
        clauses: &[
            "config-linux.namespaces.path-invalid-error",
            "runtime.create.apply-error-no-container",
        ],
        needs: &[Need::Namespace("uts")],
        summary: "a network path naming a uts namespace is a create error and leaves nothing",
        run: path_wrong_type,
    },
    Case {
        id: "namespaces::duplicate_type",
        clauses: &[
            "config-linux.namespaces.duplicate-error",
            "runtime.create.apply-error-no-container",
        ],
        needs: &[],
        summary: "two network entries in namespaces are a create error and leave nothing",
        run: duplicate_type,
    },
];

/// The inode of a namespace file, following the /proc symlink.
fn ns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The harness's (the runtime's) namespace of `name` (`net`, `mnt`...).
fn host_ns(name: &str) -> Result<u64, Verdict> {
    let p = Path::new("/proc/self/ns").join(name);
    ns_inode(&p).ok_or_else(|| skip(format!("{} is not readable here", p.display())))
}

/// The probe's namespace of `name`, or a failure naming `clause`.
fn probe_ns(r: &probe::Report, name: &str, clause: &str) -> Result<u64, Verdict> {
    r.namespaces.get(name).copied().ok_or_else(|| {
        fail(
            clause,
            format!("the container to have /proc/self/ns/{name}"),
            format!("the probe saw only {:?}", r.namespaces.keys().collect::<Vec<_>>()),
        )
    })
}

/// The container's namespace of `name` differs from the runtime's.
fn expect_new(r: &probe::Report, name: &str, clause: &str) -> CaseResult {
    let host = host_ns(name)?;
    let inside = probe_ns(r, name, clause)?;
    check(
        inside != host,
        clause,
        format!("a new {name} namespace (inode other than the runtime's {host})"),
        format!("the runtime's own {name} namespace (inode {inside})"),
    )
}

/// Skips when the runtime's `features` lists namespaces and not `typ`
/// (features-linux.md: the namespaces the runtime supports).
fn require_runtime_namespace(ctx: &Ctx, typ: &str) -> CaseResult {
    let listed = ctx
        .shared
        .features
        .as_ref()
        .and_then(|f| f.pointer("/linux/namespaces"))
        .and_then(Value::as_array);
    match listed {
        Some(list) if !list.iter().any(|v| v.as_str() == Some(typ)) => {
            Err(skip(format!("the runtime's features do not list the {typ} namespace")))
        }
        _ => Ok(()),
    }
}

fn pid_new(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    expect_new(&r, "pid", "config-linux.namespaces.new")?;
    // config-linux.md: processes see only their own pid namespace; the first
    // process of a new one is its init, pid 1.
    check_eq("config-linux.namespaces.pid", "getpid() in the container", 1, r.pid)
}

fn network_new(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    expect_new(&r, "net", "config-linux.namespaces.new")?;
    // A new network namespace starts with the loopback device alone; seeing
    // the host's interfaces means its stack was shared.
    let mut ifs = r.net_interfaces.clone();
    ifs.sort();
    check_eq(
        "config-linux.namespaces.network",
        "network interfaces",
        vec!["lo".to_string()],
        ifs,
    )
}

fn mount_new(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    expect_new(&r, "mnt", "config-linux.namespaces.new")
}

fn ipc_new(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    expect_new(&r, "ipc", "config-linux.namespaces.new")
}

fn uts_new(ctx: &mut Ctx) -> CaseResult {
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let r = ctx.report(&ctx.spec(), &[])?;
    expect_new(&r, "uts", "config-linux.namespaces.new")?;
    check_eq(
        "config-linux.namespaces.uts",
        "hostname in the container",
        "oci-harness",
        r.hostname.as_str(),
    )?;
    let after = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    check_eq(
        "config-linux.namespaces.uts",
        "the host's hostname",
        before.trim(),
        after.trim(),
    )
}

fn cgroup_new(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_namespace(LinuxNamespaceType::Cgroup, None);
    let r = ctx.report(&spec, &[])?;
    expect_new(&r, "cgroup", "config-linux.namespaces.new")?;
    // The namespace is made once the process is in its cgroups, so each
    // hierarchy the runtime placed it in shows as the root "/". A namespace
    // made too early shows the container's cgroup as a path below it. The
    // unified line counts only on a pure v2 host: on a hybrid one it holds
    // no controller the container needs (see cgroups.rs).
    let host = ctx.host();
    let v1 = &host.cgroup_v1;
    let unified = host.cgroup_mode == crate::host::CgroupMode::Unified;
    let placed: Vec<&probe::report::CgroupEntry> = r
        .cgroups
        .iter()
        .filter(|e| {
            e.controllers.iter().any(|c| v1.contains_key(c))
                || (unified && e.hierarchy == 0 && e.controllers.is_empty())
        })
        .collect();
    check(
        !placed.is_empty(),
        "config-linux.namespaces.cgroup",
        "the container's cgroups listed in /proc/self/cgroup",
        format!("{:?}", r.cgroups),
    )?;
    let off: Vec<String> = placed
        .iter()
        .filter(|e| e.path != "/")
        .map(|e| format!("{}:{}", e.controllers.join(","), e.path))
        .collect();
    check(
        off.is_empty(),
        "config-linux.namespaces.cgroup",
        "every controller's cgroup to be the namespace root \"/\"",
        format!("{off:?}"),
    )
}

/// container 0 to host 100000, 65536 ids: the usual subordinate range.
const MAP_HOST: u32 = 100_000;
const MAP_SIZE: u32 = 65_536;

fn mapping() -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(MAP_HOST)
        .size(MAP_SIZE)
        .build()
        .unwrap_or_default()
}

fn user_spec(ctx: &Ctx) -> Spec {
    let mut spec = ctx.spec();
    spec.set_namespace(LinuxNamespaceType::User, None);
    let linux = spec.linux_mut_or_default();
    linux.set_uid_mappings(Some(vec![mapping()]));
    linux.set_gid_mappings(Some(vec![mapping()]));
    spec
}

fn user_new_mapped(ctx: &mut Ctx) -> CaseResult {
    require_runtime_namespace(ctx, "user")?;
    let r = ctx.report(&user_spec(ctx), &[])?;
    expect_new(&r, "user", "config-linux.namespaces.new")?;
    let want = vec![[0u64, u64::from(MAP_HOST), u64::from(MAP_SIZE)]];
    check_eq("config-linux.id-mappings.uid", "/proc/self/uid_map", &want, &r.uid_map)?;
    check_eq("config-linux.id-mappings.gid", "/proc/self/gid_map", &want, &r.gid_map)
}

fn user_files_owned_by_mapped_id(ctx: &mut Ctx) -> CaseResult {
    require_runtime_namespace(ctx, "user")?;
    let mut spec = user_spec(ctx);
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    // /tmp of the rootfs is 1777, so the container's root (an unprivileged
    // id on the host) can create a file there.
    spec.set_args(&["/probe", "write", "/tmp/owned", "mapped"]);
    let b = ctx.bundle(&spec)?;
    let c = ctx.create(&b)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    let file = b.rootfs().join("tmp/owned");
    let meta = std::fs::metadata(&file).map_err(|e| {
        fail(
            "config-linux.namespaces.user",
            "the container's root to create /tmp/owned",
            format!("{}: {e}; stderr {:?}", file.display(), tail(&c.io.stderr(), 200)),
        )
    })?;
    check_eq(
        "config-linux.id-mappings.uid",
        "host uid of the file",
        MAP_HOST,
        meta.uid(),
    )?;
    check_eq(
        "config-linux.id-mappings.gid",
        "host gid of the file",
        MAP_HOST,
        meta.gid(),
    )
}

fn time_new_offsets(ctx: &mut Ctx) -> CaseResult {
    require_runtime_namespace(ctx, "time")?;
    let mut spec = ctx.spec();
    spec.set_namespace(LinuxNamespaceType::Time, None);
    let mut offsets = std::collections::HashMap::new();
    let mut mono = LinuxTimeOffset::default();
    mono.set_secs(Some(86_400));
    mono.set_nanosecs(Some(0));
    let mut boot = LinuxTimeOffset::default();
    boot.set_secs(Some(172_800));
    boot.set_nanosecs(Some(0));
    offsets.insert("monotonic".to_string(), mono);
    offsets.insert("boottime".to_string(), boot);
    spec.linux_mut_or_default().set_time_offsets(Some(offsets));
    let r = ctx.report(&spec, &["/proc/self/timens_offsets"])?;
    expect_new(&r, "time", "config-linux.namespaces.new")?;
    // time_namespaces(7): /proc/PID/timens_offsets lists "CLOCK SECS NANOS"
    // for the process's time namespace.
    let text = r
        .paths
        .get("/proc/self/timens_offsets")
        .and_then(|p| p.content.clone())
        .unwrap_or_default();
    let seen: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let clock = w.next()?.to_string();
            Some((clock, w.collect::<Vec<_>>().join(" ")))
        })
        .collect();
    check_eq(
        "config-linux.time-offsets",
        "monotonic offset",
        Some("86400 0"),
        seen.get("monotonic").map(String::as_str),
    )?;
    check_eq(
        "config-linux.time-offsets",
        "boottime offset",
        Some("172800 0"),
        seen.get("boottime").map(String::as_str),
    )
}

fn unlisted_inherited(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Time,
    ] {
        spec.remove_namespace(t);
    }
    // Setting a hostname needs a uts namespace of the container's own.
    spec.set_hostname(None);
    let r = ctx.report(&spec, &[])?;
    let mut differ = Vec::new();
    for name in ctx.host().namespaces.clone() {
        if name == "mnt" {
            continue;
        }
        let host = host_ns(&name)?;
        match r.namespaces.get(&name) {
            Some(&inside) if inside == host => {}
            Some(&inside) => differ.push(format!("{name} {inside} (runtime's {host})")),
            None => differ.push(format!("{name} missing")),
        }
    }
    check(
        differ.is_empty(),
        "config-linux.namespaces.inherit",
        "the runtime's namespaces for every type not listed",
        format!("new ones: {}", differ.join(", ")),
    )
}

/// Starts `unshare --net --uts --ipc sleep 60` and waits until it is in its
/// new namespaces; returns its pid.
fn namespace_holder(ctx: &mut Ctx) -> Result<u32, Verdict> {
    let pid = ctx.spawn_helper(Command::new("unshare").args(["--net", "--uts", "--ipc", "sleep", "60"]))?;
    let host = host_ns("net")?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(ino) = ns_inode(Path::new(&format!("/proc/{pid}/ns/net"))) {
            if ino != host {
                return Ok(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(fail(
        "harness",
        "the namespace holder to unshare",
        format!("pid {pid} still in the host's net namespace"),
    ))
}

fn join_by_path(ctx: &mut Ctx) -> CaseResult {
    let holder = namespace_holder(ctx)?;
    let mut spec = ctx.spec();
    let mut want = Vec::new();
    for (typ, name) in [
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Ipc, "ipc"),
    ] {
        let p = format!("/proc/{holder}/ns/{name}");
        let ino = ns_inode(Path::new(&p)).ok_or_else(|| fail("harness", format!("{p} readable"), "it is not"))?;
        spec.set_namespace(typ, Some(Path::new(&p)));
        want.push((name, ino));
    }
    let r = ctx.report(&spec, &[])?;
    for (name, ino) in want {
        let inside = probe_ns(&r, name, "config-linux.namespaces.path-join")?;
        check_eq(
            "config-linux.namespaces.path-join",
            &format!("{name} namespace inode (the holder's)"),
            ino,
            inside,
        )?;
    }
    Ok(())
}

fn path_not_a_namespace(ctx: &mut Ctx) -> CaseResult {
    let file = ctx.path("not-a-namespace");
    std::fs::write(&file, b"plain file\n").map_err(|e| fail("harness", "a scratch file", e))?;
    let mut spec = ctx.spec();
    spec.set_namespace(LinuxNamespaceType::Network, Some(&file));
    let b = ctx.bundle(&spec)?;
    expect_refused(
        ctx,
        &b,
        "config-linux.namespaces.path-invalid-error",
        &format!("network path {} (a regular file)", file.display()),
    )
}

fn path_wrong_type(ctx: &mut Ctx) -> CaseResult {
    // The harness's own uts namespace: a namespace, but not a network one.
    let p = format!("/proc/{}/ns/uts", std::process::id());
    let mut spec = ctx.spec();
    spec.set_namespace(LinuxNamespaceType::Network, Some(Path::new(&p)));
    let b = ctx.bundle(&spec)?;
    expect_refused(
        ctx,
        &b,
        "config-linux.namespaces.path-invalid-error",
        &format!("network path {p} (a uts namespace)"),
    )
}

fn duplicate_type(ctx: &mut Ctx) -> CaseResult {
    // The harness's validator refuses this config, so it is written raw.
    let mut cfg = ctx.spec_json();
    match cfg.pointer_mut("/linux/namespaces").and_then(Value::as_array_mut) {
        Some(ns) => ns.push(json!({"type": "network"})),
        None => return Err(fail("harness", "a default config with namespaces", "none")),
    }
    let b = ctx.bundle_raw(&cfg)?;
    expect_refused(
        ctx,
        &b,
        "config-linux.namespaces.duplicate-error",
        "two network namespace entries",
    )
}
