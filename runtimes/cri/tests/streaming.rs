//! The streaming server driven by the cri-api client: first over a fake
//! backend that runs commands on the host (so the transport is tested
//! without containers), then end to end with `CriBackend`, a pod and a
//! container under the bundled native runtime.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cri::streaming::{
    attach, console, AttachRequest, Backend, ExecRequest, Exit, PortForwardRequest, Process, StreamServer,
};
use cri_api::streaming::{self as ws, PortEvent, Status, StreamClient, TerminalSize};

/// Runs exec commands on the host; attach goes to a hub in `attach_dir`;
/// port-forward connects to 127.0.0.1 (pod "missing" does not exist).
struct Fake {
    pids: Mutex<Vec<i32>>,
    attach_dir: PathBuf,
}

fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two descriptors; null name/termios/winsize.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(r, 0);
    // SAFETY: openpty just returned these descriptors to us.
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

impl Backend for Fake {
    fn exec(&self, req: &ExecRequest) -> cri::Result<Process> {
        if req.container_id == "missing" {
            return Err(cri::Error::NotFound {
                kind: "container",
                id: req.container_id.clone(),
            });
        }
        let mut cmd = Command::new(&req.cmd[0]);
        cmd.args(&req.cmd[1..]);
        let mut master = None;
        if req.tty {
            let (m, s) = openpty();
            let f = std::fs::File::from(s);
            cmd.stdin(f.try_clone().unwrap())
                .stdout(f.try_clone().unwrap())
                .stderr(f);
            master = Some(std::fs::File::from(m));
        } else {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| cri::Error::Internal(e.to_string()))?;
        drop(cmd);
        let pid = child.id() as i32;
        self.pids.lock().unwrap().push(pid);
        let mut p = Process {
            stdin: None,
            stdout: None,
            stderr: None,
            resize: None,
            end: Some(Box::new(move || {
                // SAFETY: kill() with our child's pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            })),
            wait: Box::new(|| Exit::Code(0)),
        };
        if let Some(m) = master {
            p.stdin = Some(Box::new(m.try_clone().unwrap()));
            p.stdout = Some(Box::new(m.try_clone().unwrap()));
            p.resize = Some(Box::new(move |s: TerminalSize| {
                console::set_size(&m, s.width, s.height).unwrap();
            }));
        } else {
            p.stdin = child.stdin.take().map(|s| Box::new(s) as _);
            p.stdout = child.stdout.take().map(|s| Box::new(s) as _);
            p.stderr = child.stderr.take().map(|s| Box::new(s) as _);
        }
        p.wait = Box::new(move || {
            use std::os::unix::process::ExitStatusExt;
            let s = child.wait().unwrap();
            Exit::Code(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
        });
        Ok(p)
    }

    fn attach(&self, req: &AttachRequest) -> cri::Result<Process> {
        attach::connect(&self.attach_dir, req).map_err(|e| cri::Error::Internal(e.to_string()))
    }

    fn port_forward(&self, pod_id: &str, port: u16) -> cri::Result<Box<dyn cri::streaming::PortConn>> {
        if pod_id == "missing" {
            return Err(cri::Error::NotFound {
                kind: "pod sandbox",
                id: pod_id.into(),
            });
        }
        TcpStream::connect(("127.0.0.1", port))
            .map(|s| Box::new(s) as Box<dyn cri::streaming::PortConn>)
            .map_err(|e| cri::Error::Internal(e.to_string()))
    }
}

fn fake(attach_dir: &Path) -> (Arc<Fake>, StreamServer) {
    let f = Arc::new(Fake {
        pids: Mutex::new(Vec::new()),
        attach_dir: attach_dir.to_path_buf(),
    });
    let s = StreamServer::start("127.0.0.1:0", f.clone()).unwrap();
    (f, s)
}

fn exec_req(cmd: &[&str], tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin: true,
        stdout: true,
        stderr: !tty,
    }
}

#[test]
fn exec_relays_stdin_stdout_stderr_and_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_, server) = fake(dir.path());
    let url = server.register_exec(exec_req(&["sh", "-c", "cat; echo oops >&2; exit 3"], false));
    assert!(url.starts_with(&server.base_url()), "{url}");
    let client = StreamClient::connect(&url).unwrap();
    assert_eq!(client.protocol(), ws::V5);
    let out = client.run(Some(b"hello through stdin\n".to_vec())).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello through stdin\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let status = out.status.expect("a status on the error channel");
    assert_eq!(status.status, "Failure");
    assert_eq!(status.reason, "NonZeroExitCode");
    assert_eq!(status.exit_code(), Some(3));

    // Success, and a v4-only client (no way to close stdin there).
    let url = server.register_exec(exec_req(&["sh", "-c", "echo fine"], false));
    let client = StreamClient::connect_with(&url, &[ws::V4]).unwrap();
    assert_eq!(client.protocol(), ws::V4);
    assert!(client.close_stdin().is_err());
    let out = client.run(None).unwrap();
    assert_eq!(out.stdout, b"fine\n");
    assert_eq!(out.status, Some(Status::success()));
}

#[test]
fn tty_exec_applies_resize_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (_, server) = fake(dir.path());
    // The shell waits for a line, so the resize sent first is in place
    // when it asks the terminal for its size.
    let url = server.register_exec(exec_req(&["sh", "-c", "read x; stty size; exit 5"], true));
    let client = StreamClient::connect(&url).unwrap();
    client.resize(TerminalSize { width: 123, height: 45 }).unwrap();
    client.stdin(b"go\n").unwrap();
    let out = client.run(None).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("45 123"), "stty size output: {text:?}");
    assert!(out.stderr.is_empty());
    assert_eq!(out.status.unwrap().exit_code(), Some(5));
}

