//! What a config promises about the container's process, as checks on the
//! probe's report (and on the few things seen from the host: the hooks'
//! record, the container's cgroup files). `expectations` is a pure function
//! of the config JSON, each expectation citing the clause it follows from.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::gen::CAP_POOL;

/// What was seen of one container run.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub report: probe::Report,
    /// Labels of the hooks that ran, in order.
    pub hooks: Vec<String>,
    /// Cgroup files of the container seen from the host between create and
    /// start, as `controller/file` to content.
    pub cgroup: BTreeMap<String, String>,
    /// The harness's own namespace inodes, by the probe's names.
    pub host_ns: BTreeMap<String, u64>,
}

/// One checkable promise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    pub clause: &'static str,
    /// A stable name of what is checked (`process.user.uid`, `mount /fuzz/tmp0`).
    pub what: String,
    pub expected: Value,
    #[serde(skip)]
    pub check: Check,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Uid,
    Gid,
    Groups,
    Cap(&'static str),
    Rlimit(String),
    Hostname,
    Domainname,
    EnvHas(String),
    Cwd,
    Umask,
    NoNewPrivs,
    OomScoreAdj,
    /// Mount at this destination with fs type and these per-mount flags.
    Mount {
        dest: String,
        fs_type: Option<String>,
        flags: Vec<String>,
    },
    /// statvfs says read-only (`true`) or not.
    ReadOnlyFs(String),
    PathMode(String),
    Masked(String),
    ReadOnlyPath(String),
    Device(String),
    Sysctl(String),
    NsNew(String),
    NsShared(String),
    Cgroup(String),
    SeccompFilter,
    /// getppid fails (the seccomp rule's errno).
    PpidDenied,
    Hooks,
}

fn cap_mask(v: &Value) -> u64 {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|n| CAP_POOL.iter().find(|(c, _)| *c == n).map(|(_, b)| 1u64 << b))
        .fold(0, |a, b| a | b)
}

/// The kernel's capability sets after the probe's execve (capabilities(7)):
/// the file has no capabilities and is not set-id, so for uid 0 it is
/// treated as fully capable (P' = I | B | A, E' = P'), otherwise P' = E' = A.
/// With no_new_privs, root gains nothing it did not have (P' &= P).
pub fn caps_after_exec(c: &Value) -> BTreeMap<&'static str, u64> {
    let caps = &c["process"]["capabilities"];
    let b = cap_mask(&caps["bounding"]);
    let p = cap_mask(&caps["permitted"]);
    let i = cap_mask(&caps["inheritable"]);
    let a = cap_mask(&caps["ambient"]) & p & i;
    let root = c["process"]["user"]["uid"].as_u64() == Some(0);
    let nnp = c["process"]["noNewPrivileges"].as_bool() == Some(true);
    let perm = if root {
        let full = i | b | a;
        if nnp && full & !p != 0 {
            full & p
        } else {
            full
        }
    } else {
        a
    };
    BTreeMap::from([
        ("bounding", b),
        ("permitted", perm),
        ("effective", perm),
        ("inheritable", i),
        ("ambient", a),
    ])
}

fn e(clause: &'static str, what: impl Into<String>, expected: Value, check: Check) -> Expectation {
    Expectation {
        clause,
        what: what.into(),
        expected,
        check,
    }
}

const NS_NAMES: &[(&str, &str, &str)] = &[
    ("pid", "pid", "config-linux.namespaces.pid"),
    ("network", "net", "config-linux.namespaces.network"),
    ("ipc", "ipc", "config-linux.namespaces.ipc"),
    ("uts", "uts", "config-linux.namespaces.uts"),
    ("cgroup", "cgroup", "config-linux.namespaces.cgroup"),
    ("mount", "mnt", "config-linux.namespaces.mount"),
];

