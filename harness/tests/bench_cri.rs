//! `harness bench --cri` as a user runs it, against two real endpoints in
//! the same run: our `cri serve` (built beside the harness) and Debian's
//! containerd started with a private configuration. The JSON must carry
//! every CRI figure's raw samples for both, the ratios to the first, and
//! nothing of the run may be left listed by either endpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use cri_api::v1 as api;
use harness::bench::results::{BenchResults, Phase, Unit};
use harness::cri::client::Client;
use harness::cri::containerd::{cni_conflist, Containerd, Options, CONTAINERD_BIN};
use harness::cri::ctx::RUN_LABEL;
use harness::cri::registry::{self, LocalRegistry};

fn bin_dir() -> PathBuf {
    Path::new(HARNESS).parent().unwrap().to_path_buf()
}

/// `cri`, the native runtime and the probe beside the harness, built when
/// missing (cargo builds only the harness's own binaries for its tests).
fn ensure_bins() {
    let dir = bin_dir();
    if ["cri", "native", "probe"].iter().all(|b| dir.join(b).is_file()) {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-p", "cri", "-p", "native", "-p", "probe"])
        .status()
        .unwrap();
    assert!(st.success(), "building cri, native and probe");
}

/// `cri serve` on a private socket and root; SIGTERM on drop.
struct Ours {
    child: Child,
    endpoint: String,
    /// Its own CNI bridge, removed on drop.
    bridge: Option<String>,
}

impl Ours {
    /// With `cni`, pods get the same CNI network as containerd's in the
    /// run (bridge and host-local, on a bridge of their own), so both
    /// servers' pod starts do the same network work.
    fn start(dir: &Path, cni: bool) -> Ours {
        let socket = dir.join("cri.sock");
        let mut cmd = Command::new(bin_dir().join("cri"));
        cmd.args(["serve", "--socket"])
            .arg(&socket)
            .arg("--root")
            .arg(dir.join("root"));
        let bridge = cni.then(|| format!("ohb{:x}", std::process::id() & 0xfffff));
        if let Some(b) = &bridge {
            let net_d = dir.join("net.d");
            std::fs::create_dir_all(&net_d).unwrap();
            std::fs::write(net_d.join("10-pods.conflist"), cni_conflist(dir, b)).unwrap();
            let config = dir.join("cri.toml");
            std::fs::write(
                &config,
                format!("[cni]\nconf_dir = {:?}\n", net_d.display().to_string()),
            )
            .unwrap();
            cmd.arg("--config").arg(config);
        }
        let child = cmd
            .stderr(std::fs::File::create(dir.join("cri.log")).unwrap())
            .spawn()
            .expect("starting cri serve");
        let end = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < end, "cri serve did not listen on {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Ours {
            child,
            endpoint: format!("unix://{}", socket.display()),
            bridge,
        }
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        // SAFETY: kill() with our unreaped child's pid and a signal number.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        if let Some(b) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", b]).output();
        }
    }
}

/// Pods and containers an endpoint still lists under a bench run's label
/// (any run's: the label's value is the run's token).
fn listed(endpoint: &str) -> Vec<String> {
    let c = Client::connect(endpoint, Duration::from_secs(10)).unwrap();
    let mut v = Vec::new();
    let pods = c.list_pod_sandbox(api::ListPodSandboxRequest::default()).unwrap();
    v.extend(
        pods.items
            .into_iter()
            .filter(|p| p.labels.contains_key(RUN_LABEL))
            .map(|p| format!("pod {}", p.id)),
    );
    let ctrs = c.list_containers(api::ListContainersRequest::default()).unwrap();
    v.extend(
        ctrs.containers
            .into_iter()
            .filter(|x| x.labels.contains_key(RUN_LABEL))
            .map(|x| format!("container {}", x.id)),
    );
    v
}

