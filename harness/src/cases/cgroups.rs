//! Control groups (config-linux.md, Control groups, Cgroups Path and the
//! resource sections): where the container's cgroups are, what limits the
//! runtime writes into them, and that they go away with the container.
//!
//! Limits are read from the host side: the container's pid gives its cgroup
//! per hierarchy (/proc/PID/cgroup), and the files under the host's mount of
//! that hierarchy show what was written. A controller is looked up where the
//! host has it (a v1 hierarchy, else the unified one), so the cases hold on
//! v1, v2 and hybrid hosts alike; on v2 the v1 names of the spec map to the
//! v2 files the kernel documents (memory.max, cpu.max, io.max...).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Need, Verdict};
use crate::cases::create::expect_refused;
use crate::ctx::{Container, Ctx};

const MIB: i64 = 1024 * 1024;

pub const CASES: &[Case] = &[
    Case {
        id: "cgroups::memory_limit",
        clauses: &["config-linux.memory.limit"],
        needs: &[Need::CgroupController("memory"), Need::Unchanged("host-cgroup")],
        summary: "memory.limit is the container cgroup's memory limit",
        run: memory_limit,
    },
    Case {
        id: "cgroups::memory_reservation",
        clauses: &["config-linux.memory.reservation"],
        needs: &[Need::CgroupController("memory"), Need::Unchanged("host-cgroup")],
        summary: "memory.reservation is the container cgroup's soft limit",
        run: memory_reservation,
    },
    Case {
        id: "cgroups::memory_swap",
        clauses: &["config-linux.memory.swap"],
        needs: &[Need::CgroupController("memory"), Need::Unchanged("host-cgroup")],
        summary: "memory.swap is the container cgroup's memory plus swap limit",
        run: memory_swap,
    },
    Case {
        id: "cgroups::pids_limit",
        clauses: &["config-linux.pids.limit"],
        needs: &[Need::CgroupController("pids"), Need::Unchanged("host-cgroup")],
        summary: "pids.limit is the container cgroup's pids.max",
        run: pids_limit,
    },
    Case {
        id: "cgroups::pids_zero_is_a_limit",
        clauses: &["config-linux.pids.zero"],
        needs: &[Need::CgroupController("pids"), Need::Unchanged("host-cgroup")],
        summary: "a pids.limit of 0 is written as the limit 0, not taken as unset",
        run: pids_zero_is_a_limit,
    },
    Case {
        id: "cgroups::cpu_shares",
        clauses: &["config-linux.cpu.shares"],
        needs: &[Need::CgroupController("cpu"), Need::Unchanged("host-cgroup")],
        summary: "cpu.shares is the container cgroup's cpu share (cpu.weight on v2)",
        run: cpu_shares,
    },
    Case {
        id: "cgroups::cpu_quota_period",
        clauses: &["config-linux.cpu.quota", "config-linux.cpu.period"],
        needs: &[Need::CgroupController("cpu"), Need::Unchanged("host-cgroup")],
        summary: "cpu.quota and cpu.period are the container cgroup's cfs quota and period",
        run: cpu_quota_period,
    },
    Case {
        id: "cgroups::cpuset",
        clauses: &["config-linux.cpu.cpus", "config-linux.cpu.mems"],
        needs: &[Need::CgroupController("cpuset"), Need::Unchanged("host-cgroup")],
        summary: "cpu.cpus and cpu.mems are the container cgroup's cpuset and its process's affinity",
        run: cpuset,
    },
    Case {
        id: "cgroups::cpuset_invalid_error",
        clauses: &[
            "runtime.create.apply-error",
            "runtime.create.apply-error-no-container",
            "config-linux.cpu.cpus",
        ],
        needs: &[Need::CgroupController("cpuset")],
        summary: "cpu.cpus naming a cpu the host does not have is a create error and leaves nothing",
        run: cpuset_invalid_error,
    },
    Case {
        id: "cgroups::blkio_weight",
        clauses: &["config-linux.blockio.weight"],
        needs: &[Need::Unchanged("host-cgroup")],
        summary: "blockIO.weight is the container cgroup's io weight",
        run: blkio_weight,
    },
    Case {
        id: "cgroups::blkio_throttle",
        clauses: &[
            "config-linux.blockio.throttle-bps",
            "config-linux.blockio.throttle-iops",
        ],
        needs: &[Need::Unchanged("host-cgroup")],
        summary: "throttleReadBpsDevice and throttleWriteIOPSDevice limit the host's root disk in the container cgroup",
        run: blkio_throttle,
    },
    Case {
        id: "cgroups::hugetlb_limit",
        clauses: &[
            "config-linux.hugepages.limit",
            "config-linux.hugepages.fallback",
            "runtime.create.apply-error",
        ],
        needs: &[
            Need::CgroupController("hugetlb"),
            Need::HostPath("/sys/kernel/mm/hugepages"),
            Need::Unchanged("host-cgroup"),
        ],
        summary: "a hugepageLimits entry is the container cgroup's hugetlb limit for that page size",
        run: hugetlb_limit,
    },
    Case {
        id: "cgroups::devices_allowlist",
        clauses: &[
            "config-linux.device-cgroup.access",
            "config-linux.device-cgroup.order",
            "config-linux.device-cgroup.wildcards",
            "config-linux.devices.create",
        ],
        needs: &[],
        summary: "a deny-all device rule followed by allows blocks other devices and grants only the listed access",
        run: devices_allowlist,
    },
    Case {
        id: "cgroups::path_absolute",
        clauses: &["config-linux.cgroups-path.absolute", "config-linux.cgroups-path.create"],
        needs: &[Need::Unchanged("host-cgroup")],
        summary: "an absolute cgroupsPath is the container's cgroup below each hierarchy's mount point",
        run: path_absolute,
    },
    Case {
        id: "cgroups::path_relative",
        clauses: &["config-linux.cgroups-path.relative", "config-linux.cgroups-path.create"],
        needs: &[Need::Unchanged("host-cgroup")],
        summary: "a relative cgroupsPath is the container's cgroup below some runtime-chosen place",
        run: path_relative,
    },
    Case {
        id: "cgroups::removed_on_delete",
        clauses: &["runtime.delete.remove-resources", "config-linux.cgroups-path.create"],
        needs: &[Need::Unchanged("host-cgroup")],
        summary: "the cgroups made for cgroupsPath are gone after delete",
        run: removed_on_delete,
    },
];

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

