//! Generators of OCI configs: `Knobs` is what proptest draws and shrinks
//! (small choices, each shrinking towards "not set"); `Knobs::config` turns
//! it into a valid `config.json` for this machine. `Invalid` adds one
//! mutation that makes a valid config invalid.
//!
//! Configs name two host paths by placeholder, replaced when a run writes
//! its bundle: `@PROBE@` (the probe binary, run as a hook) and `@WORK@` (a
//! directory private to the run, holding the bind mount's source and the
//! hooks' record).

use proptest::collection::vec;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Replaced by the probe's path on the host.
pub const PROBE_VAR: &str = "@PROBE@";
/// Replaced by the run's private directory on the host.
pub const WORK_VAR: &str = "@WORK@";

/// Capabilities a generated config picks from (bit numbers are the kernel's).
pub const CAP_POOL: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_FOWNER", 3),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_RAW", 13),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_MKNOD", 27),
    ("CAP_AUDIT_WRITE", 29),
    ("CAP_SETFCAP", 31),
];

/// Working directories that exist in every generated rootfs.
pub const CWDS: &[&str] = &["/", "/tmp", "/root", "/mnt", "/etc"];
/// Resources a config may limit, with values below any hard limit a root
/// process without CAP_SYS_RESOURCE has here (so the runtime can set them).
pub const RLIMITS: &[(&str, &[u64])] = &[
    ("RLIMIT_NOFILE", &[64, 256, 1000, 1024]),
    ("RLIMIT_CORE", &[0, 4096, 1 << 20]),
    ("RLIMIT_MSGQUEUE", &[0, 8192, 819_200]),
    ("RLIMIT_MEMLOCK", &[0, 65536]),
    ("RLIMIT_SIGPENDING", &[16, 1024]),
];
pub const MASKABLE: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/sys/firmware",
    "/proc/scsi",
];
pub const READONLY: &[&str] = &["/proc/sys", "/proc/bus", "/proc/irq", "/proc/sysrq-trigger", "/proc/fs"];
/// Namespaced sysctls: (key, values, the namespace that must be new).
pub const SYSCTLS: &[(&str, &[&str], &str)] = &[
    ("kernel.shmmax", &["65536", "33554432"], "ipc"),
    ("kernel.shmmni", &["64", "4096"], "ipc"),
    ("kernel.msgmax", &["1024", "16384"], "ipc"),
    ("net.ipv4.ip_forward", &["0", "1"], "network"),
    ("net.ipv4.ping_group_range", &["0 0", "1 0"], "network"),
];
pub const UMASKS: &[u32] = &[0o022, 0o077, 0o002, 0o000, 0o027];
pub const UIDS: &[u32] = &[0, 1000, 65534, 4242];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub ro: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    pub size_kib: Option<u32>,
    pub mode: Option<u32>,
}

/// Everything a generated valid config varies. Indices point into the
/// tables above; masks pick members of `CAP_POOL`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knobs {
    pub uid: usize,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<usize>,
    pub env: Vec<(u8, String)>,
    pub cwd: usize,
    pub rlimits: Vec<(usize, usize, usize)>,
    pub no_new_privs: bool,
    /// bounding, permitted, effective, inheritable, ambient masks; each is
    /// intersected with the one it must be a subset of.
    pub caps: [u16; 5],
    pub oom_score_adj: Option<i32>,
    /// New pid, network, ipc, uts, cgroup namespaces (mount is always new).
    pub ns: [bool; 5],
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub tmpfs: Vec<Tmpfs>,
    /// A bind mount of a harness-made host directory: (read-only, recursive).
    pub bind: Option<(bool, bool)>,
    pub sysfs_rw: bool,
    pub masked: u8,
    pub readonly: u8,
    /// Char devices like /dev/null: (minor of 3, 5, 7 by index, mode).
    pub devices: Vec<(usize, u32)>,
    pub sysctls: Vec<(usize, usize)>,
    pub memory_mib: Option<u32>,
    pub pids: Option<u32>,
    pub cpu_shares: Option<u32>,
    pub cpu_quota: Option<u32>,
    /// errno returned for getppid by a seccomp rule.
    pub seccomp_errno: Option<u32>,
    pub hooks: bool,
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

