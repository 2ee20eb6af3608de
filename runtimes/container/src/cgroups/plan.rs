//! `linux.resources` -> the list of file writes for this host's layout.
//! Validation and planning happen together and before any write, so an
//! invalid or unsupported value fails the whole `apply` with nothing changed.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxResources,
};

use super::{Error, Hierarchy, Manager, Result};

/// One write `apply` will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    /// The spec field the value comes from, for error messages.
    pub field: String,
    pub path: PathBuf,
    pub value: String,
    /// Deprecated knobs (v1 kernel memory): a kernel that refuses them with
    /// EOPNOTSUPP/ENOTSUPP/EINVAL is not an error, since the spec marks them
    /// NOT RECOMMENDED and newer kernels no longer implement them.
    pub best_effort: bool,
}

/// A validated device-cgroup rule (config-linux.md, "Allowed Device list").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a`, `b` or `c`.
    pub typ: char,
    /// `None` means any (`*`).
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// A non-empty subset of `rwm`, in that order.
    pub access: String,
}

impl DeviceRule {
    /// The line for v1 `devices.allow` / `devices.deny`. Type `a` is written
    /// alone: the kernel reads `a` as "every device, every access".
    pub fn v1_line(&self) -> String {
        if self.typ == 'a' {
            return "a".to_string();
        }
        let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        format!("{} {}:{} {}", self.typ, num(self.major), num(self.minor), self.access)
    }
}

/// Validates `linux.resources.devices` in order. On v1 the result is what
/// `apply` writes; on v2 it is what an eBPF device program must enforce
/// (this module loads none; see [`Error::DevicesNeedBpf`]).
pub fn device_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = |n: &str| format!("linux.resources.devices[{i}].{n}");
            let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => 'a',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::C => 'c',
                other => {
                    return Err(Error::Invalid {
                        field: field("type"),
                        value: format!("{:?}", other.as_str()),
                        reason: "the device cgroup knows only \"a\", \"b\" and \"c\"".to_string(),
                    })
                }
            };
            for (name, n) in [("major", r.major()), ("minor", r.minor())] {
                if let Some(n) = n {
                    if n < 0 {
                        return Err(Error::Invalid {
                            field: field(name),
                            value: n.to_string(),
                            reason: "must not be negative; omit it to mean any".to_string(),
                        });
                    }
                }
            }
            let given = r.access().clone().unwrap_or_else(|| "rwm".to_string());
            if given.is_empty() || !given.chars().all(|c| "rwm".contains(c)) {
                return Err(Error::Invalid {
                    field: field("access"),
                    value: format!("{given:?}"),
                    reason: "must be a non-empty combination of r, w and m".to_string(),
                });
            }
            let access: String = "rwm".chars().filter(|c| given.contains(*c)).collect();
            Ok(DeviceRule {
                allow: r.allow(),
                typ,
                major: r.major(),
                minor: r.minor(),
                access,
            })
        })
        .collect()
}

/// cgroup v1 `cpu.shares` -> v2 `cpu.weight`, the mapping the OCI
/// cgroup-v2 conversion uses: shares range [2, 262144] maps linearly onto
/// weight range [1, 10000]. Out-of-range shares are clamped first, as the v1
/// kernel itself clamps them; 0 (unset) stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// v1 blkio weight [10, 1000] -> v2 io.weight [1, 10000].
fn blkio_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w).clamp(10, 1000);
    1 + ((w - 10) * 9999) / 990
}

fn max_or(v: i64) -> String {
    if v == -1 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn invalid(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn unsupported(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `0-3,7`: comma-separated numbers and ascending ranges (cpuset syntax).
fn validate_list(field: &str, s: &str) -> Result<()> {
    let num = |x: &str| -> Option<u32> {
        if x.is_empty() || !x.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            x.parse().ok()
        }
    };
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {}
            (Some(_), Some(_)) => {
                return Err(invalid(
                    field,
                    format!("{s:?}"),
                    format!("range {part:?} is descending"),
                ))
            }
            _ => {
                return Err(invalid(
                    field,
                    format!("{s:?}"),
                    "must be comma-separated numbers or ranges like 0-3,7",
                ))
            }
        }
    }
    Ok(())
}

/// `2MB`, `64KB`, `1GB`: digits, a binary unit prefix, `B`.
fn valid_page_size(s: &str) -> bool {
    let Some(rest) = s.strip_suffix('B') else {
        return false;
    };
    let Some(digits) = rest.strip_suffix(['K', 'M', 'G', 'T']) else {
        return false;
    };
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) && !digits.starts_with('0')
}