/// One line of /proc/PID/cgroup.
#[derive(Debug, Clone)]
struct CgLine {
    hierarchy: u32,
    /// Empty for the unified hierarchy (and for named ones without any).
    controllers: Vec<String>,
    path: String,
}

fn proc_cgroups(pid: i32) -> Vec<CgLine> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let ctrls = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = ctrls.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect();
            Some(CgLine {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// Whether `controller` lives in the unified hierarchy here.
fn on_v2(ctx: &Ctx, controller: &str) -> bool {
    !ctx.host().cgroup_v1.contains_key(controller)
}

/// The host directory holding `controller`'s files of `pid`'s cgroup.
fn controller_dir(ctx: &Ctx, pid: i32, controller: &str) -> Result<PathBuf, Verdict> {
    let lines = proc_cgroups(pid);
    let line = if on_v2(ctx, controller) {
        lines.iter().find(|l| l.hierarchy == 0 && l.controllers.is_empty())
    } else {
        lines.iter().find(|l| l.controllers.iter().any(|c| c == controller))
    };
    let line = line.ok_or_else(|| {
        fail(
            "config-linux.cgroups-path.create",
            format!("the container process in a {controller} cgroup"),
            format!("/proc/{pid}/cgroup: {lines:?}"),
        )
    })?;
    ctx.host()
        .cgroup_dir(controller, &line.path)
        .ok_or_else(|| skip(format!("no hierarchy with the {controller} controller is mounted")))
}

/// A cgroup file's content, trimmed; a missing file fails `clause`.
fn read_cg(dir: &Path, file: &str, clause: &str) -> Result<String, Verdict> {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| fail(clause, format!("{} to be readable", p.display()), e))
}

/// The default config with `resources` and a fresh absolute cgroupsPath.
fn spec_with(ctx: &mut Ctx, resources: Value) -> Result<Spec, Verdict> {
    let path = ctx.cgroup_path("cg");
    spec_at(ctx, resources, &path)
}

fn spec_at(ctx: &Ctx, resources: Value, cgroups_path: &str) -> Result<Spec, Verdict> {
    let mut cfg = ctx.spec_json();
    cfg["linux"]["resources"] = resources;
    cfg["linux"]["cgroupsPath"] = json!(cgroups_path);
    serde_json::from_value(cfg).map_err(|e| fail("harness", "a config with these resources", e))
}

/// Creates and starts a long-running container from `spec`; its pid.
fn running(ctx: &mut Ctx, mut spec: Spec) -> Result<(Container, i32), Verdict> {
    spec.set_args(&["/probe", "sleep", "inf"]);
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    let pid = c
        .pid
        .filter(|&p| p > 0)
        .ok_or_else(|| fail("runtime.state.pid", "the container's pid after create", "none"))?;
    Ok((c, pid))
}

/// Runs a container with `resources` and returns `controller`'s directory.
fn dir_under(ctx: &mut Ctx, resources: Value, controller: &str) -> Result<PathBuf, Verdict> {
    let spec = spec_with(ctx, resources)?;
    let (_c, pid) = running(ctx, spec)?;
    controller_dir(ctx, pid, controller)
}

// ---------------------------------------------------------------------
// Memory, pids, cpu
// ---------------------------------------------------------------------

fn memory_limit(ctx: &mut Ctx) -> CaseResult {
    let limit = 64 * MIB;
    let dir = dir_under(ctx, json!({"memory": {"limit": limit}}), "memory")?;
    let file = if on_v2(ctx, "memory") {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let seen = read_cg(&dir, file, "config-linux.memory.limit")?;
    check_eq("config-linux.memory.limit", file, limit.to_string(), seen)
}

fn memory_reservation(ctx: &mut Ctx) -> CaseResult {
    let reservation = 32 * MIB;
    let dir = dir_under(
        ctx,
        json!({"memory": {"limit": 128 * MIB, "reservation": reservation}}),
        "memory",
    )?;
    // On v2 the soft limit is memory.low (the kernel's cgroup-v2 docs).
    let file = if on_v2(ctx, "memory") {
        "memory.low"
    } else {
        "memory.soft_limit_in_bytes"
    };
    let seen = read_cg(&dir, file, "config-linux.memory.reservation")?;
    check_eq("config-linux.memory.reservation", file, reservation.to_string(), seen)
}

fn memory_swap(ctx: &mut Ctx) -> CaseResult {
    let v2 = on_v2(ctx, "memory");
    // Without swap accounting the kernel offers no file to set.
    let root = ctx
        .host()
        .cgroup_dir("memory", "/")
        .ok_or_else(|| skip("no memory hierarchy is mounted"))?;
    if !v2 && !root.join("memory.memsw.limit_in_bytes").exists() {
        return Err(skip(
            "the kernel has no swap accounting (no memory.memsw.limit_in_bytes)",
        ));
    }
    let (limit, swap) = (64 * MIB, 128 * MIB);
    let dir = dir_under(ctx, json!({"memory": {"limit": limit, "swap": swap}}), "memory")?;
    if v2 {
        // v2 limits swap alone: memory+swap minus memory.
        if !dir.join("memory.swap.max").exists() {
            return Err(skip("the kernel has no swap accounting (no memory.swap.max)"));
        }
        let seen = read_cg(&dir, "memory.swap.max", "config-linux.memory.swap")?;
        check_eq(
            "config-linux.memory.swap",
            "memory.swap.max",
            (swap - limit).to_string(),
            seen,
        )
    } else {
        let seen = read_cg(&dir, "memory.memsw.limit_in_bytes", "config-linux.memory.swap")?;
        check_eq(
            "config-linux.memory.swap",
            "memory.memsw.limit_in_bytes",
            swap.to_string(),
            seen,
        )
    }
}

fn pids_limit(ctx: &mut Ctx) -> CaseResult {
    let dir = dir_under(ctx, json!({"pids": {"limit": 42}}), "pids")?;
    let seen = read_cg(&dir, "pids.max", "config-linux.pids.limit")?;
    check_eq("config-linux.pids.limit", "pids.max", "42", seen.as_str())
}

fn pids_zero_is_a_limit(ctx: &mut Ctx) -> CaseResult {
    // config-linux.md: 0 is a valid pids limit and SHOULD be treated as one.
    // The probe only sleeps, so it needs no new task.
    let dir = dir_under(ctx, json!({"pids": {"limit": 0}}), "pids")?;
    let seen = read_cg(&dir, "pids.max", "config-linux.pids.zero")?;
    check_eq("config-linux.pids.zero", "pids.max", "0", seen.as_str())
}

fn cpu_shares(ctx: &mut Ctx) -> CaseResult {
    let shares = 512u64;
    let dir = dir_under(ctx, json!({"cpu": {"shares": shares}}), "cpu")?;
    if on_v2(ctx, "cpu") {
        // The spec leaves the v1-to-v2 conversion to the runtime
        // (config-linux.unified.v1-conversion); any weight but the default
        // 100 shows the share was applied.
        let seen = read_cg(&dir, "cpu.weight", "config-linux.cpu.shares")?;
        let w: u64 = seen.parse().unwrap_or(0);
        check(
            (1..=10_000).contains(&w) && w != 100,
            "config-linux.cpu.shares",
            format!("cpu.weight converted from shares {shares} (not the default 100)"),
            format!("cpu.weight = {seen:?}"),
        )
    } else {
        let seen = read_cg(&dir, "cpu.shares", "config-linux.cpu.shares")?;
        check_eq("config-linux.cpu.shares", "cpu.shares", shares.to_string(), seen)
    }
}

fn cpu_quota_period(ctx: &mut Ctx) -> CaseResult {
    // Neither value is the kernel's default (no quota, 100000 us period).
    let (quota, period) = (50_000i64, 200_000u64);
    let dir = dir_under(ctx, json!({"cpu": {"quota": quota, "period": period}}), "cpu")?;
    if on_v2(ctx, "cpu") {
        let seen = read_cg(&dir, "cpu.max", "config-linux.cpu.quota")?;
        check_eq("config-linux.cpu.quota", "cpu.max", format!("{quota} {period}"), seen)
    } else {
        let q = read_cg(&dir, "cpu.cfs_quota_us", "config-linux.cpu.quota")?;
        check_eq("config-linux.cpu.quota", "cpu.cfs_quota_us", quota.to_string(), q)?;
        let p = read_cg(&dir, "cpu.cfs_period_us", "config-linux.cpu.period")?;
        check_eq("config-linux.cpu.period", "cpu.cfs_period_us", period.to_string(), p)
    }
}

/// The last number of a kernel cpu/node list such as "0-3,6".
fn last_in_list(list: &str) -> Option<u32> {
    list.trim().rsplit([',', '-']).next()?.parse().ok()
}

fn first_in_list(list: &str) -> Option<u32> {
    list.trim().split([',', '-']).next()?.parse().ok()
}

fn cpuset(ctx: &mut Ctx) -> CaseResult {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let nodes = std::fs::read_to_string("/sys/devices/system/node/online").unwrap_or_else(|_| "0".into());
    let cpu = last_in_list(&online).ok_or_else(|| skip("/sys/devices/system/cpu/online is unreadable"))?;
    let node = first_in_list(&nodes).unwrap_or(0);
    // On a host with several cpus the last one alone is a real restriction.
    let (cpus, mems) = (cpu.to_string(), node.to_string());
    let spec = spec_with(ctx, json!({"cpu": {"cpus": cpus, "mems": mems}}))?;
    let (_c, pid) = running(ctx, spec)?;
    let dir = controller_dir(ctx, pid, "cpuset")?;
    let c = read_cg(&dir, "cpuset.cpus", "config-linux.cpu.cpus")?;
    check_eq("config-linux.cpu.cpus", "cpuset.cpus", cpus.as_str(), c.as_str())?;
    let m = read_cg(&dir, "cpuset.mems", "config-linux.cpu.mems")?;
    check_eq("config-linux.cpu.mems", "cpuset.mems", mems.as_str(), m.as_str())?;
    // The process itself is bound to those cpus.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string());
    check_eq(
        "config-linux.cpu.cpus",
        "the process's Cpus_allowed_list",
        Some(cpus),
        allowed,
    )
}

fn cpuset_invalid_error(ctx: &mut Ctx) -> CaseResult {
    // No host this suite runs on has cpu 4000: the kernel refuses the cpuset,
    // and the runtime must report that it could not apply the config.
    let spec = spec_with(ctx, json!({"cpu": {"cpus": "4000"}}))?;
    if std::path::Path::new("/sys/devices/system/cpu/cpu4000").exists() {
        return Err(skip("this host has a cpu 4000"));
    }
    let b = ctx.bundle(&spec)?;
    expect_refused(ctx, &b, "runtime.create.apply-error", "cpu.cpus \"4000\" (no such cpu)")
}

// ---------------------------------------------------------------------
// Block IO, hugetlb, devices
// ---------------------------------------------------------------------

/// The block io controller's name here: blkio on v1, io on v2.
fn io_controller(ctx: &Ctx) -> Option<&'static str> {
    let h = ctx.host();
    if h.cgroup_v1.contains_key("blkio") {
        Some("blkio")
    } else if h.cgroup_v2_controllers.iter().any(|c| c == "io") {
        Some("io")
    } else {
        None
    }
}

fn blkio_weight(ctx: &mut Ctx) -> CaseResult {
    let ctrl = io_controller(ctx).ok_or_else(|| skip("no blkio (v1) or io (v2) controller"))?;
    // Weight files come from the io scheduler (CFQ/BFQ) or iocost; look for
    // them where the kernel would show them before asking for a weight.
    let candidates: &[&str] = if ctrl == "blkio" {
        &["blkio.weight", "blkio.bfq.weight"]
    } else {
        &["io.weight", "io.bfq.weight"]
    };
    let root = ctx
        .host()
        .cgroup_dir(ctrl, "/")
        .ok_or_else(|| skip(format!("no {ctrl} hierarchy is mounted")))?;
    let mut probe_dirs = vec![root.clone()];
    // v2 shows weight files only in non-root cgroups.
    if let Ok(rd) = std::fs::read_dir(&root) {
        probe_dirs.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).take(8));
    }
    let present = candidates.iter().any(|f| probe_dirs.iter().any(|d| d.join(f).exists()));
    if !present {
        return Err(skip(format!(
            "this kernel has no {ctrl} weight files ({})",
            candidates.join(", ")
        )));
    }
    let weight = 300u64;
    let dir = dir_under(ctx, json!({"blockIO": {"weight": weight}}), ctrl)?;
    // blkio.weight shows "300"; io.weight and io.bfq.weight "default N". On
    // v2 runc-style runtimes convert 10..1000 to 1..10000 (300 -> 2930).
    let converted = 1 + (weight - 10) * 9999 / 990;
    let mut seen = Vec::new();
    for f in candidates {
        if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
            let ok = text
                .split_whitespace()
                .any(|w| w == weight.to_string() || (ctrl == "io" && w == converted.to_string()));
            if ok {
                return Ok(());
            }
            seen.push(format!("{f} = {:?}", text.trim()));
        }
    }
    Err(fail(
        "config-linux.blockio.weight",
        format!("a weight file showing {weight}"),
        if seen.is_empty() {
            "no weight file in the container cgroup".to_string()
        } else {
            seen.join("; ")
        },
    ))
}

