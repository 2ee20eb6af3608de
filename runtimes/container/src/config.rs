//! Loading and validating a bundle's `config.json`. Every error names the
//! field and the value, so a user learns what to fix without reading code.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not valid JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("invalid config: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The namespace type names config-linux.md defines.
pub const NAMESPACE_TYPES: &[&str] = &["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];

/// getrlimit(2) resources, as the spec names them.
pub const RLIMITS: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

/// Reads `bundle/config.json` and validates it against `bundle`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    precheck(&value)?;
    let spec: Spec = serde_json::from_value(value).map_err(|e| Error::Json {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    validate(&spec, bundle)?;
    Ok(spec)
}

/// Checks on the raw JSON, where serde's own messages would not name the
/// field (an unknown enum value deep in an array, say).
pub fn precheck(v: &Value) -> Result<()> {
    if let Some(ns) = v.pointer("/linux/namespaces").and_then(Value::as_array) {
        for (i, n) in ns.iter().enumerate() {
            let t = n.get("type").and_then(Value::as_str).unwrap_or("");
            if !NAMESPACE_TYPES.contains(&t) {
                return Err(invalid(
                    format!("linux.namespaces[{i}].type"),
                    format!("unknown namespace type {t:?}"),
                ));
            }
        }
    }
    if let Some(rl) = v.pointer("/process/rlimits").and_then(Value::as_array) {
        for (i, r) in rl.iter().enumerate() {
            let t = r.get("type").and_then(Value::as_str).unwrap_or("");
            if !RLIMITS.contains(&t) {
                return Err(invalid(
                    format!("process.rlimits[{i}].type"),
                    format!("unknown rlimit {t:?}"),
                ));
            }
        }
    }
    for (field, ptr) in [
        ("linux.resources.memory.limit", "/linux/resources/memory/limit"),
        (
            "linux.resources.memory.reservation",
            "/linux/resources/memory/reservation",
        ),
        ("linux.resources.memory.swap", "/linux/resources/memory/swap"),
        ("linux.resources.pids.limit", "/linux/resources/pids/limit"),
    ] {
        if let Some(n) = v.pointer(ptr).and_then(Value::as_i64) {
            if n < -1 {
                return Err(invalid(field, format!("must be -1 (unlimited) or >= 0, got {n}")));
            }
        }
    }
    Ok(())
}

/// A SemVer 2.0.0 version: MAJOR.MINOR.PATCH with optional pre-release and
/// build metadata.
pub fn is_semver(v: &str) -> bool {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| !p.is_empty() && p.split('.').all(|id| !id.is_empty()))
}

/// Semantic checks the runtime must make before creating anything.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    if !is_semver(spec.version()) {
        return Err(invalid(
            "ociVersion",
            format!("{:?} is not a SemVer 2.0.0 version", spec.version()),
        ));
    }
    let root = spec.root().as_ref().ok_or_else(|| invalid("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(invalid(
            "root.path",
            format!(
                "{:?} is not a directory ({})",
                root.path().display().to_string(),
                rootfs.display()
            ),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing: the container would have nothing to run"))?;
    if process.args().as_ref().is_none_or(Vec::is_empty) {
        return Err(invalid("process.args", "must name the program to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} must be absolute", process.cwd().display().to_string()),
        ));
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let name = format!("{:?}", r.typ());
        if !seen.insert(name.clone()) {
            return Err(invalid(
                format!("process.rlimits[{i}].type"),
                format!("duplicate {name}"),
            ));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("soft {} is above hard {}", r.soft(), r.hard()),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                "process.oomScoreAdj",
                format!("must be in -1000..=1000, got {adj}"),
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            return Err(invalid(format!("mounts[{i}].destination"), "must not be empty"));
        }
    }
    if let Some(hooks) = spec.hooks() {
        let kinds = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (kind, list) in kinds {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{kind}[{i}].path"),
                        format!("{:?} must be absolute", h.path().display().to_string()),
                    ));
                }
                if h.timeout().is_some_and(|t| t <= 0) {
                    return Err(invalid(
                        format!("hooks.{kind}[{i}].timeout"),
                        format!("must be positive, got {}", h.timeout().unwrap_or(0)),
                    ));
                }
            }
        }
    }
    let linux = spec.linux().as_ref().ok_or_else(|| invalid("linux", "missing"))?;
    let mut types = HashSet::new();
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        if !types.insert(n.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate {:?}", crate::namespaces::name(n.typ())),
            ));
        }
        if let Some(p) = n.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{:?} must be absolute", p.display().to_string()),
                ));
            }
        }
    }
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_user && linux.uid_mappings().as_ref().is_none_or(Vec::is_empty) {
        return Err(invalid("linux.uidMappings", "a new user namespace needs uid mappings"));
    }
    if new_user && linux.gid_mappings().as_ref().is_none_or(Vec::is_empty) {
        return Err(invalid("linux.gidMappings", "a new user namespace needs gid mappings"));
    }
    let new_uts = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Uts);
    if !new_uts {
        if let Some(h) = spec.hostname() {
            return Err(invalid(
                "hostname",
                format!("{h:?} set without a uts namespace: it would rename the host"),
            ));
        }
        if let Some(d) = spec.domainname() {
            return Err(invalid(
                "domainname",
                format!("{d:?} set without a uts namespace: it would rename the host"),
            ));
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for k in sysctl.keys() {
            if k.is_empty() || k.contains("..") || k.starts_with('/') {
                return Err(invalid("linux.sysctl", format!("bad key {k:?}")));
            }
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            if !path.exists() {
                return Err(invalid("linux.sysctl", format!("unknown key {k:?}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle_with(cfg: Value) -> (tempfile::TempDir, Result<Spec>) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("rootfs")).unwrap();
        std::fs::write(t.path().join("config.json"), cfg.to_string()).unwrap();
        let r = load(t.path());
        (t, r)
    }

    fn base() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "hostname": "h",
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        })
    }

    fn err_of(cfg: Value) -> String {
        bundle_with(cfg).1.unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_config_loads() {
        let (_t, r) = bundle_with(base());
        r.unwrap();
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let mut c = base();
        c["linux"]["namespaces"][1]["type"] = json!("bogus");
        let e = err_of(c);
        assert!(e.contains("linux.namespaces[1].type") && e.contains("bogus"), "{e}");

        let mut c = base();
        c["linux"]["resources"] = json!({"memory": {"limit": -5}});
        let e = err_of(c);
        assert!(e.contains("linux.resources.memory.limit") && e.contains("-5"), "{e}");

        let mut c = base();
        c["root"]["path"] = json!("nowhere");
        let e = err_of(c);
        assert!(e.contains("root.path") && e.contains("nowhere"), "{e}");

        let mut c = base();
        c["process"]["cwd"] = json!("rel");
        let e = err_of(c);
        assert!(e.contains("process.cwd") && e.contains("rel"), "{e}");

        let mut c = base();
        c["ociVersion"] = json!("one");
        let e = err_of(c);
        assert!(e.contains("ociVersion") && e.contains("one"), "{e}");

        let mut c = base();
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "pid"}, {"type": "uts"}]);
        let e = err_of(c);
        assert!(e.contains("linux.namespaces[1].type") && e.contains("duplicate"), "{e}");

        let mut c = base();
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2},
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}
        ]);
        let e = err_of(c);
        assert!(e.contains("process.rlimits[1].type"), "{e}");

        let mut c = base();
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
        let e = err_of(c);
        assert!(e.contains("hostname"), "{e}");
    }

    #[test]
    fn malformed_json_names_the_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("config.json"), "{").unwrap();
        let e = load(t.path()).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn semver() {
        for ok in ["1.0.0", "1.0.2-dev", "1.2.3-rc.1+build.5", "0.0.0"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "x.y.z", "", "1.0.0.0"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
