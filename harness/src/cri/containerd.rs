//! Debian's containerd started with a private configuration, as a CRI
//! endpoint to check: its own root, state and socket under a temporary
//! directory, the CRI plugin pulling from the test registry over plain HTTP,
//! the test image as its sandbox image, runc as the runtime (cgroupfs: there
//! is no systemd here), and a CNI bridge with host-local addresses so that
//! pods get a network namespace of their own.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::daemon::{self, Daemon, Error, Result};

pub const CONTAINERD_BIN: &str = "/usr/bin/containerd";
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// A running containerd.
#[derive(Debug)]
pub struct Containerd {
    /// `unix:///DIR/containerd.sock`.
    pub endpoint: String,
    pub socket: PathBuf,
    pub dir: PathBuf,
    /// The CNI bridge it may create, deleted on drop.
    bridge: Option<String>,
    pub daemon: Daemon,
}

/// What the private configuration needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Registry `HOST:PORT`, reached over plain HTTP.
    pub registry: String,
    /// The pod sandbox ("pause") image.
    pub sandbox_image: String,
    /// The runc binary.
    pub runc: PathBuf,
    /// Configure a CNI bridge network (when the plugins are installed).
    pub cni: bool,
}

/// A name unique to this process, short enough for an interface (15 bytes).
fn bridge_name() -> String {
    format!("ohcri{:x}", std::process::id() & 0xfffff)
}

/// The containerd config for `dir` (version 2 schema, as 1.6 reads it).
pub fn config_toml(dir: &Path, o: &Options) -> String {
    let d = dir.display();
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let mut s = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "info"

[metrics]
  address = ""

[{cri}]
  sandbox_image = "{sandbox}"
  enable_selinux = false
  # No CAP_SYS_RESOURCE here (ENVIRONMENT.md): the sandbox's default
  # oom_score_adj of -998 is below ours, and runc's init dies setting it.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{runc}"
  SystemdCgroup = false

[{cri}.registry.mirrors."{reg}"]
  endpoint = ["http://{reg}"]
"#,
        sandbox = o.sandbox_image,
        runc = o.runc.display(),
        reg = o.registry,
    );
    s.push_str(&format!(
        "\n[{cri}.cni]\n  bin_dir = \"{CNI_BIN_DIR}\"\n  conf_dir = \"{d}/cni\"\n  max_conf_num = 1\n"
    ));
    s
}

/// A CNI bridge network with host-local addresses kept under `dir`.
pub fn cni_conflist(dir: &Path, bridge: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "oci-harness",
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": false,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.213.0.0/16"}]],
                "dataDir": dir.join("cni-ipam").display().to_string(),
            },
        }],
    })
    .to_string()
}

impl Containerd {
    /// Starts containerd with everything under `dir`; waits for its socket.
    pub fn start(dir: &Path, o: &Options, timeout: Duration) -> Result<Self> {
        let bin = Path::new(CONTAINERD_BIN);
        if !daemon::installed(bin) {
            return Err(Error::Missing {
                what: "containerd",
                path: bin.into(),
                hint: "apt-get install -y containerd",
            });
        }
        let io = |action: String| {
            move |e| Error::Io {
                what: "containerd",
                action,
                source: e,
            }
        };
        let cni_dir = dir.join("cni");
        std::fs::create_dir_all(&cni_dir).map_err(io(format!("creating {}", cni_dir.display())))?;
        let bridge = (o.cni && Path::new(CNI_BIN_DIR).join("bridge").exists()).then(bridge_name);
        if let Some(b) = &bridge {
            let p = cni_dir.join("10-oci-harness.conflist");
            std::fs::write(&p, cni_conflist(dir, b)).map_err(io(format!("writing {}", p.display())))?;
        }
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(dir, o)).map_err(io(format!("writing {}", config.display())))?;
        let socket = dir.join("containerd.sock");
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&config);
        let mut daemon = Daemon::spawn("containerd", cmd, &dir.join("containerd.log"))?;
        let s = socket.clone();
        daemon.wait_ready(timeout, || UnixStream::connect(&s).is_ok())?;
        Ok(Containerd {
            endpoint: format!("unix://{}", socket.display()),
            socket,
            dir: dir.to_path_buf(),
            bridge,
            daemon,
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Pods left behind keep shims running: stop containerd, then the
        // shims it started (they carry our socket path in their command line).
        self.daemon.stop();
        kill_shims(&self.dir);
        if let Some(b) = self.bridge.take() {
            let _ = Command::new("ip").args(["link", "del", &b]).output();
        }
        // Snapshots are overlay mounts under the root: unmount before removal.
        unmount_under(&self.dir);
    }
}

/// Kills `containerd-shim-runc-v2` processes whose command line names `dir`.
fn kill_shims(dir: &Path) {
    let needle = dir.display().to_string();
    let Ok(rd) = std::fs::read_dir("/proc") else { return };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("containerd-shim") && text.contains(&needle) {
            // SAFETY: kill touches no memory; a recycled pid would have to
            // match the shim's command line naming our private directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Lazily unmounts every mount point under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: umount2 reads a NUL-terminated path that lives across
            // the call; MNT_DETACH touches nothing else of ours.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_private_to_its_directory() {
        let o = Options {
            registry: "127.0.0.1:5000".into(),
            sandbox_image: "127.0.0.1:5000/oci-harness/probe:latest".into(),
            runc: "/usr/sbin/runc".into(),
            cni: true,
        };
        let t = config_toml(Path::new("/tmp/x"), &o);
        let v: toml::Value = toml::from_str(&t).unwrap();
        assert_eq!(v["root"].as_str(), Some("/tmp/x/root"));
        assert_eq!(v["grpc"]["address"].as_str(), Some("/tmp/x/containerd.sock"));
        let cri = &v["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(cri["sandbox_image"].as_str(), Some(o.sandbox_image.as_str()));
        assert_eq!(
            cri["registry"]["mirrors"]["127.0.0.1:5000"]["endpoint"][0].as_str(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(cri["cni"]["conf_dir"].as_str(), Some("/tmp/x/cni"));
        let c: serde_json::Value = serde_json::from_str(&cni_conflist(Path::new("/tmp/x"), "ohcri1")).unwrap();
        assert_eq!(c["plugins"][0]["bridge"], "ohcri1");
        assert!(bridge_name().len() <= 15);
    }
}