/// major:minor of the whole disk holding the host's root filesystem, else
/// of the first real disk in /sys/block (throttling takes whole disks).
fn root_disk() -> Option<(u64, u64)> {
    let parse = |s: &str| -> Option<(u64, u64)> {
        let (a, b) = s.trim().split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root_dev = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some("/"))
        .filter_map(|l| l.split(' ').nth(2))
        .next_back()
        .and_then(parse);
    if let Some((maj, min)) = root_dev.filter(|&(maj, _)| maj != 0) {
        let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
        if sys.join("partition").exists() {
            if let Some(d) = std::fs::read_to_string(sys.join("../dev")).ok().and_then(|s| parse(&s)) {
                return Some(d);
            }
        } else if sys.exists() {
            return Some((maj, min));
        }
    }
    let mut disks: Vec<PathBuf> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    disks.sort();
    disks
        .iter()
        .filter(|d| d.join("device").exists())
        .find_map(|d| std::fs::read_to_string(d.join("dev")).ok().and_then(|s| parse(&s)))
}

fn blkio_throttle(ctx: &mut Ctx) -> CaseResult {
    let ctrl = io_controller(ctx).ok_or_else(|| skip("no blkio (v1) or io (v2) controller"))?;
    let (maj, min) = root_disk().ok_or_else(|| skip("no block device found for throttling"))?;
    let (bps, iops) = (1_048_576u64, 300u64);
    let dir = dir_under(
        ctx,
        json!({"blockIO": {
            "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": bps}],
            "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": iops}],
        }}),
        ctrl,
    )?;
    let dev = format!("{maj}:{min}");
    if ctrl == "io" {
        // io.max: "MAJ:MIN rbps=N wbps=max riops=max wiops=N".
        let text = read_cg(&dir, "io.max", "config-linux.blockio.throttle-bps")?;
        let line = text.lines().find(|l| l.starts_with(&format!("{dev} "))).unwrap_or("");
        let has = |kv: &str| line.split_whitespace().any(|w| w == kv);
        check(
            has(&format!("rbps={bps}")),
            "config-linux.blockio.throttle-bps",
            format!("io.max {dev} rbps={bps}"),
            format!("io.max = {text:?}"),
        )?;
        check(
            has(&format!("wiops={iops}")),
            "config-linux.blockio.throttle-iops",
            format!("io.max {dev} wiops={iops}"),
            format!("io.max = {text:?}"),
        )
    } else {
        let r = read_cg(
            &dir,
            "blkio.throttle.read_bps_device",
            "config-linux.blockio.throttle-bps",
        )?;
        check(
            r.lines().any(|l| l.trim() == format!("{dev} {bps}")),
            "config-linux.blockio.throttle-bps",
            format!("blkio.throttle.read_bps_device \"{dev} {bps}\""),
            format!("{r:?}"),
        )?;
        let w = read_cg(
            &dir,
            "blkio.throttle.write_iops_device",
            "config-linux.blockio.throttle-iops",
        )?;
        check(
            w.lines().any(|l| l.trim() == format!("{dev} {iops}")),
            "config-linux.blockio.throttle-iops",
            format!("blkio.throttle.write_iops_device \"{dev} {iops}\""),
            format!("{w:?}"),
        )
    }
}