#[test]
fn tokens_are_single_use_expire_and_unknown_ones_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(Fake {
        pids: Mutex::new(Vec::new()),
        attach_dir: dir.path().into(),
    });
    let server = StreamServer::start_with_ttl("127.0.0.1:0", f, Duration::from_millis(300)).unwrap();
    let url = server.register_exec(exec_req(&["true"], false));
    let out = StreamClient::connect(&url).unwrap().run(None).unwrap();
    assert_eq!(out.status, Some(Status::success()));
    let again = StreamClient::connect(&url)
        .err()
        .expect("a used token must not work again");
    assert!(again.to_string().contains("404"), "{again}");

    let late = server.register_exec(exec_req(&["true"], false));
    std::thread::sleep(Duration::from_millis(400));
    let e = StreamClient::connect(&late)
        .err()
        .expect("an expired token must not work");
    assert!(e.to_string().contains("404"), "{e}");

    let e = StreamClient::connect(&format!("{}/exec/nonsense", server.base_url()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("unknown or expired"), "{e}");
    // An exec token is not an attach token.
    let url = server.register_exec(exec_req(&["true"], false));
    let wrong = url.replace("/exec/", "/attach/");
    assert!(StreamClient::connect(&wrong).is_err());
}

#[test]
fn a_backend_error_is_an_internal_status() {
    let dir = tempfile::tempdir().unwrap();
    let (_, server) = fake(dir.path());
    let mut req = exec_req(&["true"], false);
    req.container_id = "missing".into();
    let out = StreamClient::connect(&server.register_exec(req))
        .unwrap()
        .run(None)
        .unwrap();
    let s = out.status.unwrap();
    assert_eq!((s.status.as_str(), s.code), ("Failure", 500));
    assert!(s.message.contains("\"missing\" not found"), "{}", s.message);
    assert_eq!(s.exit_code(), None);
}

#[test]
fn a_client_that_leaves_mid_stream_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (f, server) = fake(dir.path());
    let url = server.register_exec(exec_req(&["sleep", "300"], false));
    let client = StreamClient::connect(&url).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(&p) = f.pids.lock().unwrap().first() {
            break p;
        }
        assert!(Instant::now() < end, "the exec never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(client);
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
            .unwrap_or(true)
    };
    let end = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(Instant::now() < end, "sleep {pid} outlived its client");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn attach_relays_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let (_, server) = fake(dir.path());
    // The "container": a cat whose stdin and stdout the hub holds.
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let hub = attach::Hub::listen(dir.path(), Some(Box::new(cat.stdin.take().unwrap())), None, true).unwrap();
    let mut cat_out = cat.stdout.take().unwrap();
    let h = hub.clone();
    let relay = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match cat_out.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => h.output(attach::kind::STDOUT, &buf[..n]),
            }
        }
    });
    let url = server.register_attach(AttachRequest {
        container_id: "c1".into(),
        tty: false,
        stdin: true,
        stdout: true,
        stderr: true,
    });
    let client = StreamClient::connect(&url).unwrap();
    // stdin_once: closing stdin ends cat, whose exit the "monitor" reports.
    let waiter = std::thread::spawn(move || {
        let st = cat.wait().unwrap();
        relay.join().unwrap();
        hub.exit(st.code().unwrap());
    });
    let out = client.run(Some(b"attached line\n".to_vec())).unwrap();
    waiter.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "attached line\n");
    assert_eq!(out.status, Some(Status::success()));
}