/// Every expectation `config` implies.
pub fn expectations(c: &Value) -> Vec<Expectation> {
    let mut out = Vec::new();
    let p = &c["process"];
    let user = &p["user"];
    out.push(e(
        "config.process.user-uid",
        "process.user.uid",
        user["uid"].clone(),
        Check::Uid,
    ));
    out.push(e(
        "config.process.user-gid",
        "process.user.gid",
        user["gid"].clone(),
        Check::Gid,
    ));
    if let Some(g) = user["additionalGids"].as_array() {
        let mut g: Vec<u64> = g.iter().filter_map(Value::as_u64).collect();
        g.sort_unstable();
        g.dedup();
        out.push(e(
            "config.process.additional-gids",
            "process.user.additionalGids",
            json!(g),
            Check::Groups,
        ));
    }
    if let Some(u) = user.get("umask") {
        out.push(e("config.process.umask", "process.user.umask", u.clone(), Check::Umask));
    }
    for (set, mask) in caps_after_exec(c) {
        let clause = match set {
            "bounding" => "config.process.capabilities-bounding",
            "permitted" => "config.process.capabilities-permitted",
            "effective" => "config.process.capabilities-effective",
            "inheritable" => "config.process.capabilities-inheritable",
            _ => "config.process.capabilities-ambient",
        };
        out.push(e(
            clause,
            format!("process.capabilities.{set}"),
            json!(format!("{mask:#x}")),
            Check::Cap(set),
        ));
    }
    for r in p["rlimits"].as_array().into_iter().flatten() {
        let t = r["type"].as_str().unwrap_or_default().to_string();
        out.push(e(
            "config.process.rlimits-getrlimit",
            format!("process.rlimits.{t}"),
            json!({"soft": r["soft"], "hard": r["hard"]}),
            Check::Rlimit(t),
        ));
    }
    for v in p["env"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let key = v.split('=').next().unwrap_or(v);
        out.push(e(
            "config.process.env",
            format!("process.env.{key}"),
            json!(v),
            Check::EnvHas(v.to_string()),
        ));
    }
    out.push(e("config.process.cwd", "process.cwd", p["cwd"].clone(), Check::Cwd));
    out.push(e(
        "config.process.no-new-privileges",
        "process.noNewPrivileges",
        json!(p["noNewPrivileges"].as_bool().unwrap_or(false)),
        Check::NoNewPrivs,
    ));
    if let Some(o) = p.get("oomScoreAdj") {
        out.push(e(
            "config.process.oom-score-adj",
            "process.oomScoreAdj",
            o.clone(),
            Check::OomScoreAdj,
        ));
    }
    if let Some(h) = c.get("hostname") {
        out.push(e("config.hostname", "hostname", h.clone(), Check::Hostname));
    }
    if let Some(d) = c.get("domainname") {
        out.push(e("config.domainname", "domainname", d.clone(), Check::Domainname));
    }
    for m in c["mounts"].as_array().into_iter().flatten() {
        let dest = m["destination"].as_str().unwrap_or_default().to_string();
        if !dest.starts_with("/fuzz/") && dest != "/sys" {
            continue;
        }
        let opts: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let flags: Vec<String> = opts
            .iter()
            .filter(|o| matches!(**o, "nosuid" | "nodev" | "noexec"))
            .map(|o| o.to_string())
            .collect();
        let ro = opts.contains(&"ro");
        let fs_type = match m["type"].as_str() {
            Some("bind") | None => None,
            Some(t) => Some(t.to_string()),
        };
        out.push(e(
            "config.mounts.order",
            format!("mount {dest}"),
            json!({"type": fs_type, "flags": flags}),
            Check::Mount {
                dest: dest.clone(),
                fs_type,
                flags,
            },
        ));
        out.push(e(
            "config.mounts.option-ro-rw",
            format!("mount {dest} read-only"),
            json!(ro),
            Check::ReadOnlyFs(dest.clone()),
        ));
        if let Some(mode) = opts.iter().find_map(|o| o.strip_prefix("mode=")) {
            if let Ok(mode) = u32::from_str_radix(mode, 8) {
                out.push(e(
                    "config.mounts.option-misc",
                    format!("mount {dest} mode"),
                    json!(format!("{mode:o}")),
                    Check::PathMode(dest.clone()),
                ));
            }
        }
    }
    let linux = &c["linux"];
    for m in linux["maskedPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push(e(
            "config-linux.masked-paths",
            format!("masked {m}"),
            json!("unreadable or empty"),
            Check::Masked(m.to_string()),
        ));
    }
    for m in linux["readonlyPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push(e(
            "config-linux.readonly-paths",
            format!("read-only {m}"),
            json!("not writable"),
            Check::ReadOnlyPath(m.to_string()),
        ));
    }
    for d in linux["devices"].as_array().into_iter().flatten() {
        let path = d["path"].as_str().unwrap_or_default().to_string();
        out.push(e(
            "config-linux.devices.create",
            format!("device {path}"),
            json!({"kind": d["type"], "major": d["major"], "minor": d["minor"],
                   "mode": format!("{:o}", d["fileMode"].as_u64().unwrap_or(0o666))}),
            Check::Device(path),
        ));
    }
    for (k, v) in linux["sysctl"].as_object().into_iter().flatten() {
        out.push(e(
            "config-linux.sysctl",
            format!("sysctl {k}"),
            v.clone(),
            Check::Sysctl(k.clone()),
        ));
    }
    let listed: Vec<&str> = linux["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n.get("path").is_none())
        .filter_map(|n| n["type"].as_str())
        .collect();
    for &(typ, probe_name, clause) in NS_NAMES {
        if listed.contains(&typ) {
            out.push(e(
                clause,
                format!("namespace {typ}"),
                json!("new"),
                Check::NsNew(probe_name.to_string()),
            ));
        } else {
            out.push(e(
                "config-linux.namespaces.inherit",
                format!("namespace {typ}"),
                json!("the runtime's"),
                Check::NsShared(probe_name.to_string()),
            ));
        }
    }
    let res = &linux["resources"];
    if let Some(l) = res["memory"]["limit"].as_i64() {
        out.push(e(
            "config-linux.memory.limit",
            "cgroup memory.limit",
            json!(l.to_string()),
            Check::Cgroup("memory/memory.limit_in_bytes".into()),
        ));
    }
    if let Some(l) = res["pids"]["limit"].as_i64() {
        out.push(e(
            "config-linux.pids.limit",
            "cgroup pids.limit",
            json!(l.to_string()),
            Check::Cgroup("pids/pids.max".into()),
        ));
    }
    if let Some(s) = res["cpu"]["shares"].as_u64() {
        out.push(e(
            "config-linux.cpu.shares",
            "cgroup cpu.shares",
            json!(s.to_string()),
            Check::Cgroup("cpu/cpu.shares".into()),
        ));
    }
    if let Some(q) = res["cpu"]["quota"].as_i64() {
        out.push(e(
            "config-linux.cpu.quota",
            "cgroup cpu.quota",
            json!(q.to_string()),
            Check::Cgroup("cpu/cpu.cfs_quota_us".into()),
        ));
    }
    if let Some(p) = res["cpu"]["period"].as_u64() {
        out.push(e(
            "config-linux.cpu.period",
            "cgroup cpu.period",
            json!(p.to_string()),
            Check::Cgroup("cpu/cpu.cfs_period_us".into()),
        ));
    }
    let seccomp = &linux["seccomp"];
    if seccomp.is_object() {
        out.push(e(
            "config-linux.seccomp.default-action",
            "seccomp filter",
            json!(2),
            Check::SeccompFilter,
        ));
        let denies_ppid = seccomp["syscalls"].as_array().into_iter().flatten().any(|s| {
            s["action"] == "SCMP_ACT_ERRNO" && s["names"].as_array().is_some_and(|n| n.contains(&json!("getppid")))
        });
        if denies_ppid {
            out.push(e(
                "config-linux.seccomp.errno-ret",
                "seccomp getppid",
                json!(-1),
                Check::PpidDenied,
            ));
        }
    }
    let mut labels = Vec::new();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ] {
        for h in c["hooks"][kind].as_array().into_iter().flatten() {
            if let Some(l) = h["args"].get(2).and_then(Value::as_str) {
                labels.push(l.to_string());
            }
        }
    }
    if !labels.is_empty() {
        out.push(e("config.hooks.order", "hooks", json!(labels), Check::Hooks));
    }
    out
}