fn tmpfs() -> impl Strategy<Value = Tmpfs> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just(64u32), Just(1024), Just(4096)]),
        proptest::option::of(prop_oneof![Just(0o755u32), Just(0o700), Just(0o1777), Just(0o750)]),
    )
        .prop_map(|(ro, nosuid, nodev, noexec, size_kib, mode)| Tmpfs {
            ro,
            nosuid,
            nodev,
            noexec,
            size_kib,
            mode,
        })
}

/// The strategy for valid configs' knobs.
pub fn knobs() -> impl Strategy<Value = Knobs> {
    let process = (
        0..UIDS.len(),
        prop_oneof![Just(0u32), Just(100), Just(1000), Just(65534)],
        vec(prop_oneof![Just(10u32), Just(100), Just(2000), Just(65534)], 0..3),
        proptest::option::of(0..UMASKS.len()),
        vec((0u8..4, "[a-zA-Z0-9 =_/.-]{0,12}"), 0..3),
        0..CWDS.len(),
        vec((0..RLIMITS.len(), 0usize..4, 0usize..4), 0..3),
        any::<bool>(),
        any::<[u16; 5]>(),
        proptest::option::of(0i32..=1000),
    );
    let system = (
        any::<[bool; 5]>(),
        proptest::option::of(name()),
        proptest::option::of(name()),
        vec(tmpfs(), 0..3),
        proptest::option::of((any::<bool>(), any::<bool>())),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        vec(
            (
                0usize..3,
                prop_oneof![Just(0o666u32), Just(0o620), Just(0o600), Just(0o644)],
            ),
            0..3,
        ),
        vec((0..SYSCTLS.len(), 0usize..2), 0..3),
    );
    let resources = (
        proptest::option::of(prop_oneof![Just(32u32), Just(64), Just(256)]),
        proptest::option::of(prop_oneof![Just(32u32), Just(100), Just(1000)]),
        proptest::option::of(prop_oneof![Just(2u32), Just(512), Just(1024), Just(4096)]),
        proptest::option::of(prop_oneof![Just(20_000u32), Just(50_000), Just(200_000)]),
        proptest::option::of(prop_oneof![Just(1u32), Just(13), Just(38)]),
        any::<bool>(),
    );
    (process, system, resources).prop_map(|(p, s, r)| Knobs {
        uid: p.0,
        gid: p.1,
        additional_gids: p.2,
        umask: p.3,
        env: p.4,
        cwd: p.5,
        rlimits: p.6,
        no_new_privs: p.7,
        caps: p.8,
        oom_score_adj: p.9,
        ns: s.0,
        hostname: s.1,
        domainname: s.2,
        tmpfs: s.3,
        bind: s.4,
        sysfs_rw: s.5,
        masked: s.6,
        readonly: s.7,
        devices: s.8,
        sysctls: s.9,
        memory_mib: r.0,
        pids: r.1,
        cpu_shares: r.2,
        cpu_quota: r.3,
        seccomp_errno: r.4,
        hooks: r.5,
    })
}

fn cap_names(mask: u16) -> Vec<String> {
    CAP_POOL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (n, _))| n.to_string())
        .collect()
}

fn pick<'a>(mask: u8, from: &[&'a str]) -> Vec<&'a str> {
    from.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, p)| *p)
        .collect()
}

const MINORS: [u64; 3] = [3, 5, 7];

impl Knobs {
    /// The smallest knobs: what every generated config shrinks towards.
    pub fn plain() -> Knobs {
        Knobs {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            umask: None,
            env: vec![],
            cwd: 0,
            rlimits: vec![],
            no_new_privs: false,
            caps: [0; 5],
            oom_score_adj: None,
            ns: [false; 5],
            hostname: None,
            domainname: None,
            tmpfs: vec![],
            bind: None,
            sysfs_rw: false,
            masked: 0,
            readonly: 0,
            devices: vec![],
            sysctls: vec![],
            memory_mib: None,
            pids: None,
            cpu_shares: None,
            cpu_quota: None,
            seccomp_errno: None,
            hooks: false,
        }
    }

