//! A pod in one VM (Kata's way): the sandbox container boots the VM, and a
//! container whose annotations name that sandbox runs in the same guest,
//! in the sandbox's network, IPC and UTS namespaces (its config names them
//! by host paths, which mean nothing in the guest) and its own PID and
//! mount namespaces. Each container keeps its own host pid, state, stdio,
//! exit status and delete; the guest forgets a container once it ended
//! (its id can be used again), and the sandbox going takes the others.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::bundle::{default_spec, Bundle, SpecExt};
use oci_spec::runtime::LinuxNamespaceType;
use serde_json::{json, Value};

struct Setup {
    t: tempfile::TempDir,
    probe: PathBuf,
    root: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let t = tempfile::tempdir().unwrap();
        let probe = harness::find_probe()
            .expect("the probe is built beside the test (cargo build)")
            .canonicalize()
            .unwrap();
        Setup {
            root: t.path().join("root"),
            probe,
            t,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_virtualized"));
        c.arg("--root").arg(&self.root).stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn out(&self, id: &str) -> PathBuf {
        self.t.path().join(format!("{id}.out"))
    }

    /// A bundle for `id` running `args`; `pod` makes it a further container
    /// of that sandbox, joining its namespaces by (host) path.
    fn bundle(&self, id: &str, args: &[&str], pod: Option<&str>) -> Bundle {
        let b = Bundle::prepare(&self.t.path().join(format!("bundle-{id}")), &self.probe).unwrap();
        let mut spec = default_spec();
        spec.set_args(args);
        if let Some(pod) = pod {
            let shim = self.state(pod).unwrap()["pid"].as_i64().unwrap();
            for (typ, file) in [
                (LinuxNamespaceType::Network, "net"),
                (LinuxNamespaceType::Ipc, "ipc"),
                (LinuxNamespaceType::Uts, "uts"),
            ] {
                spec.set_namespace(typ, Some(&PathBuf::from(format!("/proc/{shim}/ns/{file}"))));
            }
            spec.set_hostname(None);
        } else {
            spec.set_hostname(Some("podhost".into()));
        }
        let mut cfg = serde_json::to_value(&spec).unwrap();
        let kind = if pod.is_some() { "container" } else { "sandbox" };
        cfg["annotations"] = json!({
            "io.kubernetes.cri.container-type": kind,
            "io.kubernetes.cri.sandbox-id": pod.unwrap_or(id),
        });
        b.write_raw(&cfg).unwrap();
        b
    }

    /// `create`, with the container's stdout and stderr in files: a pipe
    /// would stay open as long as the shim lives.
    fn create(&self, id: &str, b: &Bundle) -> (bool, String) {
        let err = self.t.path().join(format!("{id}.err"));
        let st = self
            .cmd()
            .args(["create", "--bundle"])
            .arg(&b.dir)
            .arg(id)
            .stdout(File::create(self.out(id)).unwrap())
            .stderr(File::create(&err).unwrap())
            .status()
            .unwrap();
        (st.success(), std::fs::read_to_string(err).unwrap_or_default())
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    fn state(&self, id: &str) -> Option<Value> {
        let out = self.run(&["state", id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    fn wait_stopped(&self, id: &str) {
        let t = Instant::now();
        while self.state(id).is_some_and(|s| s["status"] != "stopped") {
            assert!(t.elapsed() < Duration::from_secs(30), "{id} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn report(&self, id: &str) -> Value {
        let out = self.ok(&["exec", id, "/probe", "report"]);
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{id}: {e}: {}", String::from_utf8_lossy(&out)))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for id in ["c1", "c2", "pod"] {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

#[test]
fn the_containers_of_a_pod_share_one_vm_and_the_sandbox_namespaces() {
    if !common::can_run() {
        return;
    }
    let s = Setup::new();
    let pod = s.bundle("pod", &["/probe", "sleep", "inf"], None);
    let (ok, err) = s.create("pod", &pod);
    assert!(ok, "create pod: {err}");
    s.ok(&["start", "pod"]);
    let qemus = |s: &Setup| {
        common::processes_under(&s.root)
            .into_iter()
            .filter(|(_, c)| c.contains("qemu-system"))
            .count()
    };
    let vms = qemus(&s);

    let c2 = s.bundle("c2", &["/probe", "sleep", "inf"], Some("pod"));
    let (ok, err) = s.create("c2", &c2);
    assert!(ok, "create c2: {err}");
    let st = s.state("c2").unwrap();
    assert_eq!(st["status"], "created");
    assert_ne!(
        st["pid"],
        s.state("pod").unwrap()["pid"],
        "each container has a host process of its own"
    );
    s.ok(&["start", "c2"]);
    assert_eq!(s.state("c2").unwrap()["status"], "running");
    assert_eq!(qemus(&s), vms, "the pod's second container booted no VM");

    let in_pod = s.report("pod");
    let in_c2 = s.report("c2");
    for ns in ["net", "ipc", "uts"] {
        assert_eq!(in_c2["namespaces"][ns], in_pod["namespaces"][ns], "{ns}");
    }
    for ns in ["pid", "mnt"] {
        assert_ne!(in_c2["namespaces"][ns], in_pod["namespaces"][ns], "{ns}");
    }
    assert_eq!(in_c2["hostname"], "podhost");

    // A container that ends: its output and status are its own, and once
    // deleted its id can be used again in the same VM.
    for round in 0..2 {
        let c1 = s.bundle("c1", &["/probe", "exit", "7"], Some("pod"));
        let (ok, err) = s.create("c1", &c1);
        assert!(ok, "create c1 (round {round}): {err}");
        s.ok(&["start", "c1"]);
        s.wait_stopped("c1");
        s.ok(&["delete", "c1"]);
        assert!(s.state("c1").is_none());
    }
    let c1 = s.bundle("c1", &["/probe", "echo", "from", "c1"], Some("pod"));
    let (ok, err) = s.create("c1", &c1);
    assert!(ok, "create c1: {err}");
    let shim: i32 = s.state("c1").unwrap()["pid"].as_i64().unwrap() as i32;
    s.ok(&["start", "c1"]);
    s.wait_stopped("c1");
    assert_eq!(std::fs::read_to_string(s.out("c1")).unwrap(), "from c1\n");
    s.ok(&["delete", "c1"]);
    // Gone, or a zombie: the machine's init may not reap orphans.
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start().chars().next());
    assert!(matches!(state, None | Some(Some('Z'))), "c1's shim lives on: {stat}");

    // kill reaches the container in the guest; the pod runs on.
    s.ok(&["kill", "c2", "KILL"]);
    s.wait_stopped("c2");
    assert_eq!(s.state("pod").unwrap()["status"], "running");
    s.ok(&["delete", "c2"]);

    // The sandbox's end is the VM's: a container still in it is stopped.
    let c2 = s.bundle("c2", &["/probe", "sleep", "inf"], Some("pod"));
    let (ok, err) = s.create("c2", &c2);
    assert!(ok, "create c2: {err}");
    s.ok(&["start", "c2"]);
    s.ok(&["kill", "pod", "KILL"]);
    s.wait_stopped("pod");
    s.wait_stopped("c2");
    s.ok(&["delete", "c2"]);
    s.ok(&["delete", "pod"]);
    let left = common::processes_under(&s.root);
    assert!(left.is_empty(), "processes left: {left:#?}");
    let files = common::files_under(&s.root);
    assert!(files.is_empty(), "files left: {files:#?}");
}

#[test]
fn a_container_of_a_pod_that_is_not_here_is_refused_and_leaves_nothing() {
    if !common::can_run() {
        return;
    }
    let s = Setup::new();
    let b = Bundle::prepare(&s.t.path().join("bundle"), &s.probe).unwrap();
    let mut cfg = serde_json::to_value(default_spec()).unwrap();
    cfg["annotations"] = json!({
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.sandbox-id": "elsewhere",
    });
    b.write_raw(&cfg).unwrap();
    let (ok, err) = s.create("c1", &b);
    assert!(!ok);
    assert!(err.contains("\"elsewhere\""), "{err}");
    assert!(common::processes_under(&s.root).is_empty());
    assert!(common::files_under(&s.root).is_empty());
}

/// The `probe` processes the container `id` sees (the `ps` among them).
fn probes_in(s: &Setup, id: &str) -> usize {
    let ps: Value = serde_json::from_slice(&s.ok(&["exec", id, "/probe", "ps"])).unwrap();
    ps.as_array()
        .or_else(|| ps["processes"].as_array())
        .map(|l| l.iter().filter(|p| p["comm"] == "probe").count())
        .unwrap_or_default()
}

#[test]
fn an_exec_in_a_pod_container_has_a_host_stand_in_and_a_terminal() {
    if !common::can_run() {
        return;
    }
    let s = Setup::new();
    let pod = s.bundle("pod", &["/probe", "sleep", "inf"], None);
    let (ok, err) = s.create("pod", &pod);
    assert!(ok, "create pod: {err}");
    s.ok(&["start", "pod"]);
    let c2 = s.bundle("c2", &["/probe", "sleep", "inf"], Some("pod"));
    let (ok, err) = s.create("c2", &c2);
    assert!(ok, "create c2: {err}");
    s.ok(&["start", "c2"]);
    assert_eq!(probes_in(&s, "c2"), 2, "the container's process and ps");

    // --pid-file names the exec command itself; killing it ends the
    // process in the guest.
    let pid_file = s.t.path().join("exec.pid");
    let mut stand_in = s
        .cmd()
        .args(["exec", "--pid-file"])
        .arg(&pid_file)
        .args(["c2", "/probe", "sleep", "inf"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !pid_file.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), stand_in.id().to_string());
    assert_eq!(probes_in(&s, "c2"), 3);
    stand_in.kill().unwrap();
    stand_in.wait().unwrap();
    let t = Instant::now();
    while probes_in(&s, "c2") != 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the exec'd process outlived its stand-in"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // --tty --console-socket: the process's stdio is a terminal whose
    // master comes over the socket.
    let sock = s.t.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut exec = s
        .cmd()
        .args(["exec", "--tty", "--console-socket"])
        .arg(&sock)
        .args(["c2", "/probe", "tty"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let t = Instant::now();
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) => {
                if let Some(st) = exec.try_wait().unwrap() {
                    let mut err = String::new();
                    std::io::Read::read_to_string(&mut exec.stderr.take().unwrap(), &mut err).unwrap();
                    panic!("exec --tty ended ({st}) without sending a terminal: {err}");
                }
                assert!(t.elapsed() < Duration::from_secs(30), "no terminal came");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    conn.set_nonblocking(false).unwrap();
    let (_, fds) = container::unix::recv_with_fds(&conn).unwrap();
    let mut master = File::from(fds.into_iter().next().expect("the master"));
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // EIO once the last slave closes.
        match std::io::Read::read(&mut master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let st = exec.wait().unwrap();
    assert!(st.success(), "exec --tty: {st}");
    let text = String::from_utf8_lossy(&text);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{text:?}"));
    let tty: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(
        (tty["stdin_tty"].as_bool(), tty["stdout_tty"].as_bool()),
        (Some(true), Some(true)),
        "{tty}"
    );

    s.ok(&["kill", "c2", "KILL"]);
    s.wait_stopped("c2");
    s.ok(&["delete", "c2"]);
    s.ok(&["kill", "pod", "KILL"]);
    s.wait_stopped("pod");
    s.ok(&["delete", "pod"]);
    assert!(common::processes_under(&s.root).is_empty());
}