/// The smallest huge page size: its size in bytes and the name the cgroup
/// files use ("2MB", "1GB", "64KB").
fn huge_page_size() -> Option<(u64, String)> {
    let mut kbs: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()
        })
        .collect();
    kbs.sort_unstable();
    let kb = *kbs.first()?;
    let name = if kb % (1024 * 1024) == 0 {
        format!("{}GB", kb / (1024 * 1024))
    } else if kb % 1024 == 0 {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}KB")
    };
    Some((kb * 1024, name))
}

fn hugetlb_limit(ctx: &mut Ctx) -> CaseResult {
    let (size, name) = huge_page_size().ok_or_else(|| skip("no huge page sizes in /sys/kernel/mm/hugepages"))?;
    let limit = 4 * size;
    // On a hybrid host whose hugetlb controller lives only on the unified
    // hierarchy, a runtime that manages v1 cannot place the limit; refusing
    // the container is then what runtime.md asks ("if the runtime cannot
    // apply a property ... it MUST generate an error"). The sweep still
    // fails the case if the refusal leaves anything behind.
    let v2_only_in_hybrid =
        ctx.host().cgroup_mode == crate::host::CgroupMode::Hybrid && !ctx.host().cgroup_v1.contains_key("hugetlb");
    let dir = match dir_under(
        ctx,
        json!({"hugepageLimits": [{"pageSize": name, "limit": limit}]}),
        "hugetlb",
    ) {
        Ok(d) => d,
        Err(Verdict::Fail(f)) if v2_only_in_hybrid && f.observed.starts_with("create:") => {
            ctx.note(format!(
                "refused on a hybrid host with hugetlb on v2 only: {}",
                f.observed
            ));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    // The spec prefers reservation accounting (rsvd) and falls back to page
    // faults; either file holding the limit is a pass.
    let files: Vec<String> = if on_v2(ctx, "hugetlb") {
        vec![format!("hugetlb.{name}.rsvd.max"), format!("hugetlb.{name}.max")]
    } else {
        vec![
            format!("hugetlb.{name}.rsvd.limit_in_bytes"),
            format!("hugetlb.{name}.limit_in_bytes"),
        ]
    };
    let mut seen = Vec::new();
    for f in &files {
        if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
            if text.trim() == limit.to_string() {
                return Ok(());
            }
            seen.push(format!("{f} = {:?}", text.trim()));
        }
    }
    Err(fail(
        "config-linux.hugepages.limit",
        format!("{} = {limit}", files.join(" or ")),
        if seen.is_empty() {
            format!("no such file in {}", dir.display())
        } else {
            seen.join("; ")
        },
    ))
}

/// A character major with no driver on this host (local/experimental range
/// 240-254), so opening its nodes fails with ENXIO unless something else,
/// like the device cgroup, refuses first.
fn unused_char_major() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/devices").ok()?;
    let used: Vec<u64> = text
        .lines()
        .skip_while(|l| !l.starts_with("Character"))
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (240..=254).find(|m| !used.contains(m))
}

