//! The image store driven as the CRI server drives it: OCI layouts and
//! archives imported, images pulled from registries (an in-test one that
//! can demand a token or serve a corrupted blob, and Debian's
//! docker-registry with the image pushed by skopeo), snapshots mounted and
//! everything removed again. Needs root (overlay mounts).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cri::images::{Auth, Error, Store};
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn sha(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// A layer: files (path, content, mode) and whiteouts of lower files.
struct Layer {
    files: Vec<(String, Vec<u8>, u32)>,
    whiteouts: Vec<String>,
}

/// An image as blobs: what an OCI layout and a registry both serve.
struct TestImage {
    blobs: HashMap<String, Vec<u8>>,
    manifest: String,
    config: String,
    layers: Vec<String>,
}

fn build_image(layers: &[Layer], entrypoint: &[&str], user: &str) -> TestImage {
    let mut blobs = HashMap::new();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for l in layers {
        let mut b = tar::Builder::new(Vec::new());
        let mut put = |path: &str, data: &[u8], mode: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, path, data).unwrap();
        };
        for (p, data, mode) in &l.files {
            put(p, data, *mode);
        }
        for w in &l.whiteouts {
            let (dir, name) = w.rsplit_once('/').unwrap_or(("", w.as_str()));
            let p = if dir.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{dir}/.wh.{name}")
            };
            put(&p, b"", 0o600);
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        diff_ids.push(sha(&tar));
        let d = sha(&gz);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
        layer_digests.push(d.clone());
        blobs.insert(d, gz);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/", "FROM_IMAGE=1"], "WorkingDir": "/", "User": user},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_d = sha(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let manifest_d = sha(&manifest);
    blobs.insert(config_d.clone(), config);
    blobs.insert(manifest_d.clone(), manifest);
    TestImage {
        blobs,
        manifest: manifest_d,
        config: config_d,
        layers: layer_digests,
    }
}

impl TestImage {
    /// An OCI layout directory whose index names the manifest `ref_name`.
    fn write_layout(&self, dir: &Path, ref_name: Option<&str>) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for (d, b) in &self.blobs {
            std::fs::write(dir.join("blobs/sha256").join(&d[7..]), b).unwrap();
        }
        let mut desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": self.manifest,
            "size": self.blobs[&self.manifest].len()});
        if let Some(n) = ref_name {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": n});
        }
        let index =
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// Two layers: /etc/passwd and /etc/old, then the probe and a whiteout of /etc/old.
fn probe_image() -> (TestImage, Vec<u8>) {
    let bytes = std::fs::read(probe_binary()).unwrap();
    let img = build_image(
        &[
            Layer {
                files: vec![
                    ("etc/passwd".into(), b"root:x:0:0::/:/probe\n".to_vec(), 0o644),
                    ("etc/old".into(), b"lower".to_vec(), 0o644),
                ],
                whiteouts: vec![],
            },
            Layer {
                files: vec![("probe".into(), bytes.clone(), 0o755)],
                whiteouts: vec!["etc/old".into()],
            },
        ],
        &["/probe"],
        "1000:1000",
    );
    (img, bytes)
}

/// The workspace's static probe: `$HARNESS_PROBE`, or built beside this test.
fn probe_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HARNESS_PROBE") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps.join("probe"), deps.parent().unwrap().join("probe")]
        .into_iter()
        .find(|p| p.is_file())
        .expect("the probe binary is built beside the tests (cargo build -p probe, or set HARNESS_PROBE)")
}

