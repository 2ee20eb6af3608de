//! Bundles (bundle.md): a directory with `config.json` and a rootfs whose only
//! program is the probe. Configs are built with `oci-spec` and validated
//! before a runtime sees them; cases that test a runtime's handling of bad
//! configs write raw JSON instead, on purpose.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCapabilities, LinuxNamespace, LinuxNamespaceType, Mount, Process, Spec};
use serde_json::Value;

/// The path of the probe inside every rootfs.
pub const PROBE: &str = "/probe";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid config: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("writing bundle {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("serialising config: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The config every case starts from: what `runc spec` gives, running the
/// probe, with a hostname the cases can recognise.
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_hostname(Some("oci-harness".to_string()));
    let mut process = Process::default();
    process.set_args(Some(vec![PROBE.to_string(), "true".to_string()]));
    process.set_env(Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/root".to_string(),
    ]));
    process.set_capabilities(Some(LinuxCapabilities::default()));
    spec.set_process(Some(process));
    // oci-spec's runc-like defaults (masked and read-only paths), but only
    // the namespaces every runtime handles alone: a cgroup namespace is
    // opted into by its cases.
    let mut linux = oci_spec::runtime::Linux::default();
    let ns: Vec<LinuxNamespace> = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|t| {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n
    })
    .collect();
    linux.set_namespaces(Some(ns));
    linux.set_resources(None);
    spec.set_linux(Some(linux));
    spec
}

/// Mutable access to parts of a spec that the default always has.
pub trait SpecExt {
    fn process_mut_or_default(&mut self) -> &mut Process;
    fn linux_mut_or_default(&mut self) -> &mut oci_spec::runtime::Linux;
    fn mounts_mut_or_default(&mut self) -> &mut Vec<Mount>;
    /// Sets `process.args`.
    fn set_args<S: AsRef<str>>(&mut self, args: &[S]);
    /// Adds or replaces a namespace of `typ`, with an optional path.
    fn set_namespace(&mut self, typ: LinuxNamespaceType, path: Option<&Path>);
    /// Removes the namespace of `typ` (the container shares the runtime's).
    fn remove_namespace(&mut self, typ: LinuxNamespaceType);
}

impl SpecExt for Spec {
    fn process_mut_or_default(&mut self) -> &mut Process {
        self.process_mut().get_or_insert_with(Process::default)
    }

    fn linux_mut_or_default(&mut self) -> &mut oci_spec::runtime::Linux {
        self.linux_mut().get_or_insert_with(Default::default)
    }

    fn mounts_mut_or_default(&mut self) -> &mut Vec<Mount> {
        self.mounts_mut().get_or_insert_with(Vec::new)
    }

    fn set_args<S: AsRef<str>>(&mut self, args: &[S]) {
        self.process_mut_or_default()
            .set_args(Some(args.iter().map(|a| a.as_ref().to_string()).collect()));
    }

    fn set_namespace(&mut self, typ: LinuxNamespaceType, path: Option<&Path>) {
        let linux = self.linux_mut_or_default();
        let ns = linux.namespaces_mut().get_or_insert_with(Vec::new);
        ns.retain(|n| n.typ() != typ);
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path.map(Path::to_path_buf));
        ns.push(n);
    }

    fn remove_namespace(&mut self, typ: LinuxNamespaceType) {
        if let Some(ns) = self.linux_mut_or_default().namespaces_mut() {
            ns.retain(|n| n.typ() != typ);
        }
    }
}