    /// Knobs like these with one field put back to `plain`'s value, for
    /// each field that differs: the steps of a coarse reduction.
    pub fn reductions(&self) -> Vec<Knobs> {
        let (Ok(Value::Object(me)), Ok(Value::Object(plain))) =
            (serde_json::to_value(self), serde_json::to_value(Knobs::plain()))
        else {
            return Vec::new();
        };
        plain
            .iter()
            .filter(|(k, v)| me.get(*k) != Some(v))
            .filter_map(|(k, v)| {
                let mut m = me.clone();
                m.insert(k.clone(), v.clone());
                serde_json::from_value(Value::Object(m)).ok()
            })
            .collect()
    }

    /// The valid `config.json` these knobs describe. Choices the machine or
    /// the spec would refuse in combination are dropped here (a hostname
    /// without a new UTS namespace, a net sysctl without a new network
    /// namespace), so every config is one a runtime must run.
    pub fn config(&self) -> Value {
        let mut c = serde_json::to_value(crate::bundle::default_spec()).unwrap_or(Value::Null);
        let [pid, net, ipc, uts, cgroup] = self.ns;
        // Process.
        let mut env = vec![
            json!("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            json!("HOME=/root"),
        ];
        // One value per name: the spec does not say which of two wins.
        let mut names = Vec::new();
        for (k, v) in &self.env {
            if !names.contains(k) {
                names.push(*k);
                env.push(json!(format!("FUZZ_{k}={v}")));
            }
        }
        let mut user = json!({"uid": UIDS[self.uid], "gid": self.gid});
        if !self.additional_gids.is_empty() {
            user["additionalGids"] = json!(self.additional_gids);
        }
        if let Some(u) = self.umask {
            user["umask"] = json!(UMASKS[u]);
        }
        let b = self.caps[0] & ((1 << CAP_POOL.len()) - 1);
        let p = self.caps[1] & b;
        let e = self.caps[2] & p;
        let i = self.caps[3] & p;
        let a = self.caps[4] & i;
        let mut rl: Vec<Value> = Vec::new();
        for &(k, s, h) in &self.rlimits {
            let (name, vals) = RLIMITS[k];
            if rl.iter().any(|r| r["type"] == name) {
                continue;
            }
            let hard = vals[h % vals.len()];
            let soft = vals[s % vals.len()].min(hard);
            rl.push(json!({"type": name, "soft": soft, "hard": hard}));
        }
        let mut process = json!({
            "terminal": false,
            "user": user,
            "args": [crate::bundle::PROBE, "report"],
            "env": env,
            "cwd": CWDS[self.cwd],
            "capabilities": {
                "bounding": cap_names(b),
                "permitted": cap_names(p),
                "effective": cap_names(e),
                "inheritable": cap_names(i),
                "ambient": cap_names(a),
            },
            "noNewPrivileges": self.no_new_privs,
        });
        if !rl.is_empty() {
            process["rlimits"] = json!(rl);
        }
        if let Some(o) = self.oom_score_adj {
            process["oomScoreAdj"] = json!(o);
        }
        c["process"] = process;
        // Names.
        if let Value::Object(m) = &mut c {
            m.remove("hostname");
            m.remove("domainname");
        }
        if uts {
            if let Some(h) = &self.hostname {
                c["hostname"] = json!(h);
            }
            if let Some(d) = &self.domainname {
                c["domainname"] = json!(d);
            }
        }
        // Mounts: the defaults, sysfs as asked when it can be new, then ours.
        let mut mounts: Vec<Value> = c["mounts"].as_array().cloned().unwrap_or_default();
        for m in &mut mounts {
            if m["destination"] == "/sys" {
                let rw = self.sysfs_rw && net;
                m["options"] = json!(["nosuid", "noexec", "nodev", if rw { "rw" } else { "ro" }]);
            }
        }
        if !cgroup {
            // A cgroup mount without a cgroup namespace exposes the host's
            // hierarchy to runtimes that bind it; keep the default small.
            mounts.retain(|m| m["type"] != "cgroup");
        }
        for (n, t) in self.tmpfs.iter().enumerate() {
            let mut opts = Vec::new();
            for (on, o) in [
                (t.ro, "ro"),
                (t.nosuid, "nosuid"),
                (t.nodev, "nodev"),
                (t.noexec, "noexec"),
            ] {
                if on {
                    opts.push(o.to_string());
                }
            }
            if let Some(s) = t.size_kib {
                opts.push(format!("size={s}k"));
            }
            if let Some(m) = t.mode {
                opts.push(format!("mode={m:o}"));
            }
            mounts.push(json!({
                "destination": format!("/fuzz/tmp{n}"),
                "type": "tmpfs",
                "source": "tmpfs",
                "options": opts,
            }));
        }
        if let Some((ro, rec)) = self.bind {
            mounts.push(json!({
                "destination": "/fuzz/share",
                "type": "bind",
                "source": format!("{WORK_VAR}/share"),
                "options": [if rec { "rbind" } else { "bind" }, if ro { "ro" } else { "rw" }],
            }));
        }
        c["mounts"] = json!(mounts);
        // Hooks.
        if self.hooks {
            let hook = |label: &str| {
                json!([{
                    "path": PROBE_VAR,
                    "args": ["probe", "hook", label, format!("{WORK_VAR}/hooks.jsonl")],
                }])
            };
            c["hooks"] = json!({"createRuntime": hook("createRuntime"), "poststart": hook("poststart")});
        }
        // Linux.
        let linux = &mut c["linux"];
        let mut namespaces = vec![json!({"type": "mount"})];
        for (on, t) in [
            (pid, "pid"),
            (net, "network"),
            (ipc, "ipc"),
            (uts, "uts"),
            (cgroup, "cgroup"),
        ] {
            if on {
                namespaces.push(json!({"type": t}));
            }
        }
        linux["namespaces"] = json!(namespaces);
        linux["maskedPaths"] = json!(pick(self.masked, MASKABLE));
        linux["readonlyPaths"] = json!(pick(self.readonly, READONLY));
        let devices: Vec<Value> = self
            .devices
            .iter()
            .enumerate()
            .map(|(n, &(minor, mode))| {
                json!({"path": format!("/dev/fuzz{n}"), "type": "c", "major": 1, "minor": MINORS[minor],
                       "fileMode": mode, "uid": 0, "gid": 0})
            })
            .collect();
        if !devices.is_empty() {
            linux["devices"] = json!(devices);
        }
        let mut sysctl = serde_json::Map::new();
        for &(k, v) in &self.sysctls {
            let (key, vals, ns) = SYSCTLS[k];
            let new = match ns {
                "ipc" => ipc,
                _ => net,
            };
            if new {
                sysctl.insert(key.to_string(), json!(vals[v % vals.len()]));
            }
        }
        if !sysctl.is_empty() {
            linux["sysctl"] = Value::Object(sysctl);
        }
        let mut res = serde_json::Map::new();
        if let Some(m) = self.memory_mib {
            res.insert("memory".into(), json!({"limit": i64::from(m) << 20}));
        }
        if let Some(p) = self.pids {
            res.insert("pids".into(), json!({"limit": p}));
        }
        let mut cpu = serde_json::Map::new();
        if let Some(s) = self.cpu_shares {
            cpu.insert("shares".into(), json!(s));
        }
        if let Some(q) = self.cpu_quota {
            cpu.insert("quota".into(), json!(q));
            cpu.insert("period".into(), json!(100_000));
        }
        if !cpu.is_empty() {
            res.insert("cpu".into(), Value::Object(cpu));
        }
        if !res.is_empty() {
            linux["resources"] = Value::Object(res);
        } else if let Value::Object(l) = linux {
            l.remove("resources");
        }
        if let Some(errno) = self.seccomp_errno {
            linux["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}],
            });
        }
        c
    }
}

