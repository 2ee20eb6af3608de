//! The images of a CRI run: the test image written as an OCI layout and
//! pushed with skopeo to a registry, Debian's `docker-registry` started on
//! loopback unless the user names one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::daemon::{self, Daemon, Error, Result};
use crate::image::{ImageSpec, Layout};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const SKOPEO_BIN: &str = "/usr/bin/skopeo";

/// The repository the test images are pushed to.
pub const REPO: &str = "oci-harness/probe";

/// The images the cases use, by tag: `latest` (sleeps: also the sandbox
/// image), `user` (runs as uid 1000 in /tmp, with an env of its own),
/// `removable` (a config of its own, so that removing it leaves the others).
pub fn test_images() -> Vec<ImageSpec> {
    let mut user = ImageSpec::probe("user");
    user.user = crate::image::USER_UID.to_string();
    user.working_dir = "/tmp".into();
    user.env.push("OCI_HARNESS_IMAGE=user".into());
    let mut removable = ImageSpec::probe("removable");
    removable.labels.insert("oci-harness.image".into(), "removable".into());
    vec![ImageSpec::probe("latest"), user, removable]
}

/// Whether an HTTP registry answers `GET /v2/` at `host` (`HOST:PORT`).
pub fn answers(host: &str) -> bool {
    let Ok(addr) = host.parse::<std::net::SocketAddr>().or_else(|_| {
        use std::net::ToSocketAddrs;
        host.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or(())
    }) else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// A `docker-registry` serving on loopback from a private directory.
#[derive(Debug)]
pub struct LocalRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub daemon: Daemon,
}

impl LocalRegistry {
    /// Starts the registry with its storage and config under `dir`.
    pub fn start(dir: &Path, timeout: Duration) -> Result<Self> {
        let bin = Path::new(REGISTRY_BIN);
        if !daemon::installed(bin) {
            return Err(Error::Missing {
                what: "registry",
                path: bin.into(),
                hint: "apt-get install -y docker-registry, or pass --registry HOST:PORT",
            });
        }
        let io = |action: String| {
            move |e| Error::Io {
                what: "registry",
                action,
                source: e,
            }
        };
        let port = daemon::free_port().map_err(io("finding a free port".into()))?;
        let host = format!("127.0.0.1:{port}");
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).map_err(io(format!("creating {}", storage.display())))?;
        let config = dir.join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            storage.display()
        );
        std::fs::write(&config, text).map_err(io(format!("writing {}", config.display())))?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config);
        let mut daemon = Daemon::spawn("registry", cmd, &dir.join("registry.log"))?;
        let h = host.clone();
        daemon.wait_ready(timeout, || answers(&h))?;
        Ok(LocalRegistry { host, daemon })
    }
}

/// The test images, written once and pushed to a registry.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `HOST:PORT`.
    pub registry: String,
    /// The layout directory they were pushed from.
    pub layout_dir: PathBuf,
    /// Tag to `HOST:PORT/REPO:TAG`.
    pub refs: Vec<(String, String)>,
    /// Tag to the manifest digest.
    pub digests: Vec<(String, String)>,
}

impl Pushed {
    /// The full reference of the image tagged `tag`.
    pub fn image(&self, tag: &str) -> String {
        self.refs
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| format!("{}/{REPO}:{tag}", self.registry))
    }

    pub fn digest(&self, tag: &str) -> Option<&str> {
        self.digests.iter().find(|(t, _)| t == tag).map(|(_, d)| d.as_str())
    }
}

/// Writes the test images as an OCI layout under `dir` and pushes each to
/// `registry` with skopeo (plain HTTP).
pub fn push_test_images(probe: &Path, dir: &Path, registry: &str, timeout: Duration) -> Result<Pushed> {
    let skopeo = Path::new(SKOPEO_BIN);
    if !daemon::installed(skopeo) {
        return Err(Error::Missing {
            what: "image push",
            path: skopeo.into(),
            hint: "apt-get install -y skopeo",
        });
    }
    let specs = test_images();
    let layout = Layout::from_probe(probe, &specs).map_err(|e| Error::Io {
        what: "test image",
        action: "building the layout".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let layout_dir = dir.join("layout");
    layout.write_dir(&layout_dir).map_err(|e| Error::Io {
        what: "test image",
        action: "writing the layout".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut refs = Vec::new();
    let mut digests = Vec::new();
    for b in &layout.images {
        let target = format!("{registry}/{REPO}:{}", b.ref_name);
        daemon::run(
            "image push",
            Command::new(skopeo)
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:{}", layout_dir.display(), b.ref_name))
                .arg(format!("docker://{target}")),
            timeout,
        )?;
        refs.push((b.ref_name.clone(), target));
        digests.push((b.ref_name.clone(), b.manifest.digest.clone()));
    }
    Ok(Pushed {
        registry: registry.to_string(),
        layout_dir,
        refs,
        digests,
    })
}