/// A runtime's features annotation saying it always sets no_new_privs.
pub const FORCES_NNP: &str = "org.ociharness.sandbox.no-new-privileges";
/// A runtime's features annotation saying a seccomp filter is always there.
pub const FORCES_SECCOMP: &str = "org.ociharness.sandbox.seccomp-filter";

/// The config as a runtime that declares changes by design (`declared`:
/// the annotation keys of its features) runs it: with no_new_privs forced,
/// the process runs as if the config asked for it.
pub fn as_declared(config: &Value, declared: &[String]) -> Value {
    let mut c = config.clone();
    if declared.iter().any(|d| d == FORCES_NNP) {
        c["process"]["noNewPrivileges"] = json!(true);
    }
    c
}

/// A runtime's features annotation: its cgroups are not the host's.
pub const HOST_CGROUP: &str = "org.ociharness.by-design.host-cgroup";
/// A runtime's features annotation: namespaces not listed are not the runtime's.
pub const HOST_NAMESPACES: &str = "org.ociharness.by-design.host-namespaces";

/// Whether `x` can be checked on a runtime that declares `declared`: the
/// cgroup files seen from the host, and namespaces shared with the host,
/// cannot be for a runtime that declares them elsewhere (a VM's guest).
pub fn applies(x: &Expectation, declared: &[String]) -> bool {
    let says = |a: &str| declared.iter().any(|d| d == a);
    match x.check {
        Check::Cgroup(_) => !says(HOST_CGROUP),
        Check::NsShared(_) => !says(HOST_NAMESPACES),
        _ => true,
    }
}