fn mounts_under(root: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = root.to_string_lossy().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root))
        .map(str::to_string)
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Nothing but the empty directories (and lock files) of an empty store.
fn assert_store_empty(store: &Store) {
    let root = store.root();
    assert!(mounts_under(root).is_empty(), "mounts left: {:?}", mounts_under(root));
    for sub in ["blobs/sha256", "ingest", "snapshots", "tmp"] {
        assert!(
            entries(&root.join(sub)).is_empty(),
            "{sub} not empty: {:?}",
            entries(&root.join(sub))
        );
    }
    let layers: Vec<String> = entries(&root.join("layers"))
        .into_iter()
        .filter(|l| l != "empty")
        .collect();
    assert!(layers.is_empty(), "layers left: {layers:?}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn import_a_layout_and_an_archive_then_snapshot_and_remove() {
    let (img, probe) = probe_image();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    img.write_layout(&layout, Some("v1"));
    let store = Store::open(&tmp.path().join("store")).unwrap();

    let refs = store.import(&layout, Some("localhost/probe")).unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].id, img.config);
    // ref.name is a tag: it goes on the given name.
    assert_eq!(refs[0].repo_tag.as_deref(), Some("localhost/probe:v1"));
    assert_eq!(refs[0].repo_digest, Some(format!("localhost/probe@{}", img.manifest)));

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uid, Some(1000));
    let size: usize = img.blobs.values().map(Vec::len).sum();
    assert_eq!(listed[0].size, size as u64);
    let by_digest = format!("localhost/probe@{}", img.manifest);
    for by in [
        "localhost/probe:v1",
        &img.config,
        &img.config[7..],
        &img.config[7..19],
        &by_digest,
    ] {
        assert_eq!(
            store.status(by).unwrap().map(|i| i.id),
            Some(img.config.clone()),
            "status by {by}"
        );
    }
    assert_eq!(store.status("localhost/probe:v2").unwrap(), None);
    assert_eq!(store.status("docker.io/library/nothing").unwrap(), None);
    assert!(matches!(store.status("Bad Name"), Err(Error::Invalid { .. })));
    let config = store.image_config("localhost/probe:v1").unwrap();
    assert_eq!(config.entrypoint, vec!["/probe"]);
    assert_eq!(config.env, vec!["PATH=/", "FROM_IMAGE=1"]);
    assert_eq!(config.user, "1000:1000");
    assert!(matches!(
        store.image_config("localhost/absent"),
        Err(Error::NotFound(_))
    ));

    // The same image from an archive, named by its annotation alone.
    let layout2 = tmp.path().join("layout2");
    img.write_layout(&layout2, Some("example.com/team/probe:2"));
    let archive = tmp.path().join("image.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout2)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let refs = store.import(&archive, None).unwrap();
    assert_eq!(refs[0].repo_tag.as_deref(), Some("example.com/team/probe:2"));
    let image = store.status(&img.config).unwrap().unwrap();
    assert_eq!(image.repo_tags, vec!["localhost/probe:v1", "example.com/team/probe:2"]);
    assert!(
        entries(&store.root().join("tmp")).is_empty(),
        "the archive's extraction is cleaned up"
    );
    assert_eq!(
        entries(&store.root().join("layers")).len(),
        2,
        "layers are unpacked once"
    );

    // Two containers on one image share its layers, each with its own upper.
    let a = store.snapshot("localhost/probe:v1", "ctr-a").unwrap();
    let b = store.snapshot(&img.config, "ctr-b").unwrap();
    assert_eq!(std::fs::read(a.join("probe")).unwrap(), probe);
    assert_eq!(
        std::fs::read_to_string(b.join("etc/passwd")).unwrap(),
        "root:x:0:0::/:/probe\n"
    );
    assert!(
        !a.join("etc/old").exists(),
        "the upper layer's whiteout hides the lower file"
    );
    std::fs::write(a.join("written"), b"by a").unwrap();
    assert!(!b.join("written").exists());
    assert!(store.root().join("snapshots/ctr-a/upper/written").exists());
    // Asking again for a mounted snapshot of the same image gives it back.
    assert_eq!(store.snapshot("localhost/probe:v1", "ctr-a").unwrap(), a);
    assert!(matches!(
        store.snapshot("localhost/probe:v1", "../x"),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        store.snapshot("localhost/absent", "ctr-c"),
        Err(Error::NotFound(_))
    ));
    assert!(!store.root().join("snapshots/ctr-c").exists());
    let fs = store.fs_info().unwrap();
    assert!(fs.used_bytes >= probe.len() as u64 && fs.inodes_used > 10, "{fs:?}");

    // Removing the image while containers use it drops its names; its layers stay for them.
    store.remove("localhost/probe:v1").unwrap();
    assert!(store.list().unwrap().is_empty(), "all names of the image go");
    store.remove("localhost/probe:v1").unwrap();
    assert_eq!(std::fs::read(b.join("probe")).unwrap(), probe);
    store.remove_snapshot("ctr-a").unwrap();
    store.remove_snapshot("ctr-a").unwrap();
    assert!(!store.root().join("snapshots/ctr-a").exists());
    assert_eq!(
        entries(&store.root().join("layers")).len(),
        2,
        "ctr-b still uses the layers"
    );
    store.remove_snapshot("ctr-b").unwrap();
    assert_store_empty(&store);
}

