//! What the benchmarks share: where this build's probe and `native` are, the
//! runtimes to compare, and the two container lifecycles they time, built
//! on the harness's own pieces (`bench::timed` for precise invocations,
//! `bundle` for validated configs) so that these figures and `harness
//! bench`'s measure the same thing.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::bench::timed::{self, Stdout, Timed};
use harness::bench::Target;
use harness::bundle::{self, Bundle, SpecExt};
use harness::cleanup::{self, Leak, MARKER};
use harness::runtime::{Driver, Runtime, State};

/// Peers compared with `native` when installed, at Debian's paths.
pub const PEERS: &[(&str, &str)] = &[("crun", "/usr/bin/crun"), ("runc", "/usr/sbin/runc")];

/// Upper bound for one runtime invocation: a hung runtime fails the bench
/// instead of stalling it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The checked-in output of `probe report` on a host, for when the probe
/// cannot be run.
pub const REPORT_FIXTURE: &str = include_str!("../fixtures/report.json");

/// `target/<triple>/<profile>/` of this build (benches run from its
/// `deps/`): the probe and the bundled runtime sit there, and are taken
/// from it by path so that the build measured is this one.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("build directory")
}

/// This build's probe.
pub fn probe() -> PathBuf {
    let p = build_dir().join("probe");
    assert!(
        p.is_file(),
        "build the workspace first (cargo build --release): {} must exist",
        p.display()
    );
    p
}

/// Runtimes to compare: this build's `native`, then each peer installed.
pub fn runtimes() -> Vec<Target> {
    let native = build_dir().join("native");
    let mut v = vec![Target {
        name: "native".into(),
        runtime: Runtime::resolve(&native.to_string_lossy(), Vec::new(), TIMEOUT).unwrap_or_else(|e| {
            panic!("build the workspace first (cargo build --release): {e}");
        }),
    }];
    for (name, path) in PEERS {
        if let Ok(runtime) = Runtime::resolve(path, Vec::new(), TIMEOUT) {
            v.push(Target {
                name: name.to_string(),
                runtime,
            });
        }
    }
    v
}

/// What a lifecycle step failed with: the verb and the runtime's reason.
#[derive(Debug)]
pub struct Failure {
    pub runtime: String,
    pub op: &'static str,
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.runtime, self.op, self.reason)
    }
}

impl std::error::Error for Failure {}

/// One create/start/kill/delete cycle: the runtime invocations' wall time
/// summed (not the waits between them), and the largest peak RSS among them.
#[derive(Debug, Clone, Copy)]
pub struct Cycle {
    pub runtime: Duration,
    pub maxrss_kib: i64,
}

/// One runtime under measurement: a driver with a private `--root`, its
/// bundles, and the marker its invocations carry so that whatever it leaves
/// behind can be found.
pub struct Contender {
    pub name: String,
    pub driver: Driver,
    /// `/probe true`, for `run`.
    pub trivial: Bundle,
    /// `/probe sleep inf`, for the create/start/kill/delete cycle.
    pub sleeper: Bundle,
    dir: PathBuf,
    err_file: PathBuf,
    pid_file: PathBuf,
    prefix: String,
    seq: u64,
}

