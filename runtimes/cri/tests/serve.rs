//! Drives a real `cri serve` over its unix socket with the cri-api client:
//! a pod and a container (directory rootfs holding the static probe) under
//! the bundled native runtime, logs, exec, a server restart in the middle,
//! stop/remove, and the status codes of bad input.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cri_api::v1 as pb;
use cri_api::v1::image_service_client::ImageServiceClient;
use cri_api::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cri")).parent().unwrap().to_path_buf()
}

/// The native runtime and the probe beside `cri`, built when missing.
fn ensure_bins() {
    let dir = bin_dir();
    if dir.join("native").is_file() && dir.join("probe").is_file() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-p", "native", "-p", "probe"])
        .status()
        .unwrap();
    assert!(st.success(), "building native and probe");
}

struct Server {
    child: Child,
    socket: PathBuf,
}

impl Server {
    fn start(root: &Path, socket: &Path) -> Server {
        Server::start_with(root, socket, &[])
    }

    fn start_with(root: &Path, socket: &Path, extra: &[&str]) -> Server {
        let _ = std::fs::remove_file(socket);
        let child = Command::new(env!("CARGO_BIN_EXE_cri"))
            .args(["serve", "--socket"])
            .arg(socket)
            .arg("--root")
            .arg(root)
            .args(extra)
            .spawn()
            .expect("starting cri serve");
        let end = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < end, "cri serve did not create {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            socket: socket.to_path_buf(),
        }
    }

    async fn client(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    async fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel().await)
    }

    async fn channel(&self) -> Channel {
        let path = self.socket.clone();
        let channel = Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await
            .expect("connecting to cri");
        channel
    }

    fn stop(mut self) {
        // SAFETY: kill() with our child's pid and a signal number.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy(bin_dir().join("probe"), root.join("probe")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    root
}

fn pod_config(dir: &Path, name: &str) -> pb::PodSandboxConfig {
    pb::PodSandboxConfig {
        metadata: Some(pb::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "test".into(),
            attempt: 0,
        }),
        hostname: "podhost".into(),
        log_directory: dir.join("logs").display().to_string(),
        labels: [("app".to_string(), name.to_string())].into(),
        annotations: [("note".to_string(), "kept".to_string())].into(),
        ..Default::default()
    }
}

