//! Pod networks through CNI plugins, as containerd sets them up: the first
//! network configuration in the configuration directory (`.conflist`,
//! `.conf` or `.json`, by name), its plugins run in order for ADD with each
//! one's result passed to the next, and in reverse for DEL with the cached
//! result of the ADD (CNI spec 1.0: environment `CNI_COMMAND`,
//! `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`; the
//! network configuration on stdin; a result or an error object on stdout).
//! Without a configuration the network is not ready, as containerd says.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where Debian's containernetworking-plugins puts the plugins, then the
/// upstream default.
pub const DEFAULT_BIN_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];
/// containerd's default configuration directory.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// The interface a pod gets, as kubelet expects.
pub const IFNAME: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CNI configuration {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("CNI plugin {plugin:?} (network {network:?}) not found in {dirs}")]
    NoPlugin {
        plugin: String,
        network: String,
        dirs: String,
    },
    #[error("CNI plugin {plugin} {command}: {reason}")]
    Plugin {
        plugin: String,
        command: &'static str,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The server's CNI settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_bin_dirs")]
    pub bin_dirs: Vec<PathBuf>,
    #[serde(default = "default_conf_dir")]
    pub conf_dir: PathBuf,
}

fn default_bin_dirs() -> Vec<PathBuf> {
    DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect()
}

fn default_conf_dir() -> PathBuf {
    PathBuf::from(DEFAULT_CONF_DIR)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bin_dirs: default_bin_dirs(),
            conf_dir: default_conf_dir(),
        }
    }
}

/// One network: a list of plugin configurations.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Value>,
    /// The file it came from.
    pub file: PathBuf,
}

/// What a pod's ADD gave, kept with the pod for its DEL and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub ifname: String,
    /// The pod's addresses (without prefix length), IPv4 first.
    pub ips: Vec<String>,
    /// The last plugin's result: DEL gets it as `prevResult`.
    pub result: Value,
}

impl Settings {
    /// The network to use: the first configuration file by name, or None
    /// when the directory has none.
    pub fn network(&self) -> Result<Option<Network>> {
        let Ok(entries) = std::fs::read_dir(&self.conf_dir) else {
            return Ok(None);
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
            })
            .collect();
        files.sort();
        match files.first() {
            Some(f) => Network::load(f).map(Some),
            None => Ok(None),
        }
    }

    /// Why pods without the host's network cannot run, or None when they can.
    pub fn not_ready(&self) -> Option<String> {
        match self.network() {
            Ok(Some(n)) => n.missing_plugin(&self.bin_dirs).map(|e| e.to_string()),
            Ok(None) => Some(format!("no CNI network configuration in {}", self.conf_dir.display())),
            Err(e) => Some(e.to_string()),
        }
    }
}

impl Network {
    pub fn load(path: &Path) -> Result<Network> {
        let bad = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let v: Value = serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        Network::parse(v, path).map_err(bad)
    }