/// A TCP echo server on loopback; returns its port.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn port_forward_relays_to_a_tcp_server_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (_, server) = fake(dir.path());
    let port = echo_server();
    let dead = closed_port();
    let url = server.register_portforward(PortForwardRequest {
        pod_id: "p1".into(),
        ports: vec![port, dead],
    });
    let mut pf = ws::PortForwardClient::connect(&url).unwrap();
    pf.send(0, b"ping over the pod port").unwrap();
    let mut echoed = Vec::new();
    let mut dead_error = None;
    let end = Instant::now() + Duration::from_secs(10);
    while echoed.len() < 22 || dead_error.is_none() {
        assert!(Instant::now() < end, "no echo/error: {echoed:?} {dead_error:?}");
        match pf.next_event().unwrap() {
            PortEvent::Data {
                index: 0,
                port: p,
                data,
            } => {
                assert_eq!(p, port);
                echoed.extend(data);
            }
            PortEvent::Error {
                index: 1,
                port: p,
                message,
            } => {
                assert_eq!(p, dead);
                dead_error = Some(message);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed, b"ping over the pod port");
    assert_eq!(pf.port(0), Some(port));
    assert!(dead_error.unwrap().contains(&format!("error forwarding port {dead}")));

    // Ports named by the client's query when the request had none.
    let url = server.register_portforward(PortForwardRequest {
        pod_id: "p1".into(),
        ports: vec![],
    });
    let mut pf = ws::PortForwardClient::connect(&format!("{url}?port={port}")).unwrap();
    pf.send(0, b"q").unwrap();
    match pf.next_event().unwrap() {
        PortEvent::Data { data, .. } => assert_eq!(data, b"q"),
        other => panic!("unexpected {other:?}"),
    }
    // Neither: refused at the handshake.
    let url = server.register_portforward(PortForwardRequest {
        pod_id: "p1".into(),
        ports: vec![],
    });
    let e = ws::PortForwardClient::connect(&url).err().unwrap();
    assert!(e.to_string().contains("400"), "{e}");
}

// ---- end to end: CriBackend with a real pod and container ----

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cri")).parent().unwrap().to_path_buf()
}

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