/// An HTTP registry serving one repository (`probe`) from memory, counting
/// blob requests; optionally demanding a bearer token (earned with the basic
/// credentials u:p) or serving one blob with other bytes.
struct TestRegistry {
    port: u16,
    blob_gets: Arc<Mutex<HashMap<String, usize>>>,
}

struct Served {
    blobs: HashMap<String, Vec<u8>>,
    manifest: String,
    tag: String,
    bearer: bool,
    port: u16,
    gets: Arc<Mutex<HashMap<String, usize>>>,
}

fn start_registry(img: &TestImage, tag: &str, bearer: bool, corrupt: Option<String>) -> TestRegistry {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut blobs = img.blobs.clone();
    if let Some(d) = corrupt {
        blobs.get_mut(&d).unwrap()[20] ^= 0xff;
    }
    let blob_gets = Arc::new(Mutex::new(HashMap::new()));
    let served = Arc::new(Served {
        blobs,
        manifest: img.manifest.clone(),
        tag: tag.to_string(),
        bearer,
        port,
        gets: blob_gets.clone(),
    });
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let served = served.clone();
            std::thread::spawn(move || serve(conn, &served));
        }
    });
    TestRegistry { port, blob_gets }
}

fn serve(mut conn: TcpStream, s: &Served) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut auth = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = v.trim().to_string();
            }
        }
    }
    let mut reply = |status: &str, ctype: &str, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(body);
    };
    if path.starts_with("/token?") {
        if auth == "Basic dTpw" && path.contains("scope=repository%3Aprobe%3Apull") {
            return reply("200 OK", "application/json", "", br#"{"token":"t0k"}"#);
        }
        return reply("401 Unauthorized", "application/json", "", b"{}");
    }
    if s.bearer && auth != "Bearer t0k" {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{}/token\",service=\"test\",scope=\"repository:probe:pull\"\r\n",
            s.port
        );
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}"#;
        return reply("401 Unauthorized", "application/json", &challenge, body);
    }
    if let Some(obj) = path.strip_prefix("/v2/probe/manifests/") {
        if obj == s.tag || obj == s.manifest {
            return reply(
                "200 OK",
                "application/vnd.oci.image.manifest.v1+json",
                "",
                &s.blobs[&s.manifest],
            );
        }
    } else if let Some(d) = path.strip_prefix("/v2/probe/blobs/") {
        if let Some(b) = s.blobs.get(d) {
            *s.gets.lock().unwrap().entry(d.to_string()).or_default() += 1;
            return reply("200 OK", "application/octet-stream", "", b);
        }
    }
    let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#;
    reply("404 Not Found", "application/json", "", body)
}