/// One change that makes a valid config invalid, with the clause that says
/// a runtime must refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutation {
    UnknownNamespace,
    DuplicateNamespace,
    RelativeNamespacePath,
    UnknownRlimit,
    DuplicateRlimit,
    RelativeCwd,
    EmptyArgs,
    RelativeHookPath,
    MissingRoot,
    SeccompNoNames,
    UnknownSeccompAction,
    BadDeviceType,
    UnknownPropagation,
}

pub const MUTATIONS: &[Mutation] = &[
    Mutation::UnknownNamespace,
    Mutation::DuplicateNamespace,
    Mutation::RelativeNamespacePath,
    Mutation::UnknownRlimit,
    Mutation::DuplicateRlimit,
    Mutation::RelativeCwd,
    Mutation::EmptyArgs,
    Mutation::RelativeHookPath,
    Mutation::MissingRoot,
    Mutation::SeccompNoNames,
    Mutation::UnknownSeccompAction,
    Mutation::BadDeviceType,
    Mutation::UnknownPropagation,
];

impl Mutation {
    /// The clause that requires the runtime to refuse the mutated config.
    pub fn clause(self) -> &'static str {
        match self {
            Mutation::UnknownNamespace
            | Mutation::UnknownSeccompAction
            | Mutation::BadDeviceType
            | Mutation::UnknownPropagation => "config.valid-values.error",
            Mutation::DuplicateNamespace => "config-linux.namespaces.duplicate-error",
            Mutation::RelativeNamespacePath => "config-linux.namespaces.path-absolute",
            Mutation::UnknownRlimit => "config.process.rlimits-invalid-error",
            Mutation::DuplicateRlimit => "config.process.rlimits-duplicate-error",
            Mutation::RelativeCwd => "config.process.cwd-absolute",
            Mutation::EmptyArgs => "config.process.args-required",
            Mutation::RelativeHookPath => "config.hooks.path-absolute",
            Mutation::MissingRoot => "config.root.path-exists",
            Mutation::SeccompNoNames => "config-linux.seccomp.names-non-empty",
        }
    }

    /// Applies the mutation to a valid config.
    pub fn apply(self, c: &mut Value) {
        let linux = &mut c["linux"];
        match self {
            Mutation::UnknownNamespace => push(&mut linux["namespaces"], json!({"type": "fuzzns"})),
            Mutation::DuplicateNamespace => push(&mut linux["namespaces"], json!({"type": "mount"})),
            Mutation::RelativeNamespacePath => {
                if let Some(ns) = linux["namespaces"].as_array_mut() {
                    ns.retain(|n| n["type"] != "network");
                }
                push(
                    &mut linux["namespaces"],
                    json!({"type": "network", "path": "proc/self/ns/net"}),
                );
            }
            Mutation::UnknownRlimit => push(
                &mut c["process"]["rlimits"],
                json!({"type": "RLIMIT_FUZZ", "soft": 1, "hard": 1}),
            ),
            Mutation::DuplicateRlimit => {
                let r = json!({"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024});
                push(&mut c["process"]["rlimits"], r.clone());
                push(&mut c["process"]["rlimits"], r);
            }
            Mutation::RelativeCwd => c["process"]["cwd"] = json!("tmp"),
            Mutation::EmptyArgs => c["process"]["args"] = json!([]),
            Mutation::RelativeHookPath => push(
                &mut c["hooks"]["createRuntime"],
                json!({"path": "probe", "args": ["probe", "true"]}),
            ),
            Mutation::MissingRoot => c["root"]["path"] = json!("no-such-rootfs"),
            Mutation::SeccompNoNames => {
                linux["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}],
                })
            }
            Mutation::UnknownSeccompAction => {
                linux["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_FUZZ"}],
                })
            }
            Mutation::BadDeviceType => push(
                &mut linux["devices"],
                json!({"path": "/dev/fuzzbad", "type": "x", "major": 1, "minor": 3}),
            ),
            Mutation::UnknownPropagation => linux["rootfsPropagation"] = json!("fuzzprop"),
        }
    }
}