fn devices_allowlist(ctx: &mut Ctx) -> CaseResult {
    let h = ctx.host();
    ctx.require(
        h.cgroup_v1.contains_key("devices") || h.cgroup_mode == crate::host::CgroupMode::Unified,
        "a devices cgroup (v1 devices controller or v2 device filters)",
    )?;
    let major = unused_char_major().ok_or_else(|| skip("no free character major in 240-254"))?;
    // Two nodes of a driverless major: one allowed for reading only, one not
    // allowed at all. The runtime's default devices (/dev/null...) are
    // allowed by runtimes anyway; these are not among them.
    let mut cfg = ctx.spec_json();
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/harness-denied", "type": "c", "major": major, "minor": 77, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/harness-readonly", "type": "c", "major": major, "minor": 78, "fileMode": 438, "uid": 0, "gid": 0},
    ]);
    // In order: deny everything (type, major and minor unset = all), then
    // allow /dev/null fully and the read-only node for reading.
    cfg["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": major, "minor": 78, "access": "r"},
    ]});
    cfg["linux"]["cgroupsPath"] = json!(ctx.cgroup_path("dev"));
    let spec: Spec = serde_json::from_value(cfg).map_err(|e| fail("harness", "a config with devices", e))?;
    let r = ctx.report(&spec, &["/dev/harness-denied", "/dev/harness-readonly", "/dev/null"])?;
    let info = |p: &str| r.paths.get(p).cloned().unwrap_or_default();
    let denied = info("/dev/harness-denied");
    let readonly = info("/dev/harness-readonly");
    let null = info("/dev/null");
    check(
        denied.exists && readonly.exists,
        "config-linux.devices.create",
        "the configured device nodes to exist",
        format!(
            "harness-denied {:?}, harness-readonly {:?}",
            denied.stat_error, readonly.stat_error
        ),
    )?;
    // The deny-all rule (wildcards) keeps the unlisted node from opening.
    check_eq(
        "config-linux.device-cgroup.wildcards",
        "opening a device no rule allows",
        Some("EPERM"),
        denied.read_error.as_deref(),
    )?;
    // Reading the "r" node passes the cgroup and reaches the missing driver.
    check_eq(
        "config-linux.device-cgroup.order",
        "reading the node allowed \"r\" after deny-all (ENXIO: no driver)",
        Some("ENXIO"),
        readonly.read_error.as_deref(),
    )?;
    check_eq(
        "config-linux.device-cgroup.access",
        "writing the node allowed only \"r\"",
        Some("EPERM"),
        readonly.write_error.as_deref(),
    )?;
    check_eq(
        "config-linux.device-cgroup.access",
        "reading /dev/null (allowed rwm)",
        None,
        null.read_error.as_deref(),
    )?;
    check_eq(
        "config-linux.device-cgroup.access",
        "writing /dev/null (allowed rwm)",
        None,
        null.write_error.as_deref(),
    )
}

