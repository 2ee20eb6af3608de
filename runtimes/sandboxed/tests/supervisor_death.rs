//! A container must not outlive its supervisor: killing the supervisor
//! kills the container (its guardian sees to it), and a normal delete
//! leaves neither the supervisor nor the guardian behind.

use std::path::Path;
use std::time::{Duration, Instant};

use harness::bundle::{default_spec, Bundle, SpecExt};
use harness::runtime::{CreateOpts, Runtime, State};

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| !r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

#[test]
fn killing_the_supervisor_kills_the_container() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let b = Bundle::prepare(&t.path().join("b"), &probe).unwrap();
    let mut spec = default_spec();
    spec.set_args(&["/probe", "sleep", "inf"]);
    b.write_spec(&spec).unwrap();
    let rt = Runtime::resolve(env!("CARGO_BIN_EXE_sandboxed"), vec![], Duration::from_secs(10)).unwrap();
    let root = t.path().join("root");
    let d = rt.driver(&root);
    let id = format!("death{}", std::process::id());
    let (out, _io) = d.create(&id, &b.dir, &CreateOpts::default()).unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(d.start(&id).unwrap().status.success());
    let state = State::parse(&d.state(&id).unwrap().stdout).unwrap();
    let init = state.pid.unwrap() as i32;
    let pids: Vec<i32> = std::fs::read_to_string(root.join(format!("{id}.supervisor.pid")))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "the supervisor and its guardian: {pids:?}");
    assert!(alive(init) && alive(pids[0]) && alive(pids[1]));
    // SAFETY: kill(2) with plain integers: the supervisor.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
    let gone = wait_gone(init, Duration::from_secs(5));
    let _ = d.delete(&id, true);
    assert!(gone, "the container init {init} outlived its supervisor");
    assert!(wait_gone(pids[1], Duration::from_secs(5)), "the guardian stayed");
    assert!(!Path::new(&root.join(format!("{id}.supervisor.pid"))).exists());
}