fn read_trim(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

pub(super) struct Planner<'a> {
    m: &'a Manager,
    skip_v2_devices: bool,
    out: Vec<PlannedWrite>,
}

impl<'a> Planner<'a> {
    pub(super) fn new(m: &'a Manager, skip_v2_devices: bool) -> Self {
        Planner {
            m,
            skip_v2_devices,
            out: Vec::new(),
        }
    }

    pub(super) fn plan(mut self, r: &LinuxResources) -> Result<Vec<PlannedWrite>> {
        if let Some(mem) = r.memory() {
            self.memory(mem)?;
        }
        if let Some(cpu) = r.cpu() {
            self.cpu(cpu)?;
        }
        if let Some(pids) = r.pids() {
            let limit = pids.limit();
            let field = "linux.resources.pids.limit";
            if limit < -1 {
                return Err(invalid(
                    field,
                    limit,
                    "must be -1 (unlimited) or a number of tasks (0 is a real limit)",
                ));
            }
            let h = self.need("pids", field)?;
            self.push(h, "pids.max", field, max_or(limit))?;
        }
        if let Some(b) = r.block_io() {
            self.block_io(b)?;
        }
        if let Some(hp) = r.hugepage_limits() {
            self.hugepages(hp)?;
        }
        if let Some(net) = r.network() {
            self.network(net)?;
        }
        if let Some(rdma) = r.rdma() {
            let mut devs: Vec<_> = rdma.iter().collect();
            devs.sort_by(|a, b| a.0.cmp(b.0));
            for (dev, lim) in devs {
                let field = format!("linux.resources.rdma[{dev:?}]");
                if dev.is_empty() || dev.contains(char::is_whitespace) {
                    return Err(invalid(
                        field,
                        format!("{dev:?}"),
                        "device name must be non-empty without spaces",
                    ));
                }
                let mut line = dev.clone();
                if let Some(h) = lim.hca_handles() {
                    line.push_str(&format!(" hca_handle={h}"));
                }
                if let Some(o) = lim.hca_objects() {
                    line.push_str(&format!(" hca_object={o}"));
                }
                if lim.hca_handles().is_none() && lim.hca_objects().is_none() {
                    return Err(invalid(
                        field,
                        "{}",
                        "at least one of hcaHandles and hcaObjects is required",
                    ));
                }
                let h = self.need("rdma", &field)?;
                self.push(h, "rdma.max", field, line)?;
            }
        }
        if let Some(devices) = r.devices() {
            self.devices(devices)?;
        }
        if let Some(unified) = r.unified() {
            self.unified(unified)?;
        }
        Ok(self.out)
    }

