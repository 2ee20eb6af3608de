//! Nothing outlives a container: a `create` killed mid-boot takes the VM,
//! its sockets and the state directory with it once the shim notices; bad
//! input is refused on the host, naming the field and value, before any VM.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::bundle::{default_spec, Bundle, SpecExt};

fn bundle(dir: &Path) -> Bundle {
    let probe = harness::find_probe().expect("the probe is built beside the test (cargo build)");
    Bundle::prepare(dir, &probe).unwrap()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn is_qemu(cmd: &str) -> bool {
    cmd.contains("qemu-system")
}

#[test]
fn create_killed_mid_boot_leaves_nothing() {
    if !common::can_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"));
    let mut spec = default_spec();
    spec.set_args(&["/probe", "sleep", "inf"]);
    b.write_spec(&spec).unwrap();
    let root = t.path().join("root");
    // A cold boot: cloned from a template, create is over before it could
    // be caught mid-boot.
    let mut create = Command::new(env!("CARGO_BIN_EXE_virtualized"))
        .env("OCI_VM_TEMPLATE", "0")
        .arg("--root")
        .arg(&root)
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg("c1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Mid-boot: QEMU runs, the agent has not answered yet.
    let booting = wait_until(Duration::from_secs(30), || {
        common::processes_under(&root).iter().any(|(_, c)| is_qemu(c))
    });
    create.kill().unwrap();
    let st = create.wait().unwrap();
    if !booting || st.success() {
        // Whatever went wrong, leave nothing running.
        let _ = Command::new(env!("CARGO_BIN_EXE_virtualized"))
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", "c1"])
            .output();
    }
    assert!(booting, "QEMU never started");
    assert!(
        !st.success(),
        "create finished before it could be killed: the VM boots too fast for this test"
    );
    // The shim notices its end of the sync socket close and tears down.
    let gone = wait_until(Duration::from_secs(30), || {
        common::processes_under(&root).is_empty() && !root.join("c1").exists()
    });
    let left = common::processes_under(&root);
    assert!(
        gone,
        "after create was killed: processes {left:#?}, files {:#?}",
        common::files_under(&root)
    );
}

#[test]
fn bad_input_names_the_field_and_value_and_leaves_nothing() {
    if !common::can_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"));
    let mut config = serde_json::to_value(default_spec()).unwrap();
    config["linux"]["resources"] = serde_json::json!({"memory": {"limit": -7}});
    b.write_raw(&config).unwrap();
    let root = t.path().join("root");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_virtualized"))
        .arg("--root")
        .arg(&root)
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg("c1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("linux.resources.memory.limit") && err.contains("-7"),
        "the error names neither field nor value: {err}"
    );
    assert!(
        common::files_under(&root).is_empty(),
        "{:#?}",
        common::files_under(&root)
    );
    assert!(common::processes_under(&root).is_empty());
    // Refused on the host: no VM was booted to find out.
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());

    // The same for an id the runtime cannot take.
    let out = Command::new(env!("CARGO_BIN_EXE_virtualized"))
        .arg("--root")
        .arg(&root)
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg("no/slash")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"no/slash\""));
}