#[test]
fn bad_cri_arguments_exit_2_naming_the_value() {
    let r = harness(&["bench", "--cri", "tcp://127.0.0.1:1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("tcp://127.0.0.1:1"), "{}", r.stderr);
    let r = harness(&["bench", "--cri", "a=unix:///x.sock", "--cri", "a=unix:///y.sock"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("\"a\""), "{}", r.stderr);
    let r = harness(&["bench", "--cri", "unix:///x.sock", "--phases", "lifecycle"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--runtime"), "{}", r.stderr);
    let r = harness(&["bench", "--cri", "unix:///x.sock", "--cri-pods", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--cri-pods"), "{}", r.stderr);
}

#[test]
fn an_endpoint_that_is_not_there_is_missing_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let r = harness(&[
        "bench",
        "--cri",
        "gone=unix:///nonexistent/cri.sock",
        "-n",
        "1",
        "--timeout",
        "2",
        "--registry",
        "127.0.0.1:1",
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let b: BenchResults = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(b.metrics.is_empty());
    let m = b
        .missing
        .iter()
        .find(|m| m.runtime == "gone")
        .expect("the endpoint is missing");
    assert_eq!(m.phase, Phase::Cri);
    assert!(m.reason.contains("/nonexistent/cri.sock"), "{}", m.reason);
    assert_eq!(b.runtimes[0].path, "unix:///nonexistent/cri.sock");
}

#[test]
fn ours_and_containerd_in_the_same_run_with_raw_samples() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    for (bin, pkg) in [
        (CONTAINERD_BIN, "containerd"),
        (registry::REGISTRY_BIN, "docker-registry"),
        (registry::SKOPEO_BIN, "skopeo"),
    ] {
        if !Path::new(bin).exists() {
            eprintln!("SKIP: {bin} is not installed; apt-get install -y {pkg}");
            return;
        }
    }
    ensure_bins();
    let probe = bin_dir().join("probe");
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(&dir.path().join("registry"), Duration::from_secs(20)).unwrap();
    // containerd's sandbox image must be in the registry before its first pod.
    let pushed = registry::push_test_images(&probe, dir.path(), &reg.host, Duration::from_secs(60)).unwrap();
    let o = Options {
        registry: reg.host.clone(),
        sandbox_image: pushed.image("latest"),
        runc: "/usr/sbin/runc".into(),
        cni: true,
    };
    let cd = Containerd::start(&dir.path().join("containerd"), &o, Duration::from_secs(30)).unwrap();
    let ours_dir = dir.path().join("ours");
    std::fs::create_dir_all(&ours_dir).unwrap();
    let host_network = std::env::var_os("HARNESS_BENCH_CRI_HOST_NETWORK").is_some();
    let ours = Ours::start(&ours_dir, !host_network);
    // HARNESS_BENCH_CRI_N sets the iterations, for a real run of the figures.
    let n = std::env::var("HARNESS_BENCH_CRI_N").unwrap_or_else(|_| "3".into());
    let out = dir.path().join("bench.json");
    let ours_spec = format!("ours={}", ours.endpoint);
    let cd_spec = format!("containerd={}", cd.endpoint);
    let mut args = vec![
        "bench",
        "--cri",
        &ours_spec,
        "--cri",
        &cd_spec,
        "-n",
        &n,
        "--warmup",
        "1",
        "--cri-pods",
        "3",
        "--cri-rounds",
        "2",
        "--registry",
        &reg.host,
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ];
    // HARNESS_BENCH_CRI_HOST_NETWORK=1: pods in the host's network (no CNI).
    if host_network {
        args.push("--cri-host-network");
    }
    let run = harness(&args);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|_| panic!("no results; stderr: {}", run.stderr));
    let b: BenchResults = serde_json::from_str(&text).expect("results parse");
    eprintln!("{}", harness::render::bench::table(&b));
    assert!(b.missing.is_empty(), "not measured: {:#?}", b.missing);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<&str> = b.runtimes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ours", "containerd"]);
    assert!(
        b.runtimes[1].version.contains("containerd"),
        "{}",
        b.runtimes[1].version
    );
    assert_eq!(b.runtimes[0].path, ours.endpoint);
    assert_eq!(b.settings.cri.as_ref().unwrap().endpoints, ["ours", "containerd"]);
    let n: usize = n.parse().unwrap();
    let ids: Vec<String> = harness::bench::CRI_OPS
        .iter()
        .map(|op| format!("cri.{op}"))
        .chain(["cri.pull".to_string()])
        .collect();
    for name in ["ours", "containerd"] {
        for id in &ids {
            let m = b.metric(id, name).unwrap_or_else(|| panic!("{id} of {name}"));
            assert_eq!(m.phase, Phase::Cri);
            assert_eq!(m.unit, Unit::Ns);
            assert_eq!(m.samples.len(), n, "{id} of {name}");
            assert!(m.samples.iter().all(|&s| s > 0.0), "{id} of {name}: {:?}", m.samples);
            assert!(m.summary.is_some());
        }
        let t = b.metric("cri.parallel.throughput", name).unwrap();
        assert_eq!((t.unit, t.samples.len()), (Unit::PodsPerSec, 2), "{name}");
        let p = b.metric("cri.parallel.pod_start", name).unwrap();
        assert_eq!(p.samples.len(), 2 * 3, "{name}: every pod of every round");
        // The end to end start holds its three calls.
        let whole = &b.metric(harness::bench::CRI_POD_START, name).unwrap().samples;
        let parts: Vec<f64> = (0..n)
            .map(|i| {
                ["cri.run_pod", "cri.create", "cri.start"]
                    .iter()
                    .map(|id| b.metric(id, name).unwrap().samples[i])
                    .sum()
            })
            .collect();
        for (w, p) in whole.iter().zip(&parts) {
            assert!(w >= p, "{name}: pod start {w} < its calls' sum {p}");
        }
    }
    let r = b
        .metric(harness::bench::CRI_POD_START, "containerd")
        .unwrap()
        .ratio
        .as_ref();
    assert_eq!(r.expect("containerd has a ratio to ours").baseline, "ours");
    assert!(b.metric(harness::bench::CRI_POD_START, "ours").unwrap().ratio.is_none());
    assert!(b.leftovers.is_empty(), "{:#?}", b.leftovers);
    assert_eq!(listed(&ours.endpoint), Vec::<String>::new());
    assert_eq!(listed(&cd.endpoint), Vec::<String>::new());
    if let Ok(path) = std::env::var("HARNESS_BENCH_CRI_KEEP") {
        std::fs::write(path, &text).unwrap();
    }
    drop(ours);
    drop(cd);
}