#[test]
fn end_to_end_exec_tty_and_port_forward_in_a_native_pod() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run containers");
        return;
    }
    ensure_bins();
    use cri_api::v1 as pb;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("rootfs");
    std::fs::create_dir_all(image.join("etc")).unwrap();
    std::fs::copy(bin_dir().join("probe"), image.join("probe")).unwrap();
    std::fs::write(image.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let config = cri::handlers::Config::defaults(&bin_dir(), "");
    let state = Arc::new(
        cri::Cri::new(
            config,
            &dir.path().join("state"),
            PathBuf::from(env!("CARGO_BIN_EXE_cri")),
            Arc::new(cri::rootfs::Directories),
        )
        .unwrap(),
    );
    let pod_spec = cri::server::convert::pod_spec(pb::RunPodSandboxRequest {
        config: Some(pb::PodSandboxConfig {
            metadata: Some(pb::PodSandboxMetadata {
                name: "stream".into(),
                uid: "uid-stream".into(),
                namespace: "test".into(),
                attempt: 0,
            }),
            ..Default::default()
        }),
        runtime_handler: "native".into(),
    })
    .unwrap();
    let pod = state.run_pod(pod_spec).unwrap();
    // A failing assertion must not leave the pod running (and its shm
    // mounted) behind: stop and remove it whatever happens.
    struct PodGuard(Arc<cri::Cri>, String);
    impl Drop for PodGuard {
        fn drop(&mut self) {
            let _ = self.0.stop_pod(&self.1);
            let _ = self.0.remove_pod(&self.1);
        }
    }
    let guard = PodGuard(state.clone(), pod.clone());
    let c_spec = cri::server::convert::container_spec(Some(pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata {
            name: "main".into(),
            attempt: 0,
        }),
        image: Some(pb::ImageSpec {
            image: image.display().to_string(),
            ..Default::default()
        }),
        command: vec!["/probe".into(), "sleep".into(), "300".into()],
        ..Default::default()
    }))
    .unwrap();
    let cid = state.create_container(&pod, c_spec).unwrap();
    state.start_container(&cid).unwrap();

    let backend = Arc::new(cri::streaming::backend::CriBackend::new(state.clone()));
    let server = StreamServer::start("127.0.0.1:0", backend).unwrap();
    let req = |cmd: &[&str], tty: bool| ExecRequest {
        container_id: cid.clone(),
        ..exec_req(cmd, tty)
    };
    cri::streaming::backend::check_exec(&state, &req(&["/probe", "cat"], false)).unwrap();

    let out = StreamClient::connect(&server.register_exec(req(&["/probe", "cat"], false)))
        .unwrap()
        .run(Some(b"into the container\n".to_vec()))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "into the container\n");
    assert_eq!(
        out.status,
        Some(Status::success()),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = StreamClient::connect(&server.register_exec(req(&["/probe", "exit", "3"], false)))
        .unwrap()
        .run(None)
        .unwrap();
    assert_eq!(out.status.unwrap().exit_code(), Some(3));

    let out = StreamClient::connect(&server.register_exec(req(&["/probe", "tty"], true)))
        .unwrap()
        .run(None)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"stdout_tty\":true"),
        "probe tty said {text:?}, status {:?}",
        out.status
    );
    assert_eq!(out.status, Some(Status::success()));

    // Port forward: a listener opened inside the pod's network namespace.
    let infra = state.pod(&pod).unwrap().infra_pid;
    let ns = std::fs::File::open(format!("/proc/{infra}/ns/net")).unwrap();
    let listener = std::thread::spawn(move || {
        // SAFETY: setns on this thread with a namespace fd we own.
        assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    // Not reachable from the host's namespace: the relay must enter the pod's.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap();
        c.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
    });
    let ports = cri::streaming::backend::check_port_forward(&state, &pod, &[port as i32]).unwrap();
    let mut pf = ws::PortForwardClient::connect(&server.register_portforward(PortForwardRequest {
        pod_id: pod.clone(),
        ports,
    }))
    .unwrap();
    pf.send(0, b"inside the pod").unwrap();
    match pf.next_event().unwrap() {
        PortEvent::Data { data, .. } => assert_eq!(data, b"INSIDE THE POD"),
        other => panic!("unexpected {other:?}"),
    }
    drop(pf);

    // The monitor serves attach for every container, stdin or not.
    assert!(
        state
            .container(&cid)
            .unwrap()
            .state_dir(&state)
            .join(attach::SOCKET)
            .exists(),
        "the monitor's attach socket"
    );

    state.stop_pod(&pod).unwrap();
    state.remove_pod(&pod).unwrap();
    drop(guard);
}

/// A native pod logging to `DIR/logs`, stopped and removed on drop.
struct E2ePod {
    dir: tempfile::TempDir,
    state: Arc<cri::Cri>,
    pod: String,
}