// ---------------------------------------------------------------------
// cgroupsPath
// ---------------------------------------------------------------------

/// The harness's (so the runtime's) own cgroup in the unified hierarchy.
fn own_v2_path() -> Option<String> {
    proc_cgroups(std::process::id() as i32)
        .into_iter()
        .find(|l| l.hierarchy == 0 && l.controllers.is_empty())
        .map(|l| l.path)
}

/// The lines of `pid`'s /proc/PID/cgroup for hierarchies the host mounts:
/// v1 controllers it knows, and the unified one when it is mounted.
///
/// On a hybrid host the unified hierarchy carries no controller the spec's
/// v1 resources need, so a runtime may leave the container where the
/// runtime itself is there (gVisor does; runc moves it): that line is then
/// left out. Anywhere else in it must still be the cgroupsPath.
fn mounted_lines(ctx: &Ctx, pid: i32) -> Vec<(String, CgLine)> {
    let h = ctx.host();
    let hybrid = h.cgroup_mode == crate::host::CgroupMode::Hybrid;
    let own_v2 = own_v2_path();
    proc_cgroups(pid)
        .into_iter()
        .filter_map(|l| {
            if l.hierarchy == 0 && l.controllers.is_empty() {
                if hybrid && own_v2.as_deref() == Some(l.path.as_str()) {
                    return None;
                }
                h.cgroup_v2.as_ref().map(|_| ("unified".to_string(), l))
            } else {
                let c = l.controllers.iter().find(|c| h.cgroup_v1.contains_key(*c))?.clone();
                Some((c, l))
            }
        })
        .collect()
}

