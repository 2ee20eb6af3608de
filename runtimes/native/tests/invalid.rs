//! Bad input, in general rather than hand-picked: proptest mutates a valid
//! config into an invalid one, and create must fail with an error naming the
//! field, leaving no state, cgroup or process behind.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use serde_json::{json, Value};

/// One way to break a config: the field the error must name, and the edit.
#[derive(Debug, Clone)]
enum Breakage {
    NamespaceType(String),
    MemoryLimit(i64),
    PidsLimit(i64),
    RelativeCwd(String),
    RlimitType(String),
    EmptyArgs,
    MissingRootfs(String),
    OciVersion(String),
    OomScoreAdj(i64),
    DuplicateNamespace(usize),
    HookPathRelative(String),
}

impl Breakage {
    fn field(&self) -> &'static str {
        match self {
            Breakage::NamespaceType(_) | Breakage::DuplicateNamespace(_) => "linux.namespaces",
            Breakage::MemoryLimit(_) => "linux.resources.memory.limit",
            Breakage::PidsLimit(_) => "linux.resources.pids.limit",
            Breakage::RelativeCwd(_) => "process.cwd",
            Breakage::RlimitType(_) => "process.rlimits",
            Breakage::EmptyArgs => "process.args",
            Breakage::MissingRootfs(_) => "root.path",
            Breakage::OciVersion(_) => "ociVersion",
            Breakage::OomScoreAdj(_) => "process.oomScoreAdj",
            Breakage::HookPathRelative(_) => "hooks.prestart",
        }
    }

    fn apply(&self, c: &mut Value) {
        match self {
            Breakage::NamespaceType(t) => c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": t})),
            Breakage::MemoryLimit(v) => c["linux"]["resources"] = json!({"memory": {"limit": v}}),
            Breakage::PidsLimit(v) => c["linux"]["resources"] = json!({"pids": {"limit": v}}),
            Breakage::RelativeCwd(p) => c["process"]["cwd"] = json!(p),
            Breakage::RlimitType(t) => c["process"]["rlimits"] = json!([{"type": t, "soft": 1, "hard": 1}]),
            Breakage::EmptyArgs => c["process"]["args"] = json!([]),
            Breakage::MissingRootfs(p) => c["root"]["path"] = json!(p),
            Breakage::OciVersion(v) => c["ociVersion"] = json!(v),
            Breakage::OomScoreAdj(v) => c["process"]["oomScoreAdj"] = json!(v),
            Breakage::DuplicateNamespace(i) => {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                let dup = ns[i % ns.len()].clone();
                ns.push(dup);
            }
            Breakage::HookPathRelative(p) => c["hooks"] = json!({"prestart": [{"path": p}]}),
        }
    }
}

fn breakage() -> impl Strategy<Value = Breakage> {
    let known = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];
    prop_oneof![
        "[a-z]{1,12}"
            .prop_filter("not a real type", move |t| !known.contains(&t.as_str()))
            .prop_map(Breakage::NamespaceType),
        (i64::MIN..-1).prop_map(Breakage::MemoryLimit),
        (i64::MIN..-1).prop_map(Breakage::PidsLimit),
        "[a-z][a-z/]{0,20}".prop_map(Breakage::RelativeCwd),
        "RLIMIT_[A-Z]{1,10}"
            .prop_filter("not a real rlimit", |t| !container::config::RLIMITS
                .contains(&t.as_str()))
            .prop_map(Breakage::RlimitType),
        Just(Breakage::EmptyArgs),
        "no-such-[a-z]{1,10}".prop_map(Breakage::MissingRootfs),
        "[a-z0-9.]{0,8}"
            .prop_filter("not SemVer", |v| !container::config::is_semver(v))
            .prop_map(Breakage::OciVersion),
        prop_oneof![(1001i64..100_000), (-100_000i64..-1000)].prop_map(Breakage::OomScoreAdj),
        (0usize..8).prop_map(Breakage::DuplicateNamespace),
        "[a-z][a-z/]{0,12}".prop_map(Breakage::HookPathRelative),
    ]
}

fn base() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/probe", "true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "hostname": "invalid-test",
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]}
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invalid_configs_are_refused_naming_the_field(b in breakage()) {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(());
        }
        let t = tempfile::tempdir().unwrap();
        let bundle = t.path().join("bundle");
        std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        let mut cfg = base();
        b.apply(&mut cfg);
        std::fs::write(bundle.join("config.json"), cfg.to_string()).unwrap();
        let root = t.path().join("root");
        let id = format!("invalid-{}", std::process::id());
        let out = Command::new(env!("CARGO_BIN_EXE_native"))
            .args(["--root", root.to_str().unwrap(), "create", "--bundle", bundle.to_str().unwrap(), &id])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(!out.status.success(), "accepted {:?}", b);
        prop_assert!(stderr.contains(b.field()), "{:?}: error does not name {}: {}", b, b.field(), stderr);
        prop_assert!(!root.join(&id).exists(), "state left for {:?}", b);
        for ctrl in ["memory", "pids", "cpu", "devices"] {
            let cg = Path::new("/sys/fs/cgroup").join(ctrl).join(&id);
            prop_assert!(!cg.exists(), "cgroup {} left for {:?}", cg.display(), b);
        }
    }
}