fn container_config(image: &Path, name: &str, args: &[&str]) -> pb::ContainerConfig {
    pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(pb::ImageSpec {
            image: image.display().to_string(),
            ..Default::default()
        }),
        command: vec!["/probe".into()],
        args: args.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        labels: [("c".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

async fn wait_state(c: &mut RuntimeServiceClient<Channel>, id: &str, state: pb::ContainerState) -> pb::ContainerStatus {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c
            .container_status(pb::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if s.state == state as i32 {
            return s;
        }
        assert!(Instant::now() < end, "container {id} never reached {state:?}: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_and_container_lifecycle_across_a_restart() {
    ensure_bins();
    let dir = tempfile::tempdir().unwrap();
    let image = rootfs(dir.path());
    let root = dir.path().join("state");
    let socket = dir.path().join("cri.sock");
    let server = Server::start(&root, &socket);
    let mut c = server.client().await;

    let v = c
        .version(pb::VersionRequest { version: "v1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_api_version, "v1");
    let st = c
        .status(pb::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    assert!(st
        .status
        .unwrap()
        .conditions
        .iter()
        .any(|x| x.r#type == "RuntimeReady" && x.status));

    let pod_cfg = pod_config(dir.path(), "p1");
    let pod = c
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: "native".into(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let ps = c
        .pod_sandbox_status(pb::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(ps.state, pb::PodSandboxState::SandboxReady as i32);
    assert_eq!(ps.annotations.get("note").map(String::as_str), Some("kept"));

    // A long-running container, and one that prints and exits.
    let sleeper = c
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(&image, "sleeper", &["sleep", "600"])),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .expect("CreateContainer sleeper")
        .into_inner()
        .container_id;
    wait_state(&mut c, &sleeper, pb::ContainerState::ContainerCreated).await;
    c.start_container(pb::StartContainerRequest {
        container_id: sleeper.clone(),
    })
    .await
    .expect("StartContainer");
    wait_state(&mut c, &sleeper, pb::ContainerState::ContainerRunning).await;

    let echo = c
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(&image, "echo", &["echo", "hello from cri"])),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .expect("CreateContainer echo")
        .into_inner()
        .container_id;
    c.start_container(pb::StartContainerRequest {
        container_id: echo.clone(),
    })
    .await
    .unwrap();
    let done = wait_state(&mut c, &echo, pb::ContainerState::ContainerExited).await;
    assert_eq!(done.exit_code, 0);
    assert_eq!(done.reason, "Completed");
    let log = std::fs::read_to_string(dir.path().join("logs/echo/0.log")).unwrap();
    let line = log.lines().next().expect("a log line");
    let fields: Vec<&str> = line.splitn(4, ' ').collect();
    assert!(fields[0].ends_with('Z') && fields[0].contains('T'), "{line}");
    assert_eq!(&fields[1..], ["stdout", "F", "hello from cri"], "{line}");

    let ex = c
        .exec_sync(pb::ExecSyncRequest {
            container_id: sleeper.clone(),
            cmd: vec!["/probe".into(), "echo".into(), "in exec".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(ex.exit_code, 0, "stderr: {}", String::from_utf8_lossy(&ex.stderr));
    assert_eq!(String::from_utf8_lossy(&ex.stdout).trim(), "in exec");

    // Restart the server: the pod and both containers are found again,
    // the sleeper still running.
    drop(c);
    server.stop();
    let server = Server::start(&root, &socket);
    let mut c = server.client().await;
    let pods = c
        .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(
        pods.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&pod)
    );
    assert_eq!(pods[0].state, pb::PodSandboxState::SandboxReady as i32);
    let list = c
        .list_containers(pb::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(list.len(), 2);
    let running = c
        .list_containers(pb::ListContainersRequest {
            filter: Some(pb::ContainerFilter {
                state: Some(pb::ContainerStateValue {
                    state: pb::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(
        running.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&sleeper)
    );

    // Stop with a grace period: the probe's sleep dies on SIGTERM.
    c.stop_container(pb::StopContainerRequest {
        container_id: sleeper.clone(),
        timeout: 5,
    })
    .await
    .unwrap();
    let stopped = wait_state(&mut c, &sleeper, pb::ContainerState::ContainerExited).await;
    assert_ne!(stopped.exit_code, 0);
    c.remove_container(pb::RemoveContainerRequest {
        container_id: echo.clone(),
    })
    .await
    .unwrap();
    c.remove_container(pb::RemoveContainerRequest {
        container_id: echo.clone(),
    })
    .await
    .expect("idempotent remove");

    c.stop_pod_sandbox(pb::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    c.stop_pod_sandbox(pb::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("idempotent stop");
    // A stopped pod takes no new containers.
    let e = c
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(&image, "late", &["true"])),
            sandbox_config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    c.remove_pod_sandbox(pb::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    c.remove_pod_sandbox(pb::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("idempotent");
    assert!(c
        .list_containers(pb::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());

    // Nothing left: no state directories, no shm mount, no processes.
    let left: Vec<_> = std::fs::read_dir(root.join("pods"))
        .unwrap()
        .chain(std::fs::read_dir(root.join("containers")).unwrap())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "a mount under {} is left",
        root.display()
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_right_codes() {
    ensure_bins();
    let dir = tempfile::tempdir().unwrap();
    let image = rootfs(dir.path());
    let server = Server::start(&dir.path().join("state"), &dir.path().join("cri.sock"));
    let mut c = server.client().await;

    let e = c
        .container_status(pb::ContainerStatusRequest {
            container_id: "nope".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .pod_sandbox_status(pb::PodSandboxStatusRequest {
            pod_sandbox_id: "nope".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .start_container(pb::StartContainerRequest {
            container_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .run_pod_sandbox(pb::RunPodSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("config"), "{}", e.message());
    let e = c
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(pod_config(dir.path(), "x")),
            runtime_handler: "no-such-handler".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: "nope".into(),
            config: Some(container_config(&image, "c", &["true"])),
            sandbox_config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Stop and remove of unknown pods succeed (kubelet retries them).
    c.stop_pod_sandbox(pb::StopPodSandboxRequest {
        pod_sandbox_id: "nope".into(),
    })
    .await
    .unwrap();
    c.remove_pod_sandbox(pb::RemovePodSandboxRequest {
        pod_sandbox_id: "nope".into(),
    })
    .await
    .unwrap();

    // A missing image in a real pod: NotFound, and nothing left behind.
    let pod = c
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(pod_config(dir.path(), "bad")),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let e = c
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(&dir.path().join("no-image"), "c", &["true"])),
            sandbox_config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let mut missing_mount = container_config(&image, "m", &["true"]);
    missing_mount.mounts.push(pb::Mount {
        container_path: "/data".into(),
        host_path: "/nonexistent/host/path".into(),
        ..Default::default()
    });
    let e = c
        .create_container(pb::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(missing_mount),
            sandbox_config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(c
        .list_containers(pb::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("state/containers")).unwrap().count(),
        0
    );
    c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: pod })
        .await
        .unwrap();
    server.stop();
}

fn spec(image: &str) -> Option<pb::ImageSpec> {
    Some(pb::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn image_service_answers_from_the_store_with_the_right_codes() {
    ensure_bins();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), &dir.path().join("cri.sock"));
    let mut i = server.images().await;
    let mut c = server.client().await;
    // Nothing listens on port 1 of loopback (a registry reached over http).
    let unreachable = "127.0.0.1:1/probe:latest";

    let st = i
        .image_status(pb::ImageStatusRequest {
            image: spec(unreachable),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_none(), "an absent image is an empty answer: {st:?}");
    let e = i
        .image_status(pb::ImageStatusRequest {
            image: None,
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = i
        .pull_image(pb::PullImageRequest {
            image: spec("Not/A Reference"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = i
        .pull_image(pb::PullImageRequest {
            image: spec(unreachable),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("127.0.0.1:1"), "{}", e.message());
    i.remove_image(pb::RemoveImageRequest {
        image: spec(unreachable),
    })
    .await
    .unwrap();
    let all = i
        .list_images(pb::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert!(all.is_empty(), "{all:?}");
    let fs = i
        .image_fs_info(pb::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .image_filesystems;
    let mountpoint = fs[0].fs_id.as_ref().unwrap().mountpoint.clone();
    assert!(mountpoint.ends_with("state/images"), "{mountpoint}");
    assert!(fs[0].used_bytes.is_some() && fs[0].timestamp > 0);

    // CreateContainer with an image the store lacks, or a malformed one.
    let pod = c
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(pod_config(dir.path(), "img")),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    for (image, code) in [
        (unreachable, Code::NotFound),
        ("Not/A Reference", Code::InvalidArgument),
    ] {
        let mut cfg = container_config(Path::new("/"), "c", &["true"]);
        cfg.image = spec(image);
        let e = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cfg),
                sandbox_config: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{image}: {e:?}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("state/containers")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("state/images/snapshots"))
            .unwrap()
            .count(),
        0
    );
    c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: pod })
        .await
        .unwrap();
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_vm_handler_gets_a_pause_program_of_its_own_and_a_failure_leaves_nothing() {
    ensure_bins();
    let dir = tempfile::tempdir().unwrap();
    // A runtime that keeps what create gave it, then fails.
    let seen = dir.path().join("seen");
    std::fs::create_dir_all(&seen).unwrap();
    let rt = dir.path().join("vm-runtime");
    std::fs::write(
        &rt,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --bundle ] && b=$2; [ \"$1\" = --log ] && l=$2; shift; done\n\
             [ -n \"$b\" ] && cp \"$b/config.json\" \"$b/rootfs/pause\" {seen:?}\n\
             echo 'no VM here' >\"$l\"\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = dir.path().join("cri.toml");
    std::fs::write(&config, format!("[handlers.vm]\nbinary = {rt:?}\npod_vm = true\n")).unwrap();
    let server = Server::start_with(
        &dir.path().join("state"),
        &dir.path().join("cri.sock"),
        &["--config", config.to_str().unwrap()],
    );
    let mut c = server.client().await;
    let e = c
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(pod_config(dir.path(), "vm")),
            runtime_handler: "vm".into(),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("no VM here"), "{e:?}");
    // The infra container's pause is the rootfs's own small program, not
    // a bind mount of the server.
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(seen.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["process"]["args"][0], "/pause");
    assert!(
        !cfg["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/pause"),
        "{cfg}"
    );
    assert_eq!(cfg["annotations"]["io.kubernetes.cri.container-type"], "sandbox");
    let pause = std::fs::read(seen.join("pause")).unwrap();
    assert_eq!(&pause[..4], b"\x7fELF");
    assert!(pause.len() < 4096);
    assert!(c
        .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert_eq!(std::fs::read_dir(dir.path().join("state/pods")).unwrap().count(), 0);
    server.stop();
}
