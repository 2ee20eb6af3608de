//! `harness cri` as a user runs it, against Debian's containerd started by
//! the test with a private configuration: the run must complete and write
//! parseable JSON results. containerd's failures are findings about
//! containerd (printed, not asserted); a failure the harness charges to
//! itself is a test failure.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use cri_api::v1 as api;
use harness::cri::client::Client;
use harness::cri::containerd::{cni_conflist, Containerd, Options, CNI_BIN_DIR, CONTAINERD_BIN};
use harness::cri::registry::{self, LocalRegistry};
use harness::results::{Results, Status};

fn probe() -> std::path::PathBuf {
    harness::find_probe().expect("the probe is built beside the harness (cargo build -p probe)")
}

/// Runs `harness cri` with JSON into a file; asserts it ran (exit 0 or 1)
/// and parses the results.
fn cri(endpoint: &str, extra: &[&str]) -> (Run, Results) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cri.json");
    let out_s = out.display().to_string();
    let mut args = vec!["cri", "--endpoint", endpoint, "--format", "json", "--output", &out_s];
    args.extend_from_slice(extra);
    let run = harness(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "harness cri exited {}: {}",
        run.code,
        run.stderr
    );
    let text = std::fs::read_to_string(&out).expect("results written");
    let results: Results = serde_json::from_str(&text).expect("results parse");
    (run, results)
}

