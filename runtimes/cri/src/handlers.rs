//! Runtime handlers (kubelet's RuntimeClass names) mapped to OCI runtime
//! binaries with their global flags, and the server's other settings, from an
//! optional TOML file.
//!
//! ```toml
//! streaming_address = "127.0.0.1:0"
//! insecure_registries = ["registry.lan:5000"]
//! [handlers.gvisor]
//! binary = "/usr/bin/runsc"
//! args = ["--network=none"]
//! [cni]
//! conf_dir = "/etc/cni/net.d"
//! bin_dirs = ["/usr/lib/cni"]
//! [handlers.kata]
//! binary = "/opt/kata/bin/kata-runtime"
//! pod_vm = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("config {path}: handler {name:?}: binary {binary} does not exist")]
    MissingBinary {
        path: PathBuf,
        name: String,
        binary: PathBuf,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// One OCI runtime as the server runs it: `binary [args] --root ... VERB`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Handler {
    pub binary: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    /// Whether the runtime runs a pod in one VM of its own (Kata's way):
    /// the infra container boots it, and the pod's containers, which the
    /// CRI annotations mark, run inside it. The pod's namespaces are then
    /// in the guest, not on the host: the paths the containers' configs
    /// name are the runtime's to map, the infra's rootfs travels into the
    /// guest (so its pause program is a small one, not this server's
    /// binary), and nothing on the host can enter the pod's network.
    #[serde(default)]
    pub pod_vm: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    handlers: BTreeMap<String, Handler>,
    streaming_address: Option<String>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    cni: Option<crate::cni::Settings>,
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Handler name ("" is the default) to runtime.
    pub handlers: BTreeMap<String, Handler>,
    /// Where the streaming server listens (exec, attach, port-forward).
    pub streaming_address: String,
    /// Overrides `--root` for state, when set.
    pub state_dir: Option<PathBuf>,
    /// Registries (`host[:port]`) pulled from over plain http; loopback
    /// ones always are.
    pub insecure_registries: Vec<String>,
    /// Pod networks (`[cni] bin_dirs = [...] conf_dir = "..."`).
    pub cni: crate::cni::Settings,
}

impl Config {
    /// Built-in handlers: the bundled runtimes found in `bundled_dir` (the
    /// directory of the `cri` binary) and runc, crun, runsc found in `path`
    /// (a PATH-style list).
    pub fn defaults(bundled_dir: &Path, path: &str) -> Config {
        let mut handlers = BTreeMap::new();
        for name in ["native", "sandboxed", "virtualized"] {
            let binary = bundled_dir.join(name);
            if binary.is_file() {
                handlers.insert(
                    name.to_string(),
                    Handler {
                        binary,
                        args: Vec::new(),
                        pod_vm: name == "virtualized",
                    },
                );
            }
        }
        for name in ["runc", "crun", "runsc"] {
            if let Some(binary) = std::env::split_paths(path).map(|d| d.join(name)).find(|p| p.is_file()) {
                handlers.insert(
                    name.to_string(),
                    Handler {
                        binary,
                        args: Vec::new(),
                        pod_vm: false,
                    },
                );
            }
        }
        let default = handlers.get("native").or_else(|| handlers.get("runc")).cloned();
        if let Some(h) = default {
            handlers.insert(String::new(), h);
        }
        Config {
            handlers,
            streaming_address: "127.0.0.1:0".into(),
            state_dir: None,
            insecure_registries: Vec::new(),
            cni: crate::cni::Settings::default(),
        }
    }

    /// The defaults with `file`'s settings on top (its handlers replace
    /// built-in ones of the same name).
    pub fn load(file: &Path, bundled_dir: &Path, path: &str) -> Result<Config> {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.into(),
            source,
        })?;
        let parsed: File = toml::from_str(&text).map_err(|source| Error::Parse {
            path: file.into(),
            source,
        })?;
        let mut config = Config::defaults(bundled_dir, path);
        for (name, handler) in parsed.handlers {
            if !handler.binary.is_file() {
                return Err(Error::MissingBinary {
                    path: file.into(),
                    name,
                    binary: handler.binary,
                });
            }
            config.handlers.insert(name, handler);
        }
        if let Some(a) = parsed.streaming_address {
            config.streaming_address = a;
        }
        config.state_dir = parsed.state_dir;
        config.insecure_registries = parsed.insecure_registries;
        if let Some(cni) = parsed.cni {
            config.cni = cni;
        }
        Ok(config)
    }

    pub fn handler(&self, name: &str) -> Option<&Handler> {
        self.handlers.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::write(p, "").unwrap();
    }

    #[test]
    fn bundled_runtimes_beside_the_binary_and_path_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let bundled = dir.path().join("bin");
        let path_dir = dir.path().join("usr");
        std::fs::create_dir_all(&bundled).unwrap();
        std::fs::create_dir_all(&path_dir).unwrap();
        touch(&bundled.join("native"));
        touch(&bundled.join("virtualized"));
        touch(&path_dir.join("runc"));
        let c = Config::defaults(&bundled, path_dir.to_str().unwrap());
        assert!(!c.handler("native").unwrap().pod_vm);
        assert!(c.handler("virtualized").unwrap().pod_vm);
        assert_eq!(c.handler("native").unwrap().binary, bundled.join("native"));
        assert_eq!(c.handler("").unwrap().binary, bundled.join("native"));
        assert_eq!(c.handler("runc").unwrap().binary, path_dir.join("runc"));
        assert!(c.handler("sandboxed").is_none());
        assert!(c.handler("crun").is_none());
    }

    #[test]
    fn file_adds_handlers_and_refuses_missing_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("rt");
        touch(&bin);
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "streaming_address = \"127.0.0.1:9\"\ninsecure_registries = [\"reg.lan:5000\"]\n\
                 [handlers.x]\nbinary = {:?}\nargs = [\"--a\"]\n",
                bin
            ),
        )
        .unwrap();
        let c = Config::load(&cfg, dir.path(), "").unwrap();
        assert_eq!(c.handler("x").unwrap().args, vec!["--a".to_string()]);
        assert!(!c.handler("x").unwrap().pod_vm);
        assert_eq!(c.streaming_address, "127.0.0.1:9");
        assert_eq!(c.insecure_registries, vec!["reg.lan:5000".to_string()]);

        std::fs::write(&cfg, "[handlers.y]\nbinary = \"/nonexistent/rt\"\n").unwrap();
        let e = Config::load(&cfg, dir.path(), "").unwrap_err();
        assert!(e.to_string().contains("handler \"y\""), "{e}");
    }
}