    fn need(&self, controller: &str, field: &str) -> Result<&'a Hierarchy> {
        self.m.hierarchy_for(controller).ok_or_else(|| Error::Unavailable {
            field: field.to_string(),
            controller: controller.to_string(),
            detail: self.m.layout.summary(),
        })
    }

    /// Queues a write after checking the file exists: a missing file means
    /// the kernel lacks the feature (or, on v2, the controller is not enabled
    /// by the parent), which must fail before anything is written.
    fn push(&mut self, h: &Hierarchy, file: &str, field: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let path = h.dir.join(file);
        let (field, value) = (field.into(), value.into());
        if !path.exists() {
            let hint = if !h.dir.exists() {
                "the cgroup was not created".to_string()
            } else if file.starts_with("memory.memsw.") {
                "swap accounting is off in this kernel; boot with swapaccount=1".to_string()
            } else if h.v2 {
                format!(
                    "the controller may not be enabled in {}/cgroup.subtree_control",
                    parent_of(&h.dir)
                )
            } else {
                "this kernel does not provide it".to_string()
            };
            return Err(Error::Missing {
                field,
                value,
                path,
                hint,
            });
        }
        self.out.push(PlannedWrite {
            field,
            path,
            value,
            best_effort: false,
        });
        Ok(())
    }

    fn memory(&mut self, mem: &LinuxMemory) -> Result<()> {
        let f = |n: &str| format!("linux.resources.memory.{n}");
        let amounts = [
            ("limit", mem.limit()),
            ("reservation", mem.reservation()),
            ("swap", mem.swap()),
            ("kernel", mem.kernel()),
            ("kernelTCP", mem.kernel_tcp()),
        ];
        for (name, v) in amounts {
            if let Some(v) = v {
                if v < -1 {
                    return Err(invalid(f(name), v, "must be -1 (unlimited) or a number of bytes"));
                }
            }
        }
        if let Some(s) = mem.swappiness() {
            if s > 100 {
                return Err(invalid(f("swappiness"), s, "must be between 0 and 100"));
            }
        }
        if let (Some(swap), Some(limit)) = (mem.swap(), mem.limit()) {
            if swap != -1 && (limit == -1 || swap < limit) {
                return Err(invalid(
                    f("swap"),
                    swap,
                    format!("is below memory.limit {limit}; swap limits memory+swap, so it must be -1 or at least the limit"),
                ));
            }
        }
        let any = amounts.iter().any(|(_, v)| v.is_some())
            || mem.swappiness().is_some()
            || mem.disable_oom_killer().is_some()
            || mem.use_hierarchy().is_some();
        if !any {
            return Ok(());
        }
        let h = self.need("memory", "linux.resources.memory")?;
        if h.v2 {
            return self.memory_v2(mem, h);
        }
        // memsw must stay >= limit at every step: raising the limit above the
        // current memsw needs memsw written first, lowering needs limit first.
        match (mem.limit(), mem.swap()) {
            (Some(l), Some(s)) => {
                let cur_memsw =
                    read_trim(&h.dir.join("memory.memsw.limit_in_bytes")).and_then(|v| v.parse::<u64>().ok());
                let l_eff = if l == -1 { u64::MAX } else { l as u64 };
                if cur_memsw.is_some_and(|c| l_eff > c) {
                    self.push(h, "memory.memsw.limit_in_bytes", f("swap"), s.to_string())?;
                    self.push(h, "memory.limit_in_bytes", f("limit"), l.to_string())?;
                } else {
                    self.push(h, "memory.limit_in_bytes", f("limit"), l.to_string())?;
                    self.push(h, "memory.memsw.limit_in_bytes", f("swap"), s.to_string())?;
                }
            }
            (Some(l), None) => self.push(h, "memory.limit_in_bytes", f("limit"), l.to_string())?,
            (None, Some(s)) => self.push(h, "memory.memsw.limit_in_bytes", f("swap"), s.to_string())?,
            (None, None) => {}
        }
        if let Some(v) = mem.reservation() {
            self.push(h, "memory.soft_limit_in_bytes", f("reservation"), v.to_string())?;
        }
        for (name, file, v) in [
            ("kernel", "memory.kmem.limit_in_bytes", mem.kernel()),
            ("kernelTCP", "memory.kmem.tcp.limit_in_bytes", mem.kernel_tcp()),
        ] {
            // NOT RECOMMENDED in the spec and gone from new kernels: written
            // where the file exists, otherwise skipped.
            if let Some(v) = v {
                let path = h.dir.join(file);
                if path.exists() {
                    self.out.push(PlannedWrite {
                        field: f(name),
                        path,
                        value: v.to_string(),
                        best_effort: true,
                    });
                }
            }
        }
        if let Some(v) = mem.swappiness() {
            self.push(h, "memory.swappiness", f("swappiness"), v.to_string())?;
        }
        if let Some(v) = mem.disable_oom_killer() {
            self.push(h, "memory.oom_control", f("disableOOMKiller"), u8::from(v).to_string())?;
        }
        if let Some(v) = mem.use_hierarchy() {
            self.push(h, "memory.use_hierarchy", f("useHierarchy"), u8::from(v).to_string())?;
        }
        Ok(())
    }

    fn memory_v2(&mut self, mem: &LinuxMemory, h: &Hierarchy) -> Result<()> {
        let f = |n: &str| format!("linux.resources.memory.{n}");
        if let (Some(true), Some(l)) = (mem.check_before_update(), mem.limit()) {
            // v1 kernels refuse a limit below usage; v2 would OOM-kill
            // instead, so checkBeforeUpdate asks us to refuse it here.
            let current = read_trim(&h.dir.join("memory.current")).and_then(|v| v.parse::<i64>().ok());
            if let Some(cur) = current {
                if l >= 0 && l < cur {
                    return Err(invalid(
                        f("limit"),
                        l,
                        format!("is below the current usage {cur} (checkBeforeUpdate)"),
                    ));
                }
            }
        }
        if let Some(l) = mem.limit() {
            self.push(h, "memory.max", f("limit"), max_or(l))?;
        }
        match (mem.swap(), mem.limit()) {
            (None, _) => {}
            (Some(-1), _) => self.push(h, "memory.swap.max", f("swap"), "max")?,
            // The spec's swap is memory+swap; v2 limits swap alone.
            (Some(s), Some(l)) if l >= 0 => self.push(h, "memory.swap.max", f("swap"), (s - l).to_string())?,
            (Some(s), _) => {
                return Err(unsupported(
                    f("swap"),
                    s,
                    "cgroup v2 limits swap alone (memory.swap.max = swap - limit), which needs a finite memory.limit",
                ))
            }
        }
        if let Some(v) = mem.reservation() {
            self.push(h, "memory.low", f("reservation"), max_or(v))?;
        }
        // kernel, kernelTCP, swappiness, disableOOMKiller and useHierarchy
        // have no cgroup v2 files; they are v1 tuning and ignored here.
        Ok(())
    }

    fn cpu(&mut self, cpu: &LinuxCpu) -> Result<()> {
        let f = |n: &str| format!("linux.resources.cpu.{n}");
        if let Some(q) = cpu.quota() {
            if q != -1 && q < 1000 {
                return Err(invalid(
                    f("quota"),
                    q,
                    "must be -1 (unlimited) or at least 1000 microseconds",
                ));
            }
        }
        if let Some(p) = cpu.period() {
            if !(1000..=1_000_000).contains(&p) {
                return Err(invalid(f("period"), p, "must be between 1000 and 1000000 microseconds"));
            }
        }
        if let (Some(b), Some(q)) = (cpu.burst(), cpu.quota()) {
            if q > 0 && b > q as u64 {
                return Err(invalid(f("burst"), b, format!("must not exceed quota {q}")));
            }
        }
        if let Some(rt) = cpu.realtime_runtime() {
            if rt < -1 {
                return Err(invalid(
                    f("realtimeRuntime"),
                    rt,
                    "must be -1 or a number of microseconds",
                ));
            }
            if let Some(p) = cpu.realtime_period() {
                if rt > 0 && rt as u64 > p {
                    return Err(invalid(f("realtimeRuntime"), rt, format!("exceeds realtimePeriod {p}")));
                }
            }
        }
        if let Some(i) = cpu.idle() {
            if i != 0 && i != 1 {
                return Err(invalid(f("idle"), i, "must be 0 or 1"));
            }
        }
        for (name, v) in [("cpus", cpu.cpus()), ("mems", cpu.mems())] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                validate_list(&f(name), v)?;
            }
        }
        let shares = cpu.shares().filter(|s| *s != 0);
        let needs_cpu = shares.is_some()
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.burst().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.realtime_period().is_some()
            || cpu.idle().is_some();
        if needs_cpu {
            let h = self.need("cpu", "linux.resources.cpu")?;
            if h.v2 {
                for (name, set) in [
                    ("realtimeRuntime", cpu.realtime_runtime().map(|v| v.to_string())),
                    ("realtimePeriod", cpu.realtime_period().map(|v| v.to_string())),
                ] {
                    if let Some(v) = set {
                        return Err(unsupported(f(name), v, "cgroup v2 has no realtime scheduler limits"));
                    }
                }
                if let Some(s) = shares {
                    self.push(h, "cpu.weight", f("shares"), shares_to_weight(s).to_string())?;
                }
                if cpu.quota().is_some() || cpu.period().is_some() {
                    let quota = match cpu.quota() {
                        Some(q) => max_or(q),
                        // Only the period changes: keep the current quota.
                        None => read_trim(&h.dir.join("cpu.max"))
                            .and_then(|v| v.split_whitespace().next().map(str::to_string))
                            .unwrap_or_else(|| "max".to_string()),
                    };
                    let (field, value) = match cpu.period() {
                        Some(p) => (
                            if cpu.quota().is_some() { f("quota") } else { f("period") },
                            format!("{quota} {p}"),
                        ),
                        // A lone quota keeps the kernel's current period.
                        None => (f("quota"), quota),
                    };
                    self.push(h, "cpu.max", field, value)?;
                }
                if let Some(b) = cpu.burst() {
                    self.push(h, "cpu.max.burst", f("burst"), b.to_string())?;
                }
            } else {
                if let Some(s) = shares {
                    self.push(h, "cpu.shares", f("shares"), s.to_string())?;
                }
                if let Some(p) = cpu.period() {
                    self.push(h, "cpu.cfs_period_us", f("period"), p.to_string())?;
                }
                if let Some(q) = cpu.quota() {
                    self.push(h, "cpu.cfs_quota_us", f("quota"), q.to_string())?;
                }
                if let Some(b) = cpu.burst() {
                    self.push(h, "cpu.cfs_burst_us", f("burst"), b.to_string())?;
                }
                if let Some(p) = cpu.realtime_period() {
                    self.push(h, "cpu.rt_period_us", f("realtimePeriod"), p.to_string())?;
                }
                if let Some(r) = cpu.realtime_runtime() {
                    self.push(h, "cpu.rt_runtime_us", f("realtimeRuntime"), r.to_string())?;
                }
            }
            if let Some(i) = cpu.idle() {
                self.push(h, "cpu.idle", f("idle"), i.to_string())?;
            }
        }
        for (name, file, v) in [("cpus", "cpuset.cpus", cpu.cpus()), ("mems", "cpuset.mems", cpu.mems())] {
            // An empty list means "not set": inherit the parent's.
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                let h = self.need("cpuset", &f(name))?;
                self.push(h, file, f(name), v)?;
            }
        }
        Ok(())
    }

    fn block_io(&mut self, b: &LinuxBlockIo) -> Result<()> {
        let f = |n: &str| format!("linux.resources.blockIO.{n}");
        // 0 means unset, as in the v1 kernel interface's default.
        let weight = b.weight().filter(|w| *w != 0);
        let leaf = b.leaf_weight().filter(|w| *w != 0);
        for (name, w) in [("weight", weight), ("leafWeight", leaf)] {
            if let Some(w) = w {
                if !(10..=1000).contains(&w) {
                    return Err(invalid(f(name), w, "must be between 10 and 1000"));
                }
            }
        }
        let wdevs = b.weight_device().clone().unwrap_or_default();
        for (i, d) in wdevs.iter().enumerate() {
            let field = f(&format!("weightDevice[{i}]"));
            if d.major() < 0 || d.minor() < 0 {
                return Err(invalid(
                    field,
                    format!("{}:{}", d.major(), d.minor()),
                    "device numbers must not be negative",
                ));
            }
            if d.weight().is_none() && d.leaf_weight().is_none() {
                return Err(invalid(
                    field,
                    format!("{}:{}", d.major(), d.minor()),
                    "needs weight or leafWeight",
                ));
            }
            for (name, w) in [("weight", d.weight()), ("leafWeight", d.leaf_weight())] {
                if let Some(w) = w {
                    if !(10..=1000).contains(&w) {
                        return Err(invalid(format!("{field}.{name}"), w, "must be between 10 and 1000"));
                    }
                }
            }
        }
        let throttles = [
            (
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                "rbps",
                b.throttle_read_bps_device(),
            ),
            (
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                "wbps",
                b.throttle_write_bps_device(),
            ),
            (
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                "riops",
                b.throttle_read_iops_device(),
            ),
            (
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                "wiops",
                b.throttle_write_iops_device(),
            ),
        ];
        for (name, _, _, list) in &throttles {
            for (i, d) in list.iter().flatten().enumerate() {
                if d.major() < 0 || d.minor() < 0 {
                    return Err(invalid(
                        f(&format!("{name}[{i}]")),
                        format!("{}:{}", d.major(), d.minor()),
                        "device numbers must not be negative",
                    ));
                }
            }
        }
        let any = weight.is_some()
            || leaf.is_some()
            || !wdevs.is_empty()
            || throttles
                .iter()
                .any(|(_, _, _, l)| l.as_ref().is_some_and(|l| !l.is_empty()));
        if !any {
            return Ok(());
        }
        let h = match self.m.hierarchy_for("blkio").filter(|h| !h.v2) {
            Some(h) => h,
            None => self.need("io", "linux.resources.blockIO")?,
        };
        if h.v2 {
            if let Some(w) = leaf {
                return Err(unsupported(f("leafWeight"), w, "cgroup v2 has no leaf weight"));
            }
            if let Some((i, d)) = wdevs.iter().enumerate().find(|(_, d)| d.leaf_weight().is_some()) {
                return Err(unsupported(
                    f(&format!("weightDevice[{i}].leafWeight")),
                    d.leaf_weight().unwrap_or_default(),
                    "cgroup v2 has no leaf weight",
                ));
            }
            // With bfq active io.bfq.weight takes v1's 1..1000 scale;
            // otherwise io.weight takes 1..10000 and the value is converted.
            let bfq = h.dir.join("io.bfq.weight").exists();
            let (file, conv): (&str, fn(u16) -> u64) = if bfq {
                ("io.bfq.weight", u64::from)
            } else {
                ("io.weight", blkio_to_io_weight)
            };
            if let Some(w) = weight {
                self.push(h, file, f("weight"), format!("default {}", conv(w)))?;
            }
            for (i, d) in wdevs.iter().enumerate() {
                if let Some(w) = d.weight() {
                    let value = format!("{}:{} {}", d.major(), d.minor(), conv(w));
                    self.push(h, file, f(&format!("weightDevice[{i}].weight")), value)?;
                }
            }
            // io.max takes one line per device with every limit on it.
            let mut lines: Vec<((i64, i64), String, Vec<String>)> = Vec::new();
            for (name, _, key, list) in &throttles {
                for d in list.iter().flatten() {
                    let rate = if d.rate() == 0 {
                        "max".to_string()
                    } else {
                        d.rate().to_string()
                    };
                    let dev = (d.major(), d.minor());
                    let item = format!("{key}={rate}");
                    match lines.iter_mut().find(|(k, _, _)| *k == dev) {
                        Some((_, _, items)) => items.push(item),
                        None => lines.push((dev, f(name), vec![item])),
                    }
                }
            }
            for ((maj, min), field, items) in lines {
                self.push(h, "io.max", field, format!("{maj}:{min} {}", items.join(" ")))?;
            }
            return Ok(());
        }
        // v1: CFQ's blkio.weight, or bfq's blkio.bfq.weight (same scale).
        let (wfile, wdfile) = if h.dir.join("blkio.weight").exists() || !h.dir.join("blkio.bfq.weight").exists() {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if let Some(w) = weight {
            if !h.dir.join(wfile).exists() {
                return Err(Error::Missing {
                    field: f("weight"),
                    value: w.to_string(),
                    path: h.dir.join(wfile),
                    hint:
                        "neither blkio.weight nor blkio.bfq.weight exists: no proportional io scheduler (cfq or bfq) \
                           is active"
                            .to_string(),
                });
            }
            self.push(h, wfile, f("weight"), w.to_string())?;
        }
        if let Some(w) = leaf {
            self.push(h, "blkio.leaf_weight", f("leafWeight"), w.to_string())?;
        }
        for (i, d) in wdevs.iter().enumerate() {
            if let Some(w) = d.weight() {
                let field = f(&format!("weightDevice[{i}].weight"));
                self.push(h, wdfile, field, format!("{}:{} {w}", d.major(), d.minor()))?;
            }
            if let Some(w) = d.leaf_weight() {
                let field = f(&format!("weightDevice[{i}].leafWeight"));
                self.push(
                    h,
                    "blkio.leaf_weight_device",
                    field,
                    format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
        }
        for (name, file, _, list) in &throttles {
            for (i, d) in list.iter().flatten().enumerate() {
                let value = format!("{}:{} {}", d.major(), d.minor(), d.rate());
                self.push(h, file, f(&format!("{name}[{i}]")), value)?;
            }
        }
        Ok(())
    }

    fn hugepages(&mut self, list: &[LinuxHugepageLimit]) -> Result<()> {
        for (i, hp) in list.iter().enumerate() {
            let f = |n: &str| format!("linux.resources.hugepageLimits[{i}].{n}");
            if !valid_page_size(hp.page_size()) {
                return Err(invalid(
                    f("pageSize"),
                    format!("{:?}", hp.page_size()),
                    "must look like 64KB, 2MB or 1GB",
                ));
            }
            if hp.limit() < 0 {
                return Err(invalid(f("limit"), hp.limit(), "must not be negative"));
            }
        }
        for (i, hp) in list.iter().enumerate() {
            let field = format!("linux.resources.hugepageLimits[{i}].limit");
            let size = hp.page_size();
            let h = self.need("hugetlb", &field)?;
            let (limit_file, rsvd_file) = if h.v2 {
                (format!("hugetlb.{size}.max"), format!("hugetlb.{size}.rsvd.max"))
            } else {
                (
                    format!("hugetlb.{size}.limit_in_bytes"),
                    format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                )
            };
            if h.dir.exists() && !h.dir.join(&limit_file).exists() && !h.v2 {
                return Err(invalid(
                    format!("linux.resources.hugepageLimits[{i}].pageSize"),
                    format!("{size:?}"),
                    "this kernel has no huge pages of that size",
                ));
            }
            // Page-fault accounting always; reservation accounting too where
            // the kernel has it, which the spec prefers.
            self.push(h, &limit_file, field.clone(), hp.limit().to_string())?;
            if h.dir.join(&rsvd_file).exists() {
                self.push(h, &rsvd_file, field, hp.limit().to_string())?;
            }
        }
        Ok(())
    }

    fn network(&mut self, net: &LinuxNetwork) -> Result<()> {
        const F: &str = "linux.resources.network";
        for (i, p) in net.priorities().iter().flatten().enumerate() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(invalid(
                    format!("{F}.priorities[{i}].name"),
                    format!("{:?}", p.name()),
                    "must be an interface name without spaces",
                ));
            }
        }
        if let Some(id) = net.class_id() {
            let field = format!("{F}.classID");
            let h = self.need("net_cls", &field)?;
            self.push(h, "net_cls.classid", field, id.to_string())?;
        }
        for (i, p) in net.priorities().iter().flatten().enumerate() {
            let field = format!("{F}.priorities[{i}]");
            let h = self.need("net_prio", &field)?;
            self.push(h, "net_prio.ifpriomap", field, format!("{} {}", p.name(), p.priority()))?;
        }
        Ok(())
    }

    /// v1: deny everything, then each rule in the listed order (the spec's
    /// MUST), allow rules to devices.allow and deny rules to devices.deny.
    /// Starting from deny-all makes the result depend only on the list, not
    /// on what the parent allowed.
    fn devices(&mut self, rules: &[LinuxDeviceCgroup]) -> Result<()> {
        let parsed = device_rules(rules)?;
        if parsed.is_empty() {
            return Ok(());
        }
        match self.m.hierarchy_for("devices").filter(|h| !h.v2) {
            Some(h) => {
                self.push(h, "devices.deny", "linux.resources.devices", "a")?;
                for (i, r) in parsed.iter().enumerate() {
                    let file = if r.allow { "devices.allow" } else { "devices.deny" };
                    self.push(h, file, format!("linux.resources.devices[{i}]"), r.v1_line())?;
                }
                Ok(())
            }
            None if self.m.unified().is_some() => {
                if self.skip_v2_devices {
                    Ok(())
                } else {
                    Err(Error::DevicesNeedBpf { count: parsed.len() })
                }
            }
            None => Err(Error::Unavailable {
                field: "linux.resources.devices".to_string(),
                controller: "devices".to_string(),
                detail: self.m.layout.summary(),
            }),
        }
    }

    /// Each key names a file of the unified hierarchy; the part before the
    /// first dot is its controller, which must be available there (`cgroup.`
    /// keys are core files). Keys are written in sorted order, last of all,
    /// so they override the structured fields as the spec intends.
    fn unified(&mut self, map: &std::collections::HashMap<String, String>) -> Result<()> {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            let value = &map[key];
            let field = format!("linux.resources.unified[{key:?}]");
            if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
                return Err(invalid(
                    field,
                    format!("{value:?}"),
                    "the key must be a file name like memory.high",
                ));
            }
            let Some(u) = self.m.unified() else {
                return Err(unsupported(
                    field,
                    format!("{value:?}"),
                    "this host has no cgroup v2 hierarchy (v1 only), and conversion to v1 is not implemented",
                ));
            };
            let controller = key.split('.').next().unwrap_or_default();
            if controller != "cgroup" {
                if self
                    .m
                    .hierarchies
                    .iter()
                    .any(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
                {
                    return Err(unsupported(
                        field,
                        format!("{value:?}"),
                        format!(
                            "the {controller} controller is bound to cgroup v1 on this host, and conversion to v1 is \
                             not implemented"
                        ),
                    ));
                }
                if !u.controllers.iter().any(|c| c == controller) {
                    return Err(Error::Unavailable {
                        field,
                        controller: controller.to_string(),
                        detail: self.m.layout.summary(),
                    });
                }
            }
            self.push(u, key, field, value.clone())?;
        }
        Ok(())
    }
}

fn parent_of(dir: &Path) -> String {
    dir.parent().map(|p| p.display().to_string()).unwrap_or_default()
}