impl E2ePod {
    fn new(name: &str) -> E2ePod {
        use cri_api::v1 as pb;
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("rootfs");
        std::fs::create_dir_all(image.join("etc")).unwrap();
        std::fs::copy(bin_dir().join("probe"), image.join("probe")).unwrap();
        std::fs::write(image.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let state = Arc::new(
            cri::Cri::new(
                cri::handlers::Config::defaults(&bin_dir(), ""),
                &dir.path().join("state"),
                PathBuf::from(env!("CARGO_BIN_EXE_cri")),
                Arc::new(cri::rootfs::Directories),
            )
            .unwrap(),
        );
        let spec = cri::server::convert::pod_spec(pb::RunPodSandboxRequest {
            config: Some(pb::PodSandboxConfig {
                metadata: Some(pb::PodSandboxMetadata {
                    name: name.into(),
                    uid: format!("uid-{name}"),
                    namespace: "test".into(),
                    attempt: 0,
                }),
                log_directory: dir.path().join("logs").display().to_string(),
                ..Default::default()
            }),
            runtime_handler: "native".into(),
        })
        .unwrap();
        let pod = state.run_pod(spec).unwrap();
        E2ePod { dir, state, pod }
    }

    /// Creates and starts `/probe ARGS` named `name`, logging to `name.log`.
    fn run(&self, name: &str, args: &[&str], tty: bool, stdin: bool, stdin_once: bool) -> String {
        use cri_api::v1 as pb;
        let spec = cri::server::convert::container_spec(Some(pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(pb::ImageSpec {
                image: self.dir.path().join("rootfs").display().to_string(),
                ..Default::default()
            }),
            command: vec!["/probe".into()],
            args: args.iter().map(|a| a.to_string()).collect(),
            log_path: format!("{name}.log"),
            tty,
            stdin,
            stdin_once,
            ..Default::default()
        }))
        .unwrap();
        let id = self.state.create_container(&self.pod, spec).unwrap();
        self.state.start_container(&id).unwrap();
        id
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("logs").join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits for the container to exit; its exit code.
    fn wait_exit(&self, id: &str) -> i32 {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let st = self.state.container(id).unwrap().status(&self.state);
            if let Some(e) = st.exit {
                return e.code;
            }
            assert!(Instant::now() < end, "container {id} still {:?} after 20 s", st.state);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for E2ePod {
    fn drop(&mut self) {
        let _ = self.state.stop_pod(&self.pod);
        let _ = self.state.remove_pod(&self.pod);
    }
}

/// Reads a client's output on a thread until `done(stdout)` holds or 20 s
/// pass; the stdout seen.
fn read_until(mut client: StreamClient, done: impl Fn(&str) -> bool + Send + 'static) -> (String, StreamClient) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        loop {
            match client.next_event() {
                Ok(ws::Event::Stdout(d)) => out.push_str(&String::from_utf8_lossy(&d)),
                Ok(ws::Event::Stderr(_)) => {}
                other => panic!("attach ended early: {other:?}, stdout so far {out:?}"),
            }
            if done(&out) {
                let _ = tx.send((out, client));
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the expected output within 20 s")
}

#[test]
fn end_to_end_attach_stdin_tty_and_resize_through_the_monitor() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run containers");
        return;
    }
    ensure_bins();
    let p = E2ePod::new("attach");
    let backend = Arc::new(cri::streaming::backend::CriBackend::new(p.state.clone()));
    let server = StreamServer::start("127.0.0.1:0", backend).unwrap();
    let attach_req = |id: &str, tty: bool, stdin: bool| AttachRequest {
        container_id: id.into(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    };

    // Pipes, stdin_once: what the client sends reaches cat, cat's output
    // comes back (and goes to the log), and closing stdin ends cat.
    let cat = p.run("cat", &["cat"], false, true, true);
    let req = attach_req(&cat, false, true);
    cri::streaming::backend::check_attach(&p.state, &req).unwrap();
    let out = StreamClient::connect(&server.register_attach(req))
        .unwrap()
        .run(Some(b"sent through attach\n".to_vec()))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sent through attach\n");
    assert_eq!(out.status, Some(Status::success()));
    assert_eq!(p.wait_exit(&cat), 0, "cat ends when the attached stdin closes");
    let log = p.log("cat");
    assert!(log.contains(" stdout F sent through attach\n"), "cat.log: {log:?}");

    // A terminal: input is echoed and read, and a resize reaches it.
    let tcat = p.run("ttycat", &["cat"], true, true, false);
    let client = StreamClient::connect(&server.register_attach(attach_req(&tcat, true, true))).unwrap();
    client.resize(TerminalSize { width: 91, height: 37 }).unwrap();
    client.stdin(b"typed\n").unwrap();
    // The line discipline echoes the line, then cat writes it back.
    let (seen, client) = read_until(client, |o| o.matches("typed").count() >= 2);
    assert!(seen.contains("typed\r\n"), "a terminal's output: {seen:?}");
    let pid = p.state.container(&tcat).unwrap().pid;
    let term = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(format!("/proc/{pid}/fd/0"))
        .unwrap();
    // SAFETY: isatty on a descriptor we own.
    let is_tty = unsafe { libc::isatty(term.as_raw_fd()) };
    assert_eq!(is_tty, 1, "the container's stdin is a terminal");
    assert_eq!(
        console::get_size(&term).unwrap(),
        (91, 37),
        "the resize sent before the input applied"
    );
    client.resize(TerminalSize { width: 120, height: 50 }).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while console::get_size(&term).unwrap() != (120, 50) {
        assert!(Instant::now() < end, "the second resize never reached the terminal");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(client);
    // Leaving ended the session, not the container (no stdin_once).
    std::thread::sleep(Duration::from_millis(200));
    assert!(p.state.container(&tcat).unwrap().status(&p.state).exit.is_none());
    let log = p.log("ttycat");
    assert!(log.contains(" stdout F typed\r"), "ttycat.log: {log:?}");

    // The container's own process sees a terminal on its stdio.
    let probe = p.run("tty", &["tty"], true, false, false);
    assert_eq!(p.wait_exit(&probe), 0);
    let log = p.log("tty");
    assert!(
        log.contains("\"stdin_tty\":true") && log.contains("\"stdout_tty\":true"),
        "tty.log: {log:?}"
    );
}