#[test]
fn concurrent_pulls_with_a_bearer_token_download_each_blob_once() {
    let (img, probe) = probe_image();
    let reg = start_registry(&img, "v1", true, None);
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("store")).unwrap());
    let reference = format!("127.0.0.1:{}/probe:v1", reg.port);

    let unauth = store.pull(&reference, None).unwrap_err();
    assert!(matches!(unauth, Error::Registry { status: 401, .. }), "{unauth}");

    let auth = Auth {
        username: "u".into(),
        password: "p".into(),
        ..Default::default()
    };
    let pulls: Vec<_> = (0..3)
        .map(|_| {
            let (store, reference, auth) = (store.clone(), reference.clone(), auth.clone());
            std::thread::spawn(move || store.pull(&reference, Some(&auth)))
        })
        .collect();
    for p in pulls {
        let r = p.join().unwrap().unwrap();
        assert_eq!(r.id, img.config);
        assert_eq!(r.repo_tag, Some(reference.clone()));
        assert_eq!(
            r.repo_digest,
            Some(format!("127.0.0.1:{}/probe@{}", reg.port, img.manifest))
        );
    }
    let gets = reg.blob_gets.lock().unwrap().clone();
    for d in img.layers.iter().chain([&img.config]) {
        assert_eq!(gets.get(d), Some(&1), "blob {d} fetched {:?} times", gets.get(d));
    }
    assert_eq!(store.list().unwrap().len(), 1);
    let by_digest = format!("127.0.0.1:{}/probe@{}", reg.port, img.manifest);
    assert_eq!(store.pull(&by_digest, Some(&auth)).unwrap().id, img.config);
    let rootfs = store.snapshot(&reference, "pulled").unwrap();
    assert_eq!(std::fs::read(rootfs.join("probe")).unwrap(), probe);
    store.remove_snapshot("pulled").unwrap();

    let missing = store
        .pull(&format!("127.0.0.1:{}/probe:nope", reg.port), Some(&auth))
        .unwrap_err();
    assert!(
        matches!(missing, Error::Registry { status: 404, .. }) && missing.to_string().contains("MANIFEST_UNKNOWN"),
        "{missing}"
    );
    store.remove(&reference).unwrap();
    assert_store_empty(&store);
}

#[test]
fn a_corrupted_blob_fails_the_pull_and_leaves_nothing() {
    let (img, _) = probe_image();
    let reg = start_registry(&img, "v1", false, Some(img.layers[1].clone()));
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store
        .pull(&format!("localhost:{}/probe:v1", reg.port), None)
        .unwrap_err();
    match &err {
        Error::DigestMismatch { expected, got, .. } => {
            assert_eq!(expected, &img.layers[1]);
            assert_ne!(got, &img.layers[1]);
        }
        e => panic!("expected a digest mismatch, got {e}"),
    }
    assert!(store.list().unwrap().is_empty());
    assert!(entries(&store.root().join("ingest")).is_empty());
    assert!(!entries(&store.root().join("blobs/sha256")).contains(&img.layers[1][7..].to_string()));
    // A pinned digest the registry does not have is an error from the registry.
    let other = format!("localhost:{}/probe@{}", reg.port, img.config);
    let err = store.pull(&other, None).unwrap_err();
    assert!(matches!(err, Error::Registry { status: 404, .. }), "{err}");
}

/// Debian's docker-registry on a loopback port, its config and storage in a
/// temporary directory; stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_docker_registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("storage").display()
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
        .spawn()
        .expect("docker-registry is installed (ci/packages.sh)");
    let reg = Registry { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200") {
                return reg;
            }
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pull_from_docker_registry_after_a_skopeo_push() {
    let (img, probe) = probe_image();
    let reg = start_docker_registry();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    img.write_layout(&layout, Some("v1"));
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://127.0.0.1:{}/probe:v1", reg.port))
        .output()
        .expect("skopeo is installed (ci/packages.sh)");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::open(&tmp.path().join("store")).unwrap();
    let reference = format!("127.0.0.1:{}/probe:v1", reg.port);
    let pulled = store.pull(&reference, None).unwrap();
    // skopeo keeps the blobs as they are, so the id is the config's digest.
    assert_eq!(pulled.id, img.config);
    let images = store.list().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, vec![reference.clone()]);
    assert_eq!(images[0].repo_digests, vec![pulled.repo_digest.clone().unwrap()]);
    assert_eq!(
        store.status(pulled.repo_digest.as_ref().unwrap()).unwrap().unwrap().id,
        img.config
    );
    assert_eq!(store.image_config(&pulled.id).unwrap().entrypoint, vec!["/probe"]);

    let rootfs = store.snapshot(&reference, "probe-ctr").unwrap();
    assert!(mounts_under(store.root()).contains(&rootfs.to_string_lossy().to_string()));
    assert_eq!(std::fs::read(rootfs.join("probe")).unwrap(), probe);
    store.remove_snapshot("probe-ctr").unwrap();
    store.remove(&pulled.id).unwrap();
    assert_eq!(store.status(&reference).unwrap(), None);
    assert_store_empty(&store);
}
