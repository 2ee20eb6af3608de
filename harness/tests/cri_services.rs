//! The services a CRI run starts for itself, driven for real: the test image
//! is pushed to Debian's registry and reads back with the digest the writer
//! computed, and containerd comes up on a private socket.

mod common;

use std::process::Command;
use std::time::Duration;

use harness::cri::containerd::{Containerd, Options};
use harness::cri::registry::{self, LocalRegistry};

fn probe() -> std::path::PathBuf {
    harness::find_probe().expect("the probe is built beside the harness (cargo build -p probe)")
}

#[test]
fn the_test_image_reaches_the_registry_with_its_digest_and_containerd_starts() {
    if !common::is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    if !std::path::Path::new(registry::REGISTRY_BIN).exists() {
        eprintln!("SKIP: docker-registry is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(&dir.path().join("registry"), Duration::from_secs(20)).unwrap();
    let pushed = registry::push_test_images(&probe(), dir.path(), &reg.host, Duration::from_secs(60)).unwrap();
    for tag in ["latest", "user"] {
        let out = Command::new(registry::SKOPEO_BIN)
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{}", pushed.image(tag)))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            harness::image::sha256(&out.stdout),
            pushed.digest(tag).unwrap(),
            "the registry serves the manifest the writer made for {tag}"
        );
    }
    if !std::path::Path::new(harness::cri::containerd::CONTAINERD_BIN).exists() {
        eprintln!("SKIP (containerd part): containerd is not installed");
        return;
    }
    let o = Options {
        registry: reg.host.clone(),
        sandbox_image: pushed.image("latest"),
        runc: "/usr/sbin/runc".into(),
        cni: true,
    };
    let cd_dir = dir.path().join("containerd");
    let cd = Containerd::start(&cd_dir, &o, Duration::from_secs(30)).unwrap();
    assert!(cd.socket.exists());
    drop(cd);
    assert!(
        !cd_dir.join("containerd.sock").exists()
            || std::os::unix::net::UnixStream::connect(cd_dir.join("containerd.sock")).is_err()
    );
}