fn push(v: &mut Value, item: Value) {
    if !v.is_array() {
        *v = json!([]);
    }
    if let Some(a) = v.as_array_mut() {
        a.push(item);
    }
}

/// A generated case: a valid config, or one made invalid by a mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Case {
    Valid(Knobs),
    Invalid(Knobs, Mutation),
}

impl Case {
    pub fn knobs(&self) -> &Knobs {
        match self {
            Case::Valid(k) | Case::Invalid(k, _) => k,
        }
    }

    /// The same case with other knobs.
    pub fn with_knobs(&self, k: Knobs) -> Case {
        match self {
            Case::Valid(_) => Case::Valid(k),
            Case::Invalid(_, m) => Case::Invalid(k, *m),
        }
    }

    pub fn config(&self) -> Value {
        match self {
            Case::Valid(k) => k.config(),
            Case::Invalid(k, m) => {
                let mut c = k.config();
                m.apply(&mut c);
                c
            }
        }
    }

    pub fn mutation(&self) -> Option<Mutation> {
        match self {
            Case::Valid(_) => None,
            Case::Invalid(_, m) => Some(*m),
        }
    }
}

pub fn valid() -> BoxedStrategy<Case> {
    knobs().prop_map(Case::Valid).boxed()
}

/// Invalid cases: the valid part shrinks, the mutation stays.
pub fn invalid() -> BoxedStrategy<Case> {
    (knobs(), proptest::sample::select(MUTATIONS))
        .prop_map(|(k, m)| Case::Invalid(k, m))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    fn runner(seed: u8) -> TestRunner {
        TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]))
    }

    proptest! {
        #[test]
        fn every_valid_config_parses_as_a_spec(k in knobs()) {
            let c = k.config();
            let spec: Result<oci_spec::runtime::Spec, _> = serde_json::from_value(c.clone());
            prop_assert!(spec.is_ok(), "{:?}", spec.err());
        }

        #[test]
        fn capability_sets_nest(k in knobs()) {
            let c = k.config();
            let caps = &c["process"]["capabilities"];
            let set = |n: &str| caps[n].as_array().unwrap().clone();
            for v in set("permitted") { prop_assert!(set("bounding").contains(&v)); }
            for v in set("effective") { prop_assert!(set("permitted").contains(&v)); }
            for v in set("ambient") { prop_assert!(set("inheritable").contains(&v)); }
        }

        #[test]
        fn dependent_choices_follow_their_namespace(k in knobs()) {
            let c = k.config();
            let ns: Vec<&str> = c["linux"]["namespaces"].as_array().unwrap().iter()
                .map(|n| n["type"].as_str().unwrap()).collect();
            if c.get("hostname").is_some() { prop_assert!(ns.contains(&"uts")); }
            if let Some(s) = c["linux"]["sysctl"].as_object() {
                for key in s.keys() {
                    let need = if key.starts_with("net.") { "network" } else { "ipc" };
                    prop_assert!(ns.contains(&need), "{} needs {}", key, need);
                }
            }
            prop_assert!(ns.contains(&"mount"));
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_cases() {
        let a: Vec<Case> = (0..5)
            .map(|_| valid().new_tree(&mut runner(7)).unwrap().current())
            .collect();
        let b: Vec<Case> = (0..5)
            .map(|_| valid().new_tree(&mut runner(7)).unwrap().current())
            .collect();
        assert_eq!(a, b);
        let mut r = runner(7);
        let first = valid().new_tree(&mut r).unwrap().current();
        let second = valid().new_tree(&mut r).unwrap().current();
        assert_ne!(first, second, "one runner draws different cases in turn");
    }

    #[test]
    fn shrinking_reaches_the_plain_config() {
        let mut t = valid().new_tree(&mut runner(3)).unwrap();
        while t.simplify() {}
        let Case::Valid(k) = t.current() else { panic!() };
        assert!(k.tmpfs.is_empty() && k.env.is_empty() && k.oom_score_adj.is_none() && !k.hooks);
        assert_eq!(k.caps, [0; 5]);
    }

    #[test]
    fn reductions_reset_one_field_each() {
        let mut k = Knobs::plain();
        assert!(k.reductions().is_empty());
        k.hooks = true;
        k.umask = Some(2);
        let r = k.reductions();
        assert_eq!(r.len(), 2);
        assert!(r.iter().any(|x| !x.hooks && x.umask == Some(2)));
        assert!(r.iter().any(|x| x.hooks && x.umask.is_none()));
    }

    #[test]
    fn env_names_are_not_repeated() {
        let mut k = Knobs::plain();
        k.env = vec![(1, "a".into()), (1, "b".into()), (2, "c".into())];
        let env = k.config()["process"]["env"].clone();
        let fuzz: Vec<&str> = env
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| v.starts_with("FUZZ_"))
            .collect();
        assert_eq!(fuzz, ["FUZZ_1=a", "FUZZ_2=c"]);
    }

    #[test]
    fn mutations_change_what_they_name() {
        let base = valid().new_tree(&mut runner(1)).unwrap().current();
        let Case::Valid(k) = base else { panic!() };
        for &m in MUTATIONS {
            let c = Case::Invalid(k.clone(), m).config();
            assert_ne!(c, k.config(), "{m:?} changed nothing");
            assert!(!m.clause().is_empty());
            assert!(specs::catalog().get(m.clause()).is_some(), "{m:?}: {}", m.clause());
        }
        let c = Case::Invalid(k.clone(), Mutation::DuplicateRlimit).config();
        let n = c["process"]["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == "RLIMIT_NOFILE")
            .count();
        assert!(n >= 2);
    }
}