/// The host directory of `line`'s cgroup in hierarchy `name`.
fn line_dir(ctx: &Ctx, name: &str, path: &str) -> Option<PathBuf> {
    let h = ctx.host();
    if name == "unified" {
        h.cgroup_v2.as_ref().map(|r| r.join(path.trim_start_matches('/')))
    } else {
        h.cgroup_v1.get(name).map(|r| r.join(path.trim_start_matches('/')))
    }
}

/// Every mounted hierarchy places the container where `ok` says, and the
/// directory is there on the host.
fn check_placement(
    ctx: &mut Ctx,
    cgroups_path: &str,
    clause: &str,
    expected: &str,
    ok: impl Fn(&str) -> bool,
) -> CaseResult {
    let spec = spec_at(ctx, json!({"pids": {"limit": 100}}), cgroups_path)?;
    let spec = if ctx.host().has_controller("pids") {
        spec
    } else {
        spec_at(ctx, json!({}), cgroups_path)?
    };
    let (_c, pid) = running(ctx, spec)?;
    let lines = mounted_lines(ctx, pid);
    check(
        !lines.is_empty(),
        clause,
        "the container in the host's cgroup hierarchies",
        format!("{:?}", proc_cgroups(pid)),
    )?;
    let wrong: Vec<String> = lines
        .iter()
        .filter(|(_, l)| !ok(&l.path))
        .map(|(n, l)| format!("{n}:{}", l.path))
        .collect();
    check(wrong.is_empty(), clause, expected, format!("{wrong:?}"))?;
    let missing: Vec<String> = lines
        .iter()
        .filter_map(|(n, l)| line_dir(ctx, n, &l.path))
        .filter(|d| !d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    check(
        missing.is_empty(),
        "config-linux.cgroups-path.create",
        "the container's cgroup directories on the host",
        format!("missing {missing:?}"),
    )
}

fn path_absolute(ctx: &mut Ctx) -> CaseResult {
    let cg = ctx.cgroup_path("abs");
    let want = cg.clone();
    check_placement(
        ctx,
        &cg,
        "config-linux.cgroups-path.absolute",
        &format!("{want} in every hierarchy"),
        |p| p == want,
    )
}

fn path_relative(ctx: &mut Ctx) -> CaseResult {
    // A relative path's base is the runtime's choice (MAY); what holds for
    // any base is that the container's cgroup ends with the given path.
    let cg = ctx.cgroup_path("rel");
    let rel = cg.trim_start_matches('/').to_string();
    let suffix = format!("/{rel}");
    check_placement(
        ctx,
        &rel,
        "config-linux.cgroups-path.relative",
        &format!("a path ending in {suffix} in every hierarchy"),
        |p| p.ends_with(&suffix),
    )
}

fn removed_on_delete(ctx: &mut Ctx) -> CaseResult {
    let cg = ctx.cgroup_path("del");
    let resources = if ctx.host().has_controller("pids") {
        json!({"pids": {"limit": 100}})
    } else {
        json!({})
    };
    let mut spec = spec_at(ctx, resources, &cg)?;
    spec.set_args(&["/probe", "true"]);
    let c = ctx.create_spec(&spec)?;
    // What the runtime made for the container, seen while it exists.
    let h = ctx.host();
    let mut made: Vec<PathBuf> = h
        .cgroup_v1
        .values()
        .chain(h.cgroup_v2.iter())
        .map(|r| r.join(cg.trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .collect();
    made.sort();
    made.dedup();
    check(
        !made.is_empty(),
        "config-linux.cgroups-path.create",
        format!("cgroup directories for {cg} after create"),
        "none in any hierarchy",
    )?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    ctx.wait_status(&c.id, "stopped")?;
    let out = ctx.delete(&c.id, false)?;
    check(
        out.status.success(),
        "runtime.delete.remove-resources",
        "delete of the stopped container to succeed",
        format!("delete: {}: {}", out.status, out.reason()),
    )?;
    let left: Vec<String> = made
        .iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    check(
        left.is_empty(),
        "runtime.delete.remove-resources",
        "the container's cgroups removed by delete",
        format!("still there: {left:?}"),
    )
}