#[test]
fn bad_arguments_exit_2_naming_the_value() {
    let r = harness(&["cri", "--endpoint", "tcp://127.0.0.1:1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("tcp://127.0.0.1:1"), "{}", r.stderr);
    let r = harness(&["cri", "--endpoint", "unix:///nonexistent/cri.sock", "--timeout", "2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/cri.sock"), "{}", r.stderr);
    let r = harness(&["cri", "--endpoint", "unix:///x.sock", "--only", "no_such_group"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no_such_group"), "{}", r.stderr);
}

#[test]
fn against_containerd_the_run_completes_with_json_results() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    if !Path::new(CONTAINERD_BIN).exists() {
        eprintln!("SKIP: containerd is not installed ({CONTAINERD_BIN}); apt-get install -y containerd");
        return;
    }
    if !Path::new(registry::REGISTRY_BIN).exists() {
        eprintln!("SKIP: docker-registry is not installed; apt-get install -y docker-registry");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(&dir.path().join("registry"), Duration::from_secs(20)).unwrap();
    // containerd needs its sandbox image in the registry before its first pod.
    let pushed = registry::push_test_images(&probe(), dir.path(), &reg.host, Duration::from_secs(60)).unwrap();
    let o = Options {
        registry: reg.host.clone(),
        sandbox_image: pushed.image("latest"),
        runc: "/usr/sbin/runc".into(),
        cni: true,
    };
    let cd = Containerd::start(&dir.path().join("containerd"), &o, Duration::from_secs(30)).unwrap();
    // HARNESS_CRI_ONLY narrows the run when debugging one case.
    let only = std::env::var("HARNESS_CRI_ONLY").unwrap_or_default();
    let mut extra = vec!["--registry", &reg.host, "--timeout", "30"];
    if !only.is_empty() {
        extra.extend(["--only", &only]);
    }
    let (run, r) = cri(&cd.endpoint, &extra);
    eprintln!("{}", harness::render::table(&r));
    assert_eq!(
        run.code,
        i32::from(r.summary.failed > 0),
        "exit code follows the failures"
    );
    if only.is_empty() {
        assert_eq!(r.cases.len(), harness::cri::cases::all().len());
    }
    assert!(r.runtime.version.contains("containerd"), "{}", r.runtime.version);
    let own: Vec<String> = r
        .cases
        .iter()
        .filter(|c| c.failure.as_ref().is_some_and(|f| f.clause == "harness"))
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    assert!(own.is_empty(), "the harness failed itself: {own:#?}");
    // The basic lifecycle works in containerd 1.6: if these fail, the
    // harness is wrong, not containerd.
    for id in [
        "runtime::version",
        "pod::run_and_status",
        "container::start_running",
        "exec::sync_output_exit_code",
    ] {
        let Some(c) = r.cases.iter().find(|c| c.id == id) else {
            continue;
        };
        assert_eq!(c.status, Status::Passed, "{id}: {}", c.message);
    }
    drop(cd);
}

// ---------------------------------------------------------------------------
// Against our own server: `cri serve` with the bundled native runtime.

/// `cri serve` on a private root and socket; killed when dropped.
struct OurServer {
    child: std::process::Child,
    socket: std::path::PathBuf,
    root: std::path::PathBuf,
    /// A crash leaves the pods, and their bridge, to the next server.
    crashed: bool,
}

/// The binaries beside the harness: `cri`, `native`, `virtualized`, the
/// probe. Built when missing (another package's binaries are not built for
/// this test).
fn our_binaries() -> std::path::PathBuf {
    let dir = Path::new(HARNESS).parent().unwrap().to_path_buf();
    let bins = ["cri", "native", "sandboxed", "virtualized", "probe"];
    if !bins.iter().all(|b| dir.join(b).is_file()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.arg("build");
        for b in bins {
            cmd.args(["-p", b]);
        }
        let st = cmd.status().unwrap();
        assert!(st.success(), "building {bins:?}");
    }
    dir
}

/// The CNI bridge of the server whose root is `root`: one per root (a
/// restarted server finds its own), at most 15 characters.
fn bridge_for(root: &Path) -> String {
    let h = root
        .to_string_lossy()
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("ohs{h:08x}")
}

impl OurServer {
    /// `cri serve` on `root`, with a CNI bridge network of its own (its
    /// configuration and address leases beside the root) when Debian's
    /// plugins are installed.
    fn start(root: &Path, socket: &Path) -> OurServer {
        let _ = std::fs::remove_file(socket);
        let beside = root.parent().unwrap();
        let mut cmd = std::process::Command::new(our_binaries().join("cri"));
        cmd.args(["serve", "--socket"]).arg(socket).arg("--root").arg(root);
        if Path::new(CNI_BIN_DIR).join("bridge").exists() {
            let net_d = beside.join("net.d");
            std::fs::create_dir_all(&net_d).unwrap();
            std::fs::write(net_d.join("10-pods.conflist"), cni_conflist(beside, &bridge_for(root))).unwrap();
            let config = beside.join("cri.toml");
            std::fs::write(
                &config,
                format!("[cni]\nconf_dir = {:?}\n", net_d.display().to_string()),
            )
            .unwrap();
            cmd.arg("--config").arg(config);
        }
        let child = cmd.spawn().expect("starting cri serve");
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(std::time::Instant::now() < end, "cri serve made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        OurServer {
            child,
            socket: socket.to_path_buf(),
            root: root.to_path_buf(),
            crashed: false,
        }
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// SIGKILL, as a crash: nothing is flushed or cleaned up.
    fn crash(mut self) -> std::path::PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.crashed = true;
        self.root.clone()
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.crashed {
            return;
        }
        // The bridge plugin makes the bridge and never removes it.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &bridge_for(&self.root)])
            .output();
    }
}

/// Mounts under `dir` (snapshots, pods' /dev/shm) still in the mount table.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap_or(dir.to_path_buf());
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// Whether the machine can run our server's suite; the reason when not.
fn our_server_prerequisites() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root");
    }
    if !Path::new(registry::REGISTRY_BIN).exists() {
        return Some("docker-registry is not installed; apt-get install -y docker-registry");
    }
    if !Path::new(registry::SKOPEO_BIN).exists() {
        return Some("skopeo is not installed; apt-get install -y skopeo");
    }
    None
}

/// The failed cases of a run, with why.
fn failures(r: &Results) -> Vec<String> {
    r.cases
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect()
}

/// Runs every case against our server with `handler`: none may fail but
/// `known` (gaps the closing notes name), and exactly `by_design` (what the
/// handler declares it changes) are skipped. Every case must tear down what
/// it made.
fn our_server_passes_every_case(handler: &str, by_design: &[&str], known: &[&str]) {
    // Short paths: the runtimes' sockets live under the root.
    let dir = tempfile::Builder::new().prefix("cri").tempdir_in("/tmp").unwrap();
    let server = OurServer::start(&dir.path().join("r"), &dir.path().join("s.sock"));
    let (run, r) = cri(&server.endpoint(), &["--runtime-handler", handler, "--timeout", "60"]);
    eprintln!("{}", harness::render::table(&r));
    assert_eq!(run.code, i32::from(r.summary.failed > 0));
    assert_eq!(r.cases.len(), harness::cri::cases::all().len());
    assert!(r.runtime.version.contains("oci-harness-cri"), "{}", r.runtime.version);
    let failed: Vec<String> = failures(&r)
        .into_iter()
        .filter(|f| !known.iter().any(|k| f.starts_with(&format!("{k}:"))))
        .collect();
    assert!(
        failed.is_empty(),
        "failures against our server ({handler}): {failed:#?}"
    );
    // The CNI network is configured for these runs: the pod network case
    // runs rather than skips.
    if Path::new(CNI_BIN_DIR).join("bridge").exists() {
        let net = r.cases.iter().find(|c| c.id == "pod::network_ip").unwrap();
        assert_ne!(net.status, Status::Skipped, "{}", net.message);
    }
    let mut skipped: Vec<&str> = r
        .cases
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .map(|c| c.id.as_str())
        .collect();
    skipped.sort_unstable();
    assert_eq!(skipped, by_design, "skipped with {handler}");
    // Every case tore down what it made: no pod, container or mount is left.
    let c = Client::connect(&server.endpoint(), Duration::from_secs(10)).unwrap();
    let pods = c.list_pod_sandbox(api::ListPodSandboxRequest::default()).unwrap().items;
    let containers = c
        .list_containers(api::ListContainersRequest::default())
        .unwrap()
        .containers;
    assert!(
        pods.is_empty() && containers.is_empty(),
        "left: {pods:?} {containers:?}"
    );
    let left = mounts_under(&dir.path().join("r"));
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn our_server_passes_every_case_with_the_native_handler() {
    if let Some(why) = our_server_prerequisites() {
        eprintln!("SKIP: {why}");
        return;
    }
    our_server_passes_every_case("native", &[], &[]);
}

/// Every container's syscalls pass through its supervisor; pods are the
/// same as native's.
#[test]
fn our_server_passes_every_case_with_the_sandboxed_handler() {
    if let Some(why) = our_server_prerequisites() {
        eprintln!("SKIP: {why}");
        return;
    }
    our_server_passes_every_case("sandboxed", &[], &[]);
}

/// A pod is one VM (Kata's way): the infra container boots it and the
/// pod's containers join it. What a VM cannot keep as the host has it (the
/// node's namespaces) is skipped as the handler declares.
#[test]
fn our_server_passes_every_case_with_the_virtualized_handler() {
    if let Some(why) = our_server_prerequisites() {
        eprintln!("SKIP: {why}");
        return;
    }
    let qemu = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("qemu-system-x86_64").is_file());
    if !qemu {
        eprintln!("SKIP: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        return;
    }
    our_server_passes_every_case(
        "virtualized",
        &["security::host_ipc", "security::host_network", "security::host_pid"],
        // A pod VM has no network device: the node's pod network does not
        // reach it (Kata's tap and traffic mirroring are not built).
        &["pod::network_ip"],
    );
}

/// What a kubelet would compare across a restart.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    id: String,
    state: i32,
    created_at: i64,
    image_ref: String,
}

fn seen(c: &Client) -> (Vec<Seen>, Vec<Seen>) {
    let mut pods: Vec<Seen> = c
        .list_pod_sandbox(api::ListPodSandboxRequest::default())
        .unwrap()
        .items
        .into_iter()
        .map(|p| Seen {
            id: p.id,
            state: p.state,
            created_at: p.created_at,
            image_ref: String::new(),
        })
        .collect();
    let mut containers: Vec<Seen> = c
        .list_containers(api::ListContainersRequest::default())
        .unwrap()
        .containers
        .into_iter()
        .map(|x| Seen {
            id: x.id,
            state: x.state,
            created_at: x.created_at,
            image_ref: x.image_ref,
        })
        .collect();
    pods.sort();
    containers.sort();
    (pods, containers)
}

fn wait_state(c: &Client, id: &str, state: api::ContainerState) -> api::ContainerStatus {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = c
            .container_status(api::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .unwrap()
            .status
            .unwrap();
        if s.state == state as i32 {
            return s;
        }
        assert!(std::time::Instant::now() < end, "{id} never reached {state:?}: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn our_server_crashed_between_runs_loses_no_pod_or_container() {
    if let Some(why) = our_server_prerequisites() {
        eprintln!("SKIP: {why}");
        return;
    }
    our_binaries();
    let dir = tempfile::Builder::new().prefix("cri").tempdir_in("/tmp").unwrap();
    let root = dir.path().join("r");
    let socket = dir.path().join("s.sock");
    let reg = LocalRegistry::start(&dir.path().join("registry"), Duration::from_secs(20)).unwrap();
    let pushed = registry::push_test_images(&probe(), dir.path(), &reg.host, Duration::from_secs(60)).unwrap();
    let image = pushed.image("latest");
    let server = OurServer::start(&root, &socket);
    let c = Client::connect(&server.endpoint(), Duration::from_secs(30)).unwrap();
    c.pull_image(api::PullImageRequest {
        image: Some(api::ImageSpec {
            image: image.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();

    // What a node runs while its runtime restarts: two pods, each with a
    // running container, one with an exited and a created container too.
    let logs = dir.path().join("logs");
    let pod = |name: &str| {
        let cfg = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: name.into(),
                uid: format!("{name}-uid"),
                namespace: "restart".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: logs.join(name).display().to_string(),
            ..Default::default()
        };
        let id = c
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: "native".into(),
            })
            .unwrap()
            .pod_sandbox_id;
        (id, cfg)
    };
    let container = |pod: &(String, api::PodSandboxConfig), name: &str, args: &[&str], start: bool| {
        let id = c
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: pod.0.clone(),
                config: Some(api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(api::ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    command: vec!["/probe".into()],
                    args: args.iter().map(|s| s.to_string()).collect(),
                    log_path: format!("{name}.log"),
                    ..Default::default()
                }),
                sandbox_config: Some(pod.1.clone()),
            })
            .unwrap()
            .container_id;
        if start {
            c.start_container(api::StartContainerRequest {
                container_id: id.clone(),
            })
            .unwrap();
        }
        id
    };
    let a = pod("a");
    let b = pod("b");
    let a_run = container(&a, "sleeper", &["sleep", "inf"], true);
    let a_done = container(&a, "done", &["exit", "3"], true);
    let a_new = container(&a, "later", &["sleep", "inf"], false);
    let b_run = container(&b, "sleeper", &["sleep", "inf"], true);
    wait_state(&c, &a_run, api::ContainerState::ContainerRunning);
    wait_state(&c, &b_run, api::ContainerState::ContainerRunning);
    let done = wait_state(&c, &a_done, api::ContainerState::ContainerExited);
    assert_eq!(done.exit_code, 3);
    let before = seen(&c);
    assert_eq!((before.0.len(), before.1.len()), (2, 4), "{before:?}");
    drop(c);

    // A crash, then a new server on the same root.
    let root = server.crash();
    let server = OurServer::start(&root, &socket);
    let c = Client::connect(&server.endpoint(), Duration::from_secs(30)).unwrap();
    let after = seen(&c);
    assert_eq!(after, before, "what the restarted server lists");
    let done = wait_state(&c, &a_done, api::ContainerState::ContainerExited);
    assert_eq!((done.exit_code, done.reason.as_str()), (3, "Error"));
    // The running containers are the same processes, still reachable.
    for id in [&a_run, &b_run] {
        let r = c
            .exec_sync(api::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["/probe".into(), "true".into()],
                timeout: 10,
            })
            .unwrap();
        assert_eq!(r.exit_code, 0, "exec in {id} after the restart");
    }
    // The created container starts now, from the snapshot made before.
    c.start_container(api::StartContainerRequest {
        container_id: a_new.clone(),
    })
    .unwrap();
    wait_state(&c, &a_new, api::ContainerState::ContainerRunning);
    let img = c
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            verbose: false,
        })
        .unwrap()
        .image;
    assert!(img.is_some(), "the pulled image survives the restart");

    // A second harness run against the restarted server, beside the pods
    // made before it, passes and leaves those pods alone.
    let (_, r) = cri(
        &server.endpoint(),
        &[
            "--registry",
            &reg.host,
            "--runtime-handler",
            "native",
            "--timeout",
            "60",
        ],
    );
    eprintln!("{}", harness::render::table(&r));
    let failed = failures(&r);
    assert!(failed.is_empty(), "failures after the restart: {failed:#?}");
    let still = seen(&c);
    assert_eq!(
        (still.0.iter().map(|s| &s.id).collect::<Vec<_>>(), still.1.len()),
        (before.0.iter().map(|s| &s.id).collect::<Vec<_>>(), 4),
        "the pods made before the run are still there"
    );

    // And everything made before the crash can be torn down cleanly.
    for (id, _) in [&a, &b] {
        c.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .unwrap();
        c.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .unwrap();
    }
    let empty = seen(&c);
    assert!(empty.0.is_empty() && empty.1.is_empty(), "{empty:?}");
    let left = mounts_under(&root);
    assert!(left.is_empty(), "mounts left: {left:?}");
    drop(server);
}