    fn parse(v: Value, path: &Path) -> std::result::Result<Network, String> {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("name is missing")?
            .to_string();
        let cni_version = v
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or("0.4.0")
            .to_string();
        let plugins = match v.get("plugins") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(_) => return Err("plugins must be a non-empty list".into()),
            // A single-plugin `.conf`.
            None => vec![v.clone()],
        };
        for (i, p) in plugins.iter().enumerate() {
            if p.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(format!("plugins[{i}].type is missing"));
            }
        }
        Ok(Network {
            name,
            cni_version,
            plugins,
            file: path.to_path_buf(),
        })
    }

    fn plugin_type(p: &Value) -> &str {
        p.get("type").and_then(Value::as_str).unwrap_or_default()
    }

    fn find_plugin(&self, ty: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
        dirs.iter()
            .map(|d| d.join(ty))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::NoPlugin {
                plugin: ty.to_string(),
                network: self.name.clone(),
                dirs: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            })
    }

    fn missing_plugin(&self, dirs: &[PathBuf]) -> Option<Error> {
        self.plugins
            .iter()
            .find_map(|p| self.find_plugin(Network::plugin_type(p), dirs).err())
    }

    /// What plugin `i` reads on stdin.
    fn stdin_for(&self, i: usize, prev: Option<&Value>) -> Value {
        let mut conf = self.plugins[i].clone();
        conf["name"] = json!(self.name);
        conf["cniVersion"] = json!(self.cni_version);
        if let Some(p) = prev {
            conf["prevResult"] = p.clone();
        }
        conf
    }

    /// ADD: attaches the network namespace at `netns` to the network. When
    /// a plugin fails, DEL runs for the whole list (as the spec asks of a
    /// runtime after a failed ADD), so what the earlier plugins took (an
    /// address lease, a veth) is given back.
    pub fn add(&self, dirs: &[PathBuf], container_id: &str, netns: &Path, args: &str) -> Result<Attachment> {
        let mut prev: Option<Value> = None;
        for i in 0..self.plugins.len() {
            let out = match self.exec(dirs, "ADD", i, prev.as_ref(), container_id, Some(netns), args) {
                Ok(o) => o,
                Err(e) => {
                    let _ = self.del(dirs, container_id, Some(netns), args, &prev.unwrap_or_default());
                    return Err(e);
                }
            };
            let r: Value = serde_json::from_slice(&out).map_err(|e| Error::Plugin {
                plugin: Network::plugin_type(&self.plugins[i]).to_string(),
                command: "ADD",
                reason: format!("its result is not JSON: {e}"),
            })?;
            prev = Some(r);
        }
        let result = prev.unwrap_or_default();
        Ok(Attachment {
            network: self.name.clone(),
            ifname: IFNAME.to_string(),
            ips: addresses(&result),
            result,
        })
    }

    /// DEL, plugins in reverse; `netns` is None when the namespace is gone
    /// (plugins then release what they hold outside it).
    pub fn del(
        &self,
        dirs: &[PathBuf],
        container_id: &str,
        netns: Option<&Path>,
        args: &str,
        prev: &Value,
    ) -> Result<()> {
        let prev = (!prev.is_null()).then_some(prev);
        for i in (0..self.plugins.len()).rev() {
            self.exec(dirs, "DEL", i, prev, container_id, netns, args)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        dirs: &[PathBuf],
        command: &'static str,
        i: usize,
        prev: Option<&Value>,
        container_id: &str,
        netns: Option<&Path>,
        args: &str,
    ) -> Result<Vec<u8>> {
        let ty = Network::plugin_type(&self.plugins[i]).to_string();
        let bin = self.find_plugin(&ty, dirs)?;
        let path = std::env::join_paths(dirs).unwrap_or_default();
        let mut child = Command::new(&bin)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns.map(|p| p.as_os_str().to_owned()).unwrap_or_default())
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_ARGS", args)
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Plugin {
                plugin: bin.display().to_string(),
                command,
                reason: e.to_string(),
            })?;
        let conf = self.stdin_for(i, prev).to_string();
        if let Some(mut s) = child.stdin.take() {
            let _ = s.write_all(conf.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| Error::Plugin {
            plugin: bin.display().to_string(),
            command,
            reason: e.to_string(),
        })?;
        if !out.status.success() {
            // The spec's error object, or whatever it said.
            let reason = serde_json::from_slice::<Value>(&out.stdout)
                .ok()
                .and_then(|v| {
                    let msg = v.get("msg")?.as_str()?.to_string();
                    let details = v.get("details").and_then(Value::as_str).unwrap_or_default();
                    Some(if details.is_empty() {
                        msg
                    } else {
                        format!("{msg}: {details}")
                    })
                })
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(if out.stdout.is_empty() {
                        &out.stderr
                    } else {
                        &out.stdout
                    });
                    format!("{} ({})", text.trim(), out.status)
                });
            return Err(Error::Plugin {
                plugin: bin.display().to_string(),
                command,
                reason,
            });
        }
        Ok(out.stdout)
    }
}

/// The addresses of a CNI result (`ips[].address`, `10.1.2.3/24`), without
/// their prefix length, IPv4 first.
pub fn addresses(result: &Value) -> Vec<String> {
    let mut ips: Vec<String> = result
        .get("ips")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|ip| ip.get("address")?.as_str())
                .map(|a| a.split('/').next().unwrap_or(a).to_string())
                .collect()
        })
        .unwrap_or_default();
    ips.sort_by_key(|a| a.contains(':'));
    ips
}