/// Parts of `comparable` that differ by design when any runtime of the run
/// declares what `declared` holds.
pub fn by_design(config: &Value, declared: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if declared.iter().any(|d| d == FORCES_SECCOMP) {
        out.push("seccomp_mode");
    }
    if declared.iter().any(|d| d == HOST_CGROUP) {
        out.push("cgroup");
    }
    let nnp = config["process"]["noNewPrivileges"].as_bool() == Some(true);
    if !nnp && declared.iter().any(|d| d == FORCES_NNP) {
        // no_new_privs also changes what root keeps across execve.
        out.extend(["no_new_privs", "caps"]);
    }
    out
}

/// The report items (paths, sysctls) the probe must be asked for.
pub fn items(exps: &[Expectation]) -> Vec<String> {
    let mut v: Vec<String> = exps
        .iter()
        .filter_map(|x| match &x.check {
            Check::ReadOnlyFs(p) | Check::PathMode(p) | Check::Masked(p) | Check::ReadOnlyPath(p) => Some(p.clone()),
            Check::Sysctl(k) => Some(format!("sysctl:{k}")),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn rlimit_json(r: Option<&probe::report::Rlimit>) -> Value {
    match r {
        Some(r) => json!({"soft": r.soft, "hard": r.hard}),
        None => Value::Null,
    }
}

impl Expectation {
    /// What was observed, when it departs from the expectation.
    pub fn departure(&self, o: &Observation) -> Option<Value> {
        let r = &o.report;
        let path = |p: &str| r.paths.get(p);
        let observed = match &self.check {
            Check::Uid => json!(r.ids.uid),
            Check::Gid => json!(r.ids.gid),
            // Listing a group twice is not forbidden, and setgroups(2) keeps
            // duplicates: the promise is the set of groups.
            Check::Groups => json!(dedup(&r.ids.groups)),
            Check::Cap(set) => {
                let v = match *set {
                    "bounding" => r.caps.bounding,
                    "permitted" => r.caps.permitted,
                    "effective" => r.caps.effective,
                    "inheritable" => r.caps.inheritable,
                    _ => r.caps.ambient,
                };
                json!(format!("{v:#x}"))
            }
            Check::Rlimit(t) => {
                let got = rlimit_json(r.rlimits.get(t));
                let want = json!({"soft": self.expected["soft"], "hard": self.expected["hard"]});
                return (got != want).then_some(got);
            }
            Check::Hostname => json!(r.hostname),
            Check::Domainname => json!(r.domainname),
            Check::EnvHas(v) => {
                return (!r.env.contains(v))
                    .then(|| json!(r.env.iter().find(|x| x.split('=').next() == v.split('=').next())));
            }
            Check::Cwd => json!(r.cwd),
            Check::Umask => json!(r.umask),
            Check::NoNewPrivs => json!(r.no_new_privs),
            Check::OomScoreAdj => json!(r.oom_score_adj),
            Check::Mount { dest, fs_type, flags } => {
                let Some(m) = r.mounts.iter().rev().find(|m| &m.mount_point == dest) else {
                    return Some(json!("no such mount"));
                };
                let type_ok = fs_type.as_ref().is_none_or(|t| &m.fs_type == t);
                let flags_ok = flags.iter().all(|f| m.options.contains(f));
                if type_ok && flags_ok {
                    return None;
                }
                return Some(json!({"type": m.fs_type, "options": m.options}));
            }
            Check::ReadOnlyFs(p) => match path(p) {
                Some(i) if i.exists => json!(i.fs_readonly),
                other => {
                    return Some(json!(other
                        .and_then(|i| i.stat_error.clone())
                        .unwrap_or("missing".into())))
                }
            },
            Check::PathMode(p) => match path(p) {
                Some(i) if i.exists => json!(format!("{:o}", i.mode & 0o7777)),
                _ => json!("missing"),
            },
            Check::Masked(p) => {
                let Some(i) = path(p) else {
                    return Some(json!("not reported"));
                };
                let hidden = !i.exists
                    || i.read_error.is_some()
                    || (i.kind == "d" && i.dir_entries.unwrap_or(0) == 0)
                    || (i.kind != "d" && i.content.as_deref().unwrap_or("").is_empty());
                if hidden {
                    return None;
                }
                return Some(json!({"kind": i.kind, "readable": true, "entries": i.dir_entries}));
            }
            Check::ReadOnlyPath(p) => {
                let Some(i) = path(p) else {
                    return Some(json!("not reported"));
                };
                if !i.exists || i.fs_readonly || i.write_error.is_some() {
                    return None;
                }
                return Some(json!("writable"));
            }
            Check::Device(p) => match r.devices.iter().find(|d| &d.path == p) {
                Some(d) => json!({"kind": d.kind, "major": d.major, "minor": d.minor,
                                  "mode": format!("{:o}", d.mode & 0o777)}),
                None => json!("missing"),
            },
            Check::Sysctl(k) => match r.sysctls.get(k) {
                Some(v) => json!(normalize_ws(v)),
                None => json!(r.sysctl_errors.get(k)),
            },
            Check::NsNew(n) | Check::NsShared(n) => {
                let inside = r.namespaces.get(n).copied();
                let host = o.host_ns.get(n).copied();
                let new = inside.is_some() && inside != host;
                let want_new = matches!(self.check, Check::NsNew(_));
                return (new != want_new).then(|| json!(if new { "new" } else { "the runtime's" }));
            }
            Check::Cgroup(f) => match o.cgroup.get(f) {
                Some(v) => json!(v),
                None => json!("not found"),
            },
            Check::SeccompFilter => json!(r.seccomp_mode),
            Check::PpidDenied => json!(if r.ppid < 0 { -1 } else { r.ppid }),
            Check::Hooks => json!(o.hooks),
        };
        let expected = match &self.check {
            Check::Sysctl(_) => json!(normalize_ws(self.expected.as_str().unwrap_or_default())),
            _ => self.expected.clone(),
        };
        (observed != expected).then_some(observed)
    }
}

fn dedup(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parts of a report that must agree between runtimes given the same
/// config `c`: what the config sets (pids, inode numbers and mount ids are
/// per run, and what it leaves unset, such as rlimits it does not list or
/// the hostname, is the runtime's environment, not a promise).
pub fn comparable(o: &Observation, c: &Value) -> BTreeMap<String, Value> {
    let r = &o.report;
    let mut m = BTreeMap::new();
    let mut ids = r.ids.clone();
    ids.groups = dedup(&ids.groups);
    m.insert("ids".into(), json!(ids));
    m.insert("caps".into(), json!(r.caps));
    m.insert("no_new_privs".into(), json!(r.no_new_privs));
    m.insert("umask".into(), json!(r.umask));
    let listed: Vec<&str> = c["process"]["rlimits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["type"].as_str())
        .collect();
    let rlimits: BTreeMap<&String, &probe::report::Rlimit> =
        r.rlimits.iter().filter(|(k, _)| listed.contains(&k.as_str())).collect();
    m.insert("rlimits".into(), json!(rlimits));
    if c.get("hostname").is_some() {
        m.insert("hostname".into(), json!(r.hostname));
    }
    if c.get("domainname").is_some() {
        m.insert("domainname".into(), json!(r.domainname));
    }
    m.insert("oom_score_adj".into(), json!(r.oom_score_adj));
    m.insert("cwd".into(), json!(r.cwd));
    let mut env: Vec<&String> = r
        .env
        .iter()
        .filter(|v| v.starts_with("FUZZ_") || v.starts_with("PATH="))
        .collect();
    env.sort();
    m.insert("env".into(), json!(env));
    m.insert("seccomp_mode".into(), json!(r.seccomp_mode));
    m.insert("sysctls".into(), json!(r.sysctls));
    // A bind mount's type is its source's filesystem, which is the host's.
    let binds: Vec<&str> = c["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["type"] == "bind")
        .filter_map(|x| x["destination"].as_str())
        .collect();
    let fuzz_mounts: BTreeMap<&str, (&str, Vec<&String>)> = r
        .mounts
        .iter()
        .filter(|x| x.mount_point.starts_with("/fuzz/"))
        .map(|x| {
            let flags = x.options.iter().filter(|f| !f.contains("time")).collect();
            let fs_type = if binds.contains(&x.mount_point.as_str()) {
                "bind"
            } else {
                x.fs_type.as_str()
            };
            (x.mount_point.as_str(), (fs_type, flags))
        })
        .collect();
    m.insert("mounts".into(), json!(fuzz_mounts));
    let devs: Vec<Value> = r
        .devices
        .iter()
        .filter(|d| d.path.starts_with("/dev/fuzz"))
        .map(|d| json!([d.path, d.kind, d.major, d.minor, d.mode, d.uid, d.gid]))
        .collect();
    m.insert("devices".into(), json!(devs));
    m.insert("cgroup".into(), json!(o.cgroup));
    m.insert("hooks".into(), json!(o.hooks));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::gen::{Knobs, Tmpfs};

    fn plain() -> Knobs {
        Knobs {
            ns: [true, true, true, true, false],
            ..Knobs::plain()
        }
    }

    /// An observation that meets every expectation of `c`, built from the
    /// expectations themselves by a path independent of `departure`.
    fn faithful(c: &Value) -> Observation {
        let mut o = Observation::default();
        let caps = caps_after_exec(c);
        o.report.caps.bounding = caps["bounding"];
        o.report.caps.permitted = caps["permitted"];
        o.report.caps.effective = caps["effective"];
        o.report.caps.inheritable = caps["inheritable"];
        o.report.caps.ambient = caps["ambient"];
        o.report.ids.uid = c["process"]["user"]["uid"].as_u64().unwrap() as u32;
        o.report.ids.gid = c["process"]["user"]["gid"].as_u64().unwrap() as u32;
        o.report.cwd = c["process"]["cwd"].as_str().unwrap().into();
        o.report.env = c["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        o.report.ppid = 1;
        for (n, v) in [
            ("pid", 1),
            ("net", 2),
            ("ipc", 3),
            ("uts", 4),
            ("cgroup", 5),
            ("mnt", 6),
        ] {
            o.host_ns.insert(n.into(), v);
            o.report.namespaces.insert(n.into(), v);
        }
        for m in c["mounts"].as_array().unwrap() {
            let opts: Vec<String> = m["options"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| o.as_str().unwrap().to_string())
                .collect();
            let dest = m["destination"].as_str().unwrap().to_string();
            let ro = opts.iter().any(|o| o == "ro");
            let mode = opts
                .iter()
                .find_map(|o| o.strip_prefix("mode="))
                .map(|m| u32::from_str_radix(m, 8).unwrap())
                .unwrap_or(0o755);
            let fs_type = match m["type"].as_str().unwrap() {
                "bind" => "ext4",
                t => t,
            };
            o.report.mounts.push(probe::report::MountInfo {
                mount_point: dest.clone(),
                fs_type: fs_type.into(),
                options: opts,
                ..Default::default()
            });
            let info = probe::report::PathInfo {
                exists: true,
                kind: "d".into(),
                mode: 0o40000 | mode,
                fs_readonly: ro,
                ..Default::default()
            };
            o.report.paths.insert(dest, info);
        }
        for n in c["linux"]["namespaces"].as_array().unwrap() {
            let name = match n["type"].as_str().unwrap() {
                "network" => "net",
                "mount" => "mnt",
                x => x,
            };
            o.report.namespaces.insert(name.into(), 100);
        }
        o
    }

    /// Kernel capability bits of the pool members picked by `mask`.
    fn kbits(mask: u16) -> u64 {
        CAP_POOL
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, (_, b))| 1u64 << b)
            .sum()
    }

    #[test]
    fn pool_masks_map_to_kernel_bits() {
        // CAP_CHOWN 0, CAP_DAC_OVERRIDE 1, CAP_KILL 5.
        assert_eq!(kbits(0b1011), 0b10_0011);
        let mut k = plain();
        k.caps = [0b1011, 0, 0, 0, 0];
        assert_eq!(caps_after_exec(&k.config())["bounding"], 0b10_0011);
    }

    #[test]
    fn root_gets_bounding_and_inheritable_after_exec() {
        let mut k = plain();
        // bounding {0,1,3}, permitted {0}, inheritable {0}.
        k.caps = [0b1011, 0b0001, 0, 0b0001, 0];
        let caps = caps_after_exec(&k.config());
        assert_eq!(caps["bounding"], kbits(0b1011));
        assert_eq!(
            caps["permitted"],
            kbits(0b1011),
            "root's exec takes the whole bounding set"
        );
        assert_eq!(caps["effective"], kbits(0b1011));
        assert_eq!(caps["inheritable"], kbits(0b0001));
        k.no_new_privs = true;
        let caps = caps_after_exec(&k.config());
        assert_eq!(
            caps["permitted"],
            kbits(0b0001),
            "no_new_privs keeps root to what it had"
        );
    }

    #[test]
    fn a_non_root_user_keeps_only_ambient() {
        let mut k = plain();
        k.uid = 1; // 1000
        k.caps = [0b111, 0b011, 0b011, 0b010, 0b010];
        let caps = caps_after_exec(&k.config());
        assert_eq!(caps["permitted"], kbits(0b010));
        assert_eq!(caps["effective"], kbits(0b010));
        assert_eq!(caps["ambient"], kbits(0b010));
        assert_eq!(caps["bounding"], kbits(0b111));
    }

    #[test]
    fn a_faithful_report_meets_every_expectation() {
        let mut k = plain();
        k.caps = [0xff, 0x0f, 0x03, 0x0c, 0x04];
        let c = k.config();
        let o = faithful(&c);
        for x in expectations(&c) {
            assert_eq!(x.departure(&o), None, "{} departs", x.what);
        }
    }

    #[test]
    fn each_departure_names_its_clause_and_what_was_seen() {
        let mut k = plain();
        k.uid = 2;
        k.hostname = Some("box".into());
        k.umask = Some(1);
        let c = k.config();
        let mut o = faithful(&c);
        o.report.hostname = "other".into();
        o.report.umask = 0o022;
        o.report.ids.uid = 0;
        let bad: Vec<(String, &str, Value)> = expectations(&c)
            .into_iter()
            .filter_map(|x| x.departure(&o).map(|v| (x.what.clone(), x.clause, v)))
            .collect();
        assert!(
            bad.contains(&("hostname".into(), "config.hostname", json!("other"))),
            "{bad:?}"
        );
        assert!(
            bad.contains(&("process.user.umask".into(), "config.process.umask", json!(0o022))),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|(w, ..)| w == "process.user.uid"),
            "uid 0 seen, 65534 wanted: {bad:?}"
        );
        for (_, clause, _) in &bad {
            assert!(specs::catalog().get(clause).is_some(), "{clause} is not in the catalog");
        }
    }

    #[test]
    fn every_cited_clause_exists() {
        let mut k = plain();
        k.tmpfs = vec![Tmpfs {
            ro: true,
            nosuid: true,
            nodev: false,
            noexec: true,
            size_kib: Some(64),
            mode: Some(0o700),
        }];
        k.bind = Some((true, false));
        k.masked = 0xff;
        k.readonly = 0xff;
        k.devices = vec![(0, 0o620)];
        k.sysctls = vec![(0, 1), (3, 1)];
        k.memory_mib = Some(64);
        k.pids = Some(100);
        k.cpu_shares = Some(512);
        k.cpu_quota = Some(50_000);
        k.seccomp_errno = Some(1);
        k.hooks = true;
        k.oom_score_adj = Some(10);
        k.rlimits = vec![(0, 1, 3)];
        k.additional_gids = vec![10];
        k.hostname = Some("h".into());
        k.domainname = Some("d".into());
        let exps = expectations(&k.config());
        for x in &exps {
            assert!(specs::catalog().get(x.clause).is_some(), "{}: {}", x.what, x.clause);
        }
        let whats: Vec<&str> = exps.iter().map(|x| x.what.as_str()).collect();
        for w in [
            "mount /fuzz/tmp0",
            "mount /fuzz/tmp0 mode",
            "mount /fuzz/share read-only",
            "device /dev/fuzz0",
            "sysctl kernel.shmmax",
            "sysctl net.ipv4.ip_forward",
            "cgroup memory.limit",
            "cgroup cpu.quota",
            "seccomp getppid",
            "hooks",
            "namespace cgroup",
            "process.rlimits.RLIMIT_NOFILE",
        ] {
            assert!(whats.contains(&w), "{w} missing from {whats:?}");
        }
        let it = items(&exps);
        assert!(it.contains(&"sysctl:kernel.shmmax".to_string()) && it.contains(&"/proc/kcore".to_string()));
    }

    #[test]
    fn mounts_are_judged_by_type_and_flags() {
        let mut k = plain();
        k.tmpfs = vec![Tmpfs {
            ro: false,
            nosuid: true,
            nodev: false,
            noexec: false,
            size_kib: None,
            mode: None,
        }];
        let c = k.config();
        let x = expectations(&c)
            .into_iter()
            .find(|x| x.what == "mount /fuzz/tmp0")
            .unwrap();
        let mut o = faithful(&c);
        assert_eq!(x.departure(&o), None);
        o.report.mounts.clear();
        assert_eq!(x.departure(&o), Some(json!("no such mount")));
        o.report.mounts.push(probe::report::MountInfo {
            mount_point: "/fuzz/tmp0".into(),
            fs_type: "tmpfs".into(),
            options: vec!["rw".into()],
            ..Default::default()
        });
        assert!(x.departure(&o).is_some(), "nosuid missing");
        o.report.mounts[0].options.push("nosuid".into());
        assert_eq!(x.departure(&o), None);
    }

    #[test]
    fn a_declared_no_new_privs_is_expected_and_excused_from_comparison() {
        let mut k = plain();
        k.caps = [0b11, 0b01, 0b01, 0, 0];
        let c = k.config();
        let declared = vec![FORCES_NNP.to_string()];
        let x = expectations(&as_declared(&c, &declared));
        let nnp = x.iter().find(|x| x.what == "process.noNewPrivileges").unwrap();
        assert_eq!(nnp.expected, json!(true));
        let perm = x.iter().find(|x| x.what == "process.capabilities.permitted").unwrap();
        assert_eq!(perm.expected, json!(format!("{:#x}", 1u64 << CAP_POOL[0].1)));
        assert_eq!(by_design(&c, &declared), ["no_new_privs", "caps"]);
        assert!(by_design(&c, &[]).is_empty());
        assert_eq!(as_declared(&c, &[]), c);
        assert_eq!(by_design(&c, &[FORCES_SECCOMP.to_string()]), ["seccomp_mode"]);
    }

    #[test]
    fn host_side_checks_do_not_apply_to_a_runtime_that_declares_them_elsewhere() {
        let mut k = plain();
        k.ns = [false, true, true, true, false];
        k.memory_mib = Some(64);
        let x = expectations(&k.config());
        let vm = vec![HOST_CGROUP.to_string(), HOST_NAMESPACES.to_string()];
        let kept: Vec<&str> = x.iter().filter(|x| applies(x, &vm)).map(|x| x.what.as_str()).collect();
        assert!(
            !kept.contains(&"cgroup memory.limit") && !kept.contains(&"namespace pid"),
            "{kept:?}"
        );
        assert!(
            kept.contains(&"namespace network") && kept.contains(&"process.user.uid"),
            "{kept:?}"
        );
        assert!(x.iter().all(|x| applies(x, &[])));
        assert!(by_design(&k.config(), &vm).contains(&"cgroup"));
    }

    #[test]
    fn groups_are_judged_as_a_set() {
        let mut k = plain();
        k.additional_gids = vec![100, 10, 100];
        let c = k.config();
        let x = expectations(&c)
            .into_iter()
            .find(|x| x.what == "process.user.additionalGids")
            .unwrap();
        assert_eq!(x.expected, json!([10, 100]));
        let mut o = faithful(&c);
        o.report.ids.groups = vec![10, 100, 100];
        assert_eq!(x.departure(&o), None);
        o.report.ids.groups = vec![10];
        assert_eq!(x.departure(&o), Some(json!([10])));
    }

    #[test]
    fn shared_and_new_namespaces_are_told_apart() {
        let mut k = plain();
        k.ns = [false, true, true, true, false];
        let c = k.config();
        let exps = expectations(&c);
        let pid = exps.iter().find(|x| x.what == "namespace pid").unwrap();
        assert_eq!(pid.clause, "config-linux.namespaces.inherit");
        let mut o = faithful(&c);
        assert_eq!(pid.departure(&o), None);
        o.report.namespaces.insert("pid".into(), 999);
        assert_eq!(pid.departure(&o), Some(json!("new")));
    }

    #[test]
    fn comparable_parts_ignore_per_run_numbers() {
        let mut k = plain();
        k.rlimits = vec![(0, 1, 3)];
        k.bind = Some((true, false));
        let c = k.config();
        let mut a = faithful(&c);
        a.report.mounts.push(probe::report::MountInfo {
            mount_point: "/fuzz/share".into(),
            fs_type: "ext4".into(),
            options: vec!["ro".into()],
            ..Default::default()
        });
        let mut b = a.clone();
        b.report.pid = 77;
        b.report.namespaces.insert("pid".into(), 12345);
        b.report.hostname = "elsewhere".into();
        b.report.mounts.last_mut().unwrap().fs_type = "xfs".into();
        let unlisted = probe::report::Rlimit {
            soft: Some(1),
            hard: Some(2),
        };
        b.report.rlimits.insert("RLIMIT_CPU".into(), unlisted);
        assert_eq!(
            comparable(&a, &c),
            comparable(&b, &c),
            "only what the config sets is compared"
        );
        b.report.rlimits.insert(
            "RLIMIT_NOFILE".into(),
            probe::report::Rlimit {
                soft: Some(1),
                hard: Some(2),
            },
        );
        assert_ne!(comparable(&a, &c), comparable(&b, &c));
        let mut d = a.clone();
        d.report.umask = 0o077;
        assert_ne!(comparable(&a, &c), comparable(&d, &c));
    }
}
