//! Hooks across the VM boundary: prestart, createRuntime, poststart and
//! poststop run on the host (the runtime namespace of a VM runtime), once
//! each; createContainer (a host binary, packed into the guest) and
//! startContainer (a path of the container) run in the guest, where what
//! they write stays: the container's program reads it there and prints it.
//! A failing hook fails its step as natively, and a failed create leaves no
//! VM, shim or state behind.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::bundle::{default_spec, Bundle};
use serde_json::{json, Value};
use virtualized::vm::initramfs::GUEST_BUNDLE;

struct Setup {
    _t: tempfile::TempDir,
    bundle: Bundle,
    root: PathBuf,
    /// Where the host-side hooks record themselves.
    host_records: PathBuf,
    /// The probe outside the bundle: a createContainer hook's host path.
    probe: PathBuf,
    logs: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let t = tempfile::tempdir().unwrap();
        let probe = harness::find_probe()
            .expect("the probe is built beside the test (cargo build)")
            .canonicalize()
            .unwrap();
        let bundle = Bundle::prepare(&t.path().join("bundle"), &probe).unwrap();
        Setup {
            root: t.path().join("root"),
            host_records: t.path().join("records"),
            logs: t.path().join("logs"),
            bundle,
            probe,
            _t: t,
        }
    }

    /// A hook that runs the probe from its host path.
    fn host(&self, sub: &str, label: &str, file: &Path) -> Value {
        json!({"path": self.probe, "args": ["probe", sub, label, file]})
    }

    fn write(&self, hooks: Value, args: &[&str]) {
        let mut cfg = serde_json::to_value(default_spec()).unwrap();
        cfg["hooks"] = hooks;
        cfg["process"]["args"] = json!(args);
        // The guest-side hooks write in the container's root.
        cfg["root"]["readonly"] = json!(false);
        self.bundle.write_raw(&cfg).unwrap();
        std::fs::create_dir_all(&self.logs).unwrap();
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_virtualized"));
        c.arg("--root").arg(&self.root).stdin(Stdio::null());
        c
    }

    /// `create`, its stdout and stderr (the container's, through the shim)
    /// into files: a pipe would stay open as long as the shim lives.
    fn create(&self, id: &str) -> (bool, String) {
        let err = self.logs.join(format!("{id}.create.err"));
        let st = self
            .cmd()
            .args(["create", "--bundle"])
            .arg(&self.bundle.dir)
            .arg(id)
            .stdout(File::create(self.logs.join(format!("{id}.out"))).unwrap())
            .stderr(File::create(&err).unwrap())
            .status()
            .unwrap();
        (st.success(), std::fs::read_to_string(err).unwrap_or_default())
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
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

    fn host_records(&self) -> Vec<Value> {
        records(&std::fs::read_to_string(&self.host_records).unwrap_or_default())
    }

    fn assert_nothing_left(&self) {
        let left = common::processes_under(&self.root);
        assert!(left.is_empty(), "processes left: {left:#?}");
        let files = common::files_under(&self.root);
        assert!(files.is_empty(), "files left: {files:#?}");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for id in ["c1", "c2", "c3"] {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

fn records(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn labels(recs: &[Value]) -> Vec<&str> {
    recs.iter().filter_map(|r| r["hook"].as_str()).collect()
}

#[test]
fn each_kind_runs_once_on_its_side_of_the_vm() {
    if !common::can_run() {
        return;
    }
    let s = Setup::new();
    let hr = s.host_records.clone();
    // In the guest, the createContainer hook runs before pivot_root: the
    // rootfs is the packed copy under the guest's bundle.
    let in_guest = format!("{GUEST_BUNDLE}/rootfs/records");
    s.write(
        json!({
            "prestart": [s.host("hook", "prestart", &hr)],
            "createRuntime": [s.host("hook", "createRuntime", &hr)],
            "createContainer": [{
                "path": s.probe,
                "args": ["argv0-cc", "hook", "createContainer", in_guest],
                "env": ["HOOK_ENV=yes"]
            }],
            "startContainer": [{"path": "/probe", "args": ["probe", "hook", "startContainer", "/records"]}],
            "poststart": [s.host("hook", "poststart", &hr)],
            "poststop": [s.host("hook", "poststop", &hr)]
        }),
        &["/probe", "report", "/records"],
    );
    let (ok, err) = s.create("c1");
    assert!(ok, "create: {err}");
    let shim = s.state("c1").unwrap()["pid"].as_i64().unwrap();
    assert_eq!(labels(&s.host_records()), ["prestart", "createRuntime"]);
    let out = s.run(&["start", "c1"]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(labels(&s.host_records()), ["prestart", "createRuntime", "poststart"]);
    s.wait_stopped("c1");
    let out = s.run(&["delete", "c1"]);
    assert!(out.status.success(), "delete: {}", String::from_utf8_lossy(&out.stderr));

    let host = s.host_records();
    assert_eq!(labels(&host), ["prestart", "createRuntime", "poststart", "poststop"]);
    for (r, status) in host.iter().zip(["creating", "creating", "running", "stopped"]) {
        let st = &r["state"];
        assert_eq!(
            (st["id"].as_str(), st["status"].as_str()),
            (Some("c1"), Some(status)),
            "{r}"
        );
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap()),
            s.bundle.dir.canonicalize().unwrap()
        );
        if status != "stopped" {
            assert_eq!(st["pid"].as_i64(), Some(shim), "{r}");
        }
    }

    // The program read, in the guest, what the guest-side hooks wrote.
    let report: Value = serde_json::from_slice(&std::fs::read(s.logs.join("c1.out")).unwrap()).unwrap();
    let text = report["paths"]["/records"]["content"].as_str().unwrap_or_default();
    let guest = records(text);
    assert_eq!(labels(&guest), ["createContainer", "startContainer"], "{report}");
    let cc = &guest[0];
    assert_eq!(cc["args"], json!(["argv0-cc", "hook", "createContainer", in_guest]));
    assert_eq!(cc["env"], json!(["HOOK_ENV=yes"]));
    // In the container's pid namespace, the container's process is 1.
    assert_eq!(cc["state"]["pid"], 1);
    assert_eq!(guest[1]["state"]["status"], "created");
    s.assert_nothing_left();
}

#[test]
fn a_failing_create_phase_hook_fails_create_and_leaves_nothing() {
    if !common::can_run() {
        return;
    }
    let s = Setup::new();
    let hr = s.host_records.clone();
    // On the host, before the guest makes the container.
    s.write(
        json!({
            "createRuntime": [s.host("hook-fail", "createRuntime", &hr)],
            "createContainer": [s.host("hook", "createContainer", Path::new("/tmp/never"))],
        }),
        &["/probe", "true"],
    );
    let (ok, err) = s.create("c1");
    assert!(!ok);
    assert!(
        err.contains("hooks.createRuntime[0]") && err.contains(s.probe.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(labels(&s.host_records()), ["createRuntime"]);
    s.assert_nothing_left();

    // In the guest: the host binary was packed and ran there (the record
    // file is a host path the guest lacks, so the hook fails either way).
    s.write(
        json!({"createContainer": [s.host("hook-fail", "createContainer", &hr)]}),
        &["/probe", "true"],
    );
    let (ok, err) = s.create("c2");
    assert!(!ok);
    assert!(err.contains("hooks.createContainer[0] (/run/bundle/hooks/0)"), "{err}");
    s.assert_nothing_left();
}

#[test]
fn poststart_failure_stops_the_container_and_poststop_failure_only_warns() {
    if !common::can_run() {
        return;
    }
    let s = Setup::new();
    let hr = s.host_records.clone();
    s.write(
        json!({
            "poststart": [s.host("hook-fail", "poststart", &hr)],
            "poststop": [s.host("hook-fail", "poststop-1", &hr), s.host("hook", "poststop-2", &hr)],
        }),
        &["/probe", "sleep", "inf"],
    );
    let (ok, err) = s.create("c1");
    assert!(ok, "create: {err}");
    let out = s.run(&["start", "c1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hooks.poststart[0]"), "{err}");
    // Start waited for the stop.
    assert_eq!(s.state("c1").unwrap()["status"], "stopped");
    let out = s.run(&["delete", "c1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "delete: {err}");
    assert!(err.contains("hooks.poststop[0]"), "the warning: {err}");
    assert_eq!(labels(&s.host_records()), ["poststart", "poststop-1", "poststop-2"]);
    assert!(s.state("c1").is_none());
    s.assert_nothing_left();
}