impl Contender {
    /// Lays out `dir` (state root, bundles) for `target`. The configs are
    /// the harness's default, as `harness bench` uses, validated on write.
    pub fn new(target: &Target, dir: &Path, probe: &Path) -> Result<Contender, bundle::Error> {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).map_err(|source| bundle::Error::Io {
            path: root.clone(),
            source,
        })?;
        // Ends in `x` so that one prefix is never the start of another's.
        let prefix = format!("cb{}{}x", std::process::id(), target.name);
        let mut driver = target.runtime.driver(&root);
        driver.env.push((MARKER.to_string(), prefix.clone()));
        let spec = |args: &[&str]| {
            let mut s = bundle::default_spec();
            s.set_args(args);
            let env = s.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
            env.push(format!("{MARKER}={prefix}"));
            s
        };
        let trivial = Bundle::prepare(&dir.join("trivial"), probe)?;
        trivial.write_spec(&spec(&["/probe", "true"]))?;
        let sleeper = Bundle::prepare(&dir.join("sleeper"), probe)?;
        sleeper.write_spec(&spec(&["/probe", "sleep", "inf"]))?;
        Ok(Contender {
            name: target.name.clone(),
            driver,
            trivial,
            sleeper,
            dir: dir.to_path_buf(),
            err_file: dir.join("stderr"),
            pid_file: dir.join("pid"),
            prefix,
            seq: 0,
        })
    }

    fn id(&mut self, tag: &str) -> String {
        self.seq += 1;
        format!("{}-{tag}{}", self.prefix, self.seq)
    }

    fn fail(&self, op: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            runtime: self.name.clone(),
            op,
            reason: reason.into(),
        }
    }

    /// Runs `op` with `args`, timed; a non-zero exit is a failure.
    fn step(&self, op: &'static str, args: &[OsString]) -> Result<Timed, Failure> {
        let t = timed::verb(&self.driver, op, args, Stdout::Null, &self.err_file)
            .map_err(|e| self.fail(op, e.to_string()))?;
        if t.ok() {
            Ok(t)
        } else {
            Err(self.fail(op, format!("{}: {}", t.status, t.reason)))
        }
    }

    /// `run --bundle B ID` of `/probe true`, timed; then a forced delete,
    /// untimed (runc and crun remove the container when `run` returns,
    /// others may keep it stopped).
    pub fn run(&mut self) -> Result<Timed, Failure> {
        let id = self.id("r");
        let args = [
            OsString::from("--bundle"),
            self.trivial.dir.clone().into(),
            id.clone().into(),
        ];
        let t = self.step("run", &args);
        let _ = self.driver.delete(&id, true);
        t
    }

    /// A `probe sleep inf` container through create, start, kill KILL, a
    /// wait until the runtime reports it stopped, and delete. Only the four
    /// invocations are timed: the wait depends on how soon the kernel reaps
    /// the killed init and on the polling, not on the runtime.
    pub fn cycle(&mut self) -> Result<Cycle, Failure> {
        let id = self.id("c");
        let r = self.cycle_of(&id);
        if r.is_err() {
            let _ = self.driver.delete(&id, true);
        }
        r
    }

    fn cycle_of(&self, id: &str) -> Result<Cycle, Failure> {
        let arg = OsString::from;
        let _ = std::fs::remove_file(&self.pid_file);
        let create = self.step(
            "create",
            &[
                arg("--bundle"),
                self.sleeper.dir.clone().into(),
                arg("--pid-file"),
                self.pid_file.clone().into(),
                arg(id),
            ],
        )?;
        let pid: i32 = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| self.fail("create", format!("no pid in {}", self.pid_file.display())))?;
        let start = self.step("start", &[arg(id)])?;
        let kill = self.step("kill", &[arg(id), arg("KILL")])?;
        // The init is re-parented to us (a subreaper): wait_gone reaps it.
        if !timed::wait_gone(pid, TIMEOUT) {
            return Err(self.fail("kill", format!("pid {pid} still alive {TIMEOUT:?} after SIGKILL")));
        }
        self.settle_stopped(id)?;
        let delete = self.step("delete", &[arg(id)])?;
        let all = [&create, &start, &kill, &delete];
        Ok(Cycle {
            runtime: all.iter().map(|t| t.wall).sum(),
            maxrss_kib: all.iter().map(|t| t.maxrss_kib).max().unwrap_or(0),
        })
    }

    /// Polls `state` until the container is `stopped`: runtimes differ in
    /// how soon they notice a dead init, and runtime.md lets `delete` refuse
    /// a container that is not stopped.
    fn settle_stopped(&self, id: &str) -> Result<(), Failure> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let out = self.driver.state(id).map_err(|e| self.fail("state", e.to_string()))?;
            if out.status.success() && State::parse(&out.stdout).is_ok_and(|s| s.status.as_deref() == Some("stopped")) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.fail("state", format!("not `stopped` {TIMEOUT:?} after kill")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes whatever the runtime left behind (processes, mounts,
    /// cgroups, state) and says what it was.
    pub fn sweep(&self) -> Vec<Leak> {
        cleanup::sweep(&self.prefix, &self.dir, &self.driver.root, &[])
    }
}

/// A realistic `probe report` document: the probe's report of this host,
/// run with the environment a container gets from the default config (the
/// caller's environment is neither what the harness parses nor something to
/// put in a benchmark's input), else the checked-in fixture. Says which.
pub fn report_json() -> (String, &'static str) {
    let live = std::process::Command::new(build_dir().join("probe"))
        .arg("report")
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .current_dir("/")
        .output();
    match live {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            if harness::ctx::parse_report(&text).is_ok() {
                return (text, "probe report on this host");
            }
            (REPORT_FIXTURE.to_string(), "fixture (the host's report did not parse)")
        }
        _ => (REPORT_FIXTURE.to_string(), "fixture (probe report could not run)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_is_a_report_of_this_schema() {
        let r = harness::ctx::parse_report(REPORT_FIXTURE).expect("fixtures/report.json parses");
        assert_eq!(r.schema, 1);
        assert!(!r.mounts.is_empty() && !r.devices.is_empty());
    }
}