/// Checks what the spec requires of a config before a runtime is asked to
/// run it, so a case never blames a runtime for the harness's own mistake.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    let invalid = |field: &str, reason: String| Error::Invalid {
        field: field.to_string(),
        reason,
    };
    if spec.version().is_empty() {
        return Err(invalid("ociVersion", "must not be empty".into()));
    }
    let root = spec.root().as_ref().ok_or_else(|| invalid("root", "missing".into()))?;
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        return Err(invalid("root.path", format!("{} is not a directory", rootfs.display())));
    }
    if let Some(p) = spec.process() {
        if p.cwd().is_relative() {
            return Err(invalid(
                "process.cwd",
                format!("must be absolute, got {}", p.cwd().display()),
            ));
        }
        if p.args().as_ref().is_none_or(Vec::is_empty) && p.command_line().is_none() {
            return Err(invalid("process.args", "must have at least one entry".into()));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().is_relative() {
            return Err(invalid(
                &format!("mounts[{i}].destination"),
                format!("must be absolute, got {}", m.destination().display()),
            ));
        }
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for n in linux.namespaces().iter().flatten() {
            if seen.contains(&n.typ()) {
                return Err(invalid("linux.namespaces", format!("duplicate type {:?}", n.typ())));
            }
            seen.push(n.typ());
        }
        if seen.contains(&LinuxNamespaceType::User)
            && linux
                .namespaces()
                .iter()
                .flatten()
                .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
            && linux.uid_mappings().as_ref().is_none_or(Vec::is_empty)
        {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs mappings".into(),
            ));
        }
    }
    // Round trip: what we write must be what oci-spec reads back.
    let text = serde_json::to_string(spec)?;
    let back: Spec = serde_json::from_str(&text)?;
    if &back != spec {
        return Err(invalid(
            "config.json",
            "does not survive a serialisation round trip".into(),
        ));
    }
    Ok(())
}

/// A bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Lays out `dir` with a rootfs holding the probe (copied, so nothing a
    /// container does to it reaches the harness's copy).
    pub fn prepare(dir: &Path, probe: &Path) -> Result<Bundle> {
        let rootfs = dir.join("rootfs");
        for d in ["proc", "sys", "dev", "tmp", "etc", "root", "mnt", "run"] {
            let p = rootfs.join(d);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let target = rootfs.join(PROBE.trim_start_matches('/'));
        fs::copy(probe, &target).map_err(io(&target))?;
        let tmp = rootfs.join("tmp");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).map_err(io(&tmp))?;
        Ok(Bundle { dir: dir.to_path_buf() })
    }

    /// Validates `spec` and writes it as `config.json`.
    pub fn write_spec(&self, spec: &Spec) -> Result<()> {
        validate(spec, &self.dir)?;
        let text = serde_json::to_string_pretty(spec)?;
        let p = self.config_path();
        fs::write(&p, text).map_err(io(&p))
    }

    /// Writes `config.json` as given, unvalidated: for cases about how a
    /// runtime treats a bad config.
    pub fn write_raw(&self, config: &Value) -> Result<()> {
        let p = self.config_path();
        fs::write(&p, serde_json::to_string_pretty(config)?).map_err(io(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> (tempfile::TempDir, Bundle) {
        let t = tempfile::tempdir().unwrap();
        let probe = t.path().join("fake-probe");
        fs::write(&probe, b"#!").unwrap();
        let b = Bundle::prepare(&t.path().join("b"), &probe).unwrap();
        (t, b)
    }

    #[test]
    fn default_spec_is_valid_and_runs_the_probe() {
        let (_t, b) = bundle();
        let spec = default_spec();
        b.write_spec(&spec).unwrap();
        let back: Value = serde_json::from_str(&fs::read_to_string(b.config_path()).unwrap()).unwrap();
        assert_eq!(back["process"]["args"][0], PROBE);
        assert_eq!(back["root"]["path"], "rootfs");
        assert!(b.rootfs().join("probe").is_file());
    }

    #[test]
    fn relative_cwd_is_rejected_naming_the_field() {
        let (_t, b) = bundle();
        let mut spec = default_spec();
        spec.process_mut_or_default().set_cwd("tmp".into());
        let e = b.write_spec(&spec).unwrap_err().to_string();
        assert!(e.contains("process.cwd") && e.contains("tmp"), "{e}");
        assert!(!b.config_path().exists());
    }

    #[test]
    fn duplicate_namespaces_are_rejected() {
        let (_t, b) = bundle();
        let mut spec = default_spec();
        let ns = spec.linux_mut_or_default().namespaces_mut().as_mut().unwrap();
        let first = ns[0].clone();
        ns.push(first);
        let e = b.write_spec(&spec).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces"), "{e}");
    }

    #[test]
    fn set_namespace_replaces_the_same_type() {
        let mut spec = default_spec();
        spec.set_namespace(LinuxNamespaceType::Network, Some(Path::new("/proc/1/ns/net")));
        let ns = spec.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        let nets: Vec<_> = ns.iter().filter(|n| n.typ() == LinuxNamespaceType::Network).collect();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].path().as_deref(), Some(Path::new("/proc/1/ns/net")));
    }
}