/// `CNI_ARGS` for a pod, as kubelet's runtimes pass them.
pub fn pod_args(namespace: &str, name: &str, infra_id: &str) -> String {
    format!("IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={infra_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn settings(dir: &Path) -> Settings {
        Settings {
            bin_dirs: vec![dir.join("bin")],
            conf_dir: dir.join("net.d"),
        }
    }

    /// A plugin that records its environment and stdin, then prints `out`.
    fn plugin(dir: &Path, name: &str, out: &str) {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let p = bin.join(name);
        let log = dir.join("calls.log");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\n{{ echo \"{name} $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_ARGS\"; cat; echo; }} >> {}\nprintf '%s' '{out}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn no_configuration_is_not_ready_and_the_first_file_by_name_is_used() {
        let t = tempfile::tempdir().unwrap();
        let s = settings(t.path());
        assert!(s.not_ready().unwrap().contains("no CNI network configuration"));
        std::fs::create_dir_all(&s.conf_dir).unwrap();
        std::fs::write(s.conf_dir.join("20-b.conf"), r#"{"name":"b","type":"x"}"#).unwrap();
        std::fs::write(
            s.conf_dir.join("10-a.conflist"),
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"one"},{"type":"two"}]}"#,
        )
        .unwrap();
        let n = s.network().unwrap().unwrap();
        assert_eq!((n.name.as_str(), n.plugins.len()), ("a", 2));
        let e = s.not_ready().unwrap();
        assert!(e.contains("\"one\"") && e.contains("not found"), "{e}");
        std::fs::write(s.conf_dir.join("05-bad.conf"), r#"{"name":"c"}"#).unwrap();
        let e = s.not_ready().unwrap();
        assert!(e.contains("05-bad.conf") && e.contains("type is missing"), "{e}");
    }

    #[test]
    fn add_chains_results_and_del_runs_in_reverse_with_the_cached_result() {
        let t = tempfile::tempdir().unwrap();
        let s = settings(t.path());
        plugin(
            t.path(),
            "one",
            r#"{"cniVersion":"1.0.0","ips":[{"address":"fd00::5/64"},{"address":"10.9.0.5/24"}]}"#,
        );
        plugin(
            t.path(),
            "two",
            r#"{"cniVersion":"1.0.0","ips":[{"address":"fd00::5/64"},{"address":"10.9.0.5/24"}],"dns":{}}"#,
        );
        std::fs::create_dir_all(&s.conf_dir).unwrap();
        std::fs::write(
            s.conf_dir.join("net.conflist"),
            r#"{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"one","k":1},{"type":"two"}]}"#,
        )
        .unwrap();
        assert_eq!(s.not_ready(), None);
        let n = s.network().unwrap().unwrap();
        let args = pod_args("ns", "web", "abc");
        let a = n.add(&s.bin_dirs, "abc", Path::new("/proc/1/ns/net"), &args).unwrap();
        assert_eq!(a.ips, ["10.9.0.5", "fd00::5"]);
        n.del(&s.bin_dirs, "abc", None, &args, &a.result).unwrap();
        let log = std::fs::read_to_string(t.path().join("calls.log")).unwrap();
        let calls: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("one ") || l.starts_with("two "))
            .collect();
        assert_eq!(calls.len(), 4, "{log}");
        assert!(
            calls[0].starts_with("one ADD abc /proc/1/ns/net eth0 IgnoreUnknown=1;K8S_POD_NAMESPACE=ns"),
            "{log}"
        );
        assert!(calls[1].starts_with("two ADD"), "{log}");
        // DEL: the last plugin first, with no namespace when it is gone.
        assert!(calls[2].starts_with("two DEL abc  eth0"), "{log}");
        assert!(calls[3].starts_with("one DEL"), "{log}");
        // The second plugin got the first one's result and the network's name.
        let two_add = log.split("two ADD").nth(1).unwrap().lines().nth(1).unwrap();
        assert!(
            two_add.contains(r#""prevResult""#) && two_add.contains(r#""name":"pods""#),
            "{two_add}"
        );
    }

    #[test]
    fn a_failed_add_gives_back_what_the_earlier_plugins_took() {
        let t = tempfile::tempdir().unwrap();
        let s = settings(t.path());
        plugin(
            t.path(),
            "one",
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.7/24"}]}"#,
        );
        let bad = t.path().join("bin/bad");
        std::fs::write(
            &bad,
            "#!/bin/sh\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\nprintf '{\"code\":7,\"msg\":\"no\"}'\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
        let n = Network::parse(
            json!({"name":"x","plugins":[{"type":"one"},{"type":"bad"}]}),
            Path::new("x"),
        )
        .unwrap();
        assert!(n.add(&s.bin_dirs, "c", Path::new("/n"), "").is_err());
        let log = std::fs::read_to_string(t.path().join("calls.log")).unwrap();
        let calls: Vec<&str> = log.lines().filter(|l| l.starts_with("one ")).collect();
        assert_eq!(calls.len(), 2, "{log}");
        assert!(
            calls[0].starts_with("one ADD") && calls[1].starts_with("one DEL"),
            "{log}"
        );
    }

    #[test]
    fn a_plugin_error_object_is_the_message() {
        let t = tempfile::tempdir().unwrap();
        let s = settings(t.path());
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let p = bin.join("bad");
        std::fs::write(
            &p,
            "#!/bin/sh\nprintf '{\"code\":11,\"msg\":\"no address left\",\"details\":\"range full\"}'\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let n = Network::parse(json!({"name":"x","type":"bad"}), Path::new("x.conf")).unwrap();
        let e = n.add(&s.bin_dirs, "c", Path::new("/n"), "").unwrap_err().to_string();
        assert!(e.contains("ADD") && e.contains("no address left: range full"), "{e}");
    }
}
