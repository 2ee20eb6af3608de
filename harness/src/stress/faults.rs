//! The fault suite: the harness breaks things while a runtime works (kills
//! it with SIGKILL in the middle of `create`, `start` and `delete`, races
//! `delete` against `start`, signals containers already gone, fills the disk
//! its `--root` is on, removes a running container's bundle), then checks
//! that `delete --force` leaves nothing behind and that a later lifecycle on
//! the same root succeeds. Each fault is a case in the standard results.
//!
//! Errors of the faulted operation itself are expected and only logged; a
//! case fails on a leftover, a failed later lifecycle, a runtime that wedges
//! (an operation timing out), or a departure from a clause the fault
//! exercises (`kill` of a stopped container must fail).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::leaks::{self, Scope, Snapshot};
use crate::bundle::{self, Bundle, SpecExt};
use crate::case::{fail, Verdict};
use crate::cleanup::MARKER;
use crate::results::{self, CaseResult, Results, Status};
use crate::runtime::{ContainerIo, CreateOpts, Driver, Output, Runtime, State};

/// Charged when something is left after `delete --force`.
const LEAK: &str = crate::runner::LEAK_CLAUSE;
/// How a skipped case whose fault came too late begins.
const MISSED: &str = "the fault did not land (three tries)";

/// Charged when the runtime cannot run a container on the same root later.
const LATER: &str = "runtime.lifecycle.create-environment";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("work directory {path}: {source}")]
    Workdir { path: PathBuf, source: std::io::Error },
    #[error("the runtime cannot run a plain lifecycle, so no fault can be judged: {0}")]
    Calibration(String),
    #[error("{0}")]
    Select(String),
    #[error(transparent)]
    Probe(#[from] crate::runner::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A verb the runtime is killed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Start,
    Delete,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Start => "start",
            Verb::Delete => "delete",
        }
    }
}

/// When, in the verb, the runtime is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// This percentage of the verb's usual duration after it was spawned.
    Percent(u32),
    /// As soon as the runtime has a child process.
    FirstChild,
}

/// How `--root`'s file system is exhausted during `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disk {
    /// No byte left.
    NoSpace,
    /// One page left: a first small file fits, the rest does not.
    OnePage,
    /// No inode left: no file can be made at all.
    NoInodes,
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    SigkillIn(Verb, At),
    /// `delete --force` begun this percentage of `start`'s usual duration
    /// after `start`.
    DeleteRacesStart(u32),
    /// `kill` of a container that has stopped; deleted too, or not.
    KillGone {
        deleted: bool,
    },
    RootDiskFull(Disk),
    BundleRemoved,
}

/// A fault case: an id (`group::name`) and what it does.
#[derive(Debug, Clone)]
pub struct FaultCase {
    pub id: String,
    pub fault: Fault,
}

impl crate::cases::Selectable for FaultCase {
    fn id(&self) -> &str {
        &self.id
    }
}

impl FaultCase {
    /// The clauses the case enforces, first the one a plumbing failure is
    /// charged to.
    pub fn clauses(&self) -> Vec<&'static str> {
        match self.fault {
            Fault::KillGone { deleted: false } => vec![
                "runtime.kill.not-running-error",
                "runtime.kill.not-running-no-effect",
                LEAK,
                LATER,
            ],
            Fault::KillGone { deleted: true } => vec!["runtime.kill.not-running-error", LEAK, LATER],
            _ => vec![LEAK, LATER],
        }
    }
}

/// Every fault case, in the order they run.
pub fn all() -> Vec<FaultCase> {
    let mut v = Vec::new();
    let ats = [
        At::Percent(10),
        At::Percent(30),
        At::Percent(50),
        At::Percent(70),
        At::Percent(90),
        At::FirstChild,
    ];
    for verb in [Verb::Create, Verb::Start, Verb::Delete] {
        for at in ats {
            let name = match at {
                At::Percent(p) => format!("at_{p}pct"),
                At::FirstChild => "at_first_child".into(),
            };
            v.push(FaultCase {
                id: format!("sigkill_{}::{name}", verb.name()),
                fault: Fault::SigkillIn(verb, at),
            });
        }
    }
    for p in [0, 25, 50, 100] {
        v.push(FaultCase {
            id: format!("delete_races_start::after_{p}pct"),
            fault: Fault::DeleteRacesStart(p),
        });
    }
    v.push(FaultCase {
        id: "kill_gone::stopped".into(),
        fault: Fault::KillGone { deleted: false },
    });
    v.push(FaultCase {
        id: "kill_gone::deleted".into(),
        fault: Fault::KillGone { deleted: true },
    });
    for (name, d) in [
        ("no_space", Disk::NoSpace),
        ("one_page_free", Disk::OnePage),
        ("no_inodes", Disk::NoInodes),
    ] {
        v.push(FaultCase {
            id: format!("root_disk_full::{name}"),
            fault: Fault::RootDiskFull(d),
        });
    }
    v.push(FaultCase {
        id: "bundle_removed::while_running".into(),
        fault: Fault::BundleRemoved,
    });
    v
}

#[derive(Debug, Clone)]
pub struct Options {
    pub workdir: PathBuf,
    pub timeout: Duration,
    pub command: Vec<String>,
}

/// The usual duration of each verb on this runtime, measured before the
/// faults so that "30% into create" means the same for a 5 ms runtime and a
/// 500 ms one.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    pub create: Duration,
    pub start: Duration,
    pub delete: Duration,
}

impl Calibration {
    fn of(&self, v: Verb) -> Duration {
        match v {
            Verb::Create => self.create,
            Verb::Start => self.start,
            Verb::Delete => self.delete,
        }
    }
}

/// What one case works with.
struct Fx {
    driver: Driver,
    dir: PathBuf,
    prefix: String,
    probe: PathBuf,
    timeout: Duration,
    seq: u32,
    ids: Vec<String>,
    log: Vec<String>,
    /// Why the fault did not land (the verb ended before the kill): the
    /// case is then skipped, once its aftermath has passed.
    missed: Option<String>,
}

impl Fx {
    fn missed(&mut self, line: String, landed: bool) {
        if !landed {
            self.missed = Some(line.clone());
        }
        self.log.push(line);
    }

    fn new_id(&mut self) -> String {
        self.seq += 1;
        let id = format!("{}-{}", self.prefix, self.seq);
        self.ids.push(id.clone());
        id
    }

    fn bundle(&mut self, args: &[&str]) -> std::result::Result<Bundle, Verdict> {
        self.seq += 1;
        let dir = self.dir.join(format!("bundle-{}", self.seq));
        let mut spec = bundle::default_spec();
        spec.set_args(args);
        let env = spec.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
        env.push(format!("{MARKER}={}", self.prefix));
        let b = Bundle::prepare(&dir, &self.probe).map_err(|e| fail("harness", "the harness to write a bundle", e))?;
        b.write_spec(&spec)
            .map_err(|e| fail("harness", "the harness to write a bundle", e))?;
        Ok(b)
    }

    fn note(&mut self, verb: &str, id: &str, r: &crate::runtime::Result<Output>) {
        let line = match r {
            Ok(o) if o.status.success() => format!("{verb} {id}: ok in {} ms", o.duration.as_millis()),
            Ok(o) => format!(
                "{verb} {id}: {} in {} ms: {}",
                o.status,
                o.duration.as_millis(),
                o.reason()
            ),
            Err(e) => format!("{verb} {id}: {e}"),
        };
        self.log.push(line);
    }

    /// An operation whose answer does not matter, but which must finish.
    fn op(&mut self, verb: &str, id: &str, r: crate::runtime::Result<Output>) -> std::result::Result<Output, Verdict> {
        self.note(verb, id, &r);
        r.map_err(|e| wedged(verb, e))
    }

    fn create(&mut self, id: &str, b: &Bundle) -> std::result::Result<(Output, ContainerIo), Verdict> {
        let r = self.driver.create(id, &b.dir, &CreateOpts::default());
        let o = r.as_ref().map(|(o, _)| o.clone()).map_err(clone_err);
        self.note("create", id, &o);
        r.map_err(|e| wedged("create", e))
    }

    /// Creates, or fails the case: for faults that need a container first.
    fn created(&mut self, id: &str, b: &Bundle) -> std::result::Result<ContainerIo, Verdict> {
        let (o, io) = self.create(id, b)?;
        if !o.status.success() {
            return Err(fail(LATER, "create before the fault to succeed", o.reason()));
        }
        Ok(io)
    }

    fn started(&mut self, id: &str) -> std::result::Result<(), Verdict> {
        let r = self.driver.start(id);
        let o = self.op("start", id, r)?;
        if !o.status.success() {
            return Err(fail(LATER, "start before the fault to succeed", o.reason()));
        }
        Ok(())
    }

    fn status(&mut self, id: &str) -> std::result::Result<Option<String>, Verdict> {
        let r = self.driver.state(id);
        let o = self.op("state", id, r)?;
        Ok(State::parse(&o.stdout).ok().and_then(|s| s.status))
    }

    /// Waits until the runtime says `stopped`.
    fn until_stopped(&mut self, id: &str, io: &ContainerIo) -> std::result::Result<(), Verdict> {
        if !io.wait_eof(self.timeout) {
            return Err(fail(
                LATER,
                "the probe to exit",
                format!("running after {:?}", self.timeout),
            ));
        }
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            if matches!(self.driver.state(id), Ok(o) if State::parse(&o.stdout).ok().and_then(|s| s.status).as_deref() == Some("stopped"))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(wedged_msg(
            "state",
            format!("not `stopped` within {:?} of the probe's exit", self.timeout),
        ))
    }
}

fn clone_err(e: &crate::runtime::Error) -> crate::runtime::Error {
    match e {
        crate::runtime::Error::Timeout { verb, secs } => crate::runtime::Error::Timeout {
            verb: verb.clone(),
            secs: *secs,
        },
        other => crate::runtime::Error::Io {
            what: other.to_string(),
            source: std::io::Error::other("see above"),
        },
    }
}

fn wedged(verb: &str, e: crate::runtime::Error) -> Verdict {
    match e {
        crate::runtime::Error::Timeout { .. } => wedged_msg(verb, e),
        other => fail("harness", format!("the harness to run `{verb}`"), other),
    }
}

fn wedged_msg(verb: &str, what: impl std::fmt::Display) -> Verdict {
    fail(LEAK, format!("`{verb}` to finish (the runtime not to wedge)"), what)
}

/// Spawns `verb args...` like the driver does, without waiting: stdio from
/// /dev/null, its own process group, kept from the reaper.
fn spawn(driver: &Driver, verb: &str, args: &[&str]) -> std::io::Result<Child> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut cmd = Command::new(&driver.runtime.path);
    cmd.args(driver.argv(verb, &args))
        .envs(driver.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    crate::reaper::spawn(&mut cmd)
}

/// Whether `pid` has a child, in any of its threads (a Go runtime forks
/// from whichever thread it is on).
fn has_child(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks
        .flatten()
        .any(|t| std::fs::read_to_string(t.path().join("children")).is_ok_and(|s| !s.trim().is_empty()))
}

/// Runs `verb` and SIGKILLs the runtime process (only it: what it forked is
/// orphaned, as when an OOM kill or a crash hits it) at `at`. Returns how
/// the verb ended, for the log.
fn kill_during(
    driver: &Driver,
    verb: &str,
    args: &[&str],
    at: At,
    usual: Duration,
    timeout: Duration,
) -> (String, bool) {
    let mut child = match spawn(driver, verb, args) {
        Ok(c) => c,
        Err(e) => return (format!("spawning {verb}: {e}"), false),
    };
    let pid = child.id();
    let start = Instant::now();
    let deadline = start + timeout;
    let when = loop {
        if let Ok(Some(s)) = child.try_wait() {
            crate::reaper::release(pid);
            return (
                format!(
                    "{verb} ended by itself ({s}) after {:?}, before the kill",
                    start.elapsed()
                ),
                false,
            );
        }
        let due = match at {
            At::Percent(p) => start.elapsed() >= usual.mul_f64(f64::from(p) / 100.0),
            At::FirstChild => has_child(pid),
        };
        if due || Instant::now() >= deadline {
            // SAFETY: kill(2) with a pid we spawned and have not yet reaped
            // (try_wait returned None), so it cannot name another process.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            break start.elapsed();
        }
        if matches!(at, At::Percent(_)) {
            std::thread::sleep(Duration::from_micros(100));
        }
    };
    let s = child.wait();
    crate::reaper::release(pid);
    // Killed, unless it exited on its own in the same instant.
    let landed = s.as_ref().is_ok_and(|s| s.signal() == Some(libc::SIGKILL));
    (format!("{verb} SIGKILLed after {when:?}: {s:?}"), landed)
}

/// A tmpfs for `--root`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, opts: &str) -> std::io::Result<Tmpfs> {
        use std::os::unix::ffi::OsStrExt;
        std::fs::create_dir_all(at)?;
        let target = std::ffi::CString::new(at.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        let data = std::ffi::CString::new(opts).map_err(std::io::Error::other)?;
        // SAFETY: all pointers are valid NUL-terminated strings that outlive
        // the call; a tmpfs mount touches no memory of ours.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = std::ffi::CString::new(self.0.as_os_str().as_bytes()) {
            // SAFETY: a valid NUL-terminated path; the mount is ours.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Fills `dir`'s file system as `how` says, with files named `.fill*`;
/// returns them.
fn fill(dir: &Path, how: Disk) -> Vec<PathBuf> {
    use std::io::Write;
    let mut made = Vec::new();
    match how {
        Disk::NoSpace | Disk::OnePage => {
            let p = dir.join(".fill");
            if let Ok(mut f) = std::fs::File::create(&p) {
                let chunk = vec![0u8; 64 << 10];
                while f.write_all(&chunk).is_ok() {}
                // Byte by byte to the last one.
                while f.write_all(&[0]).is_ok() {}
                if how == Disk::OnePage {
                    if let Ok(len) = f.metadata().map(|m| m.len()) {
                        let _ = f.set_len(len.saturating_sub(4096));
                    }
                }
            }
            made.push(p);
        }
        Disk::NoInodes => {
            for i in 0.. {
                let p = dir.join(format!(".fill{i}"));
                if std::fs::File::create(&p).is_err() {
                    break;
                }
                made.push(p);
            }
        }
    }
    made
}

/// The fault itself: errors of the faulted operations are logged, not
/// returned; a `Verdict` is a wedge, a harness error, or a clause broken.
fn inject(fx: &mut Fx, fault: Fault, cal: &Calibration, root_fs: Option<&Path>) -> std::result::Result<(), Verdict> {
    let long = [bundle::PROBE, "sleep", "600"];
    let short = [bundle::PROBE, "true"];
    match fault {
        Fault::SigkillIn(verb, at) => {
            let usual = cal.of(verb);
            match verb {
                Verb::Create => {
                    let b = fx.bundle(&long)?;
                    let id = fx.new_id();
                    let bdir = b.dir.display().to_string();
                    let (line, landed) =
                        kill_during(&fx.driver, "create", &["--bundle", &bdir, &id], at, usual, fx.timeout);
                    fx.missed(line, landed);
                }
                Verb::Start => {
                    let b = fx.bundle(&long)?;
                    let id = fx.new_id();
                    fx.created(&id, &b)?;
                    let (line, landed) = kill_during(&fx.driver, "start", &[&id], at, usual, fx.timeout);
                    fx.missed(line, landed);
                }
                Verb::Delete => {
                    let b = fx.bundle(&short)?;
                    let id = fx.new_id();
                    let io = fx.created(&id, &b)?;
                    fx.started(&id)?;
                    fx.until_stopped(&id, &io)?;
                    let (line, landed) = kill_during(&fx.driver, "delete", &[&id], at, usual, fx.timeout);
                    fx.missed(line, landed);
                }
            }
            // What the runtime makes of it afterwards is only logged.
            let id = fx.ids.last().cloned().unwrap_or_default();
            fx.status(&id)?;
        }
        Fault::DeleteRacesStart(p) => {
            let b = fx.bundle(&long)?;
            let id = fx.new_id();
            fx.created(&id, &b)?;
            let delay = cal.start.mul_f64(f64::from(p) / 100.0);
            let d = fx.driver.clone();
            let (start, delete) = std::thread::scope(|s| {
                let st = s.spawn(|| d.start(&id));
                std::thread::sleep(delay);
                let de = d.delete(&id, true);
                (st.join(), de)
            });
            let start = start.unwrap_or_else(|_| {
                Err(crate::runtime::Error::Io {
                    what: "start thread".into(),
                    source: std::io::Error::other("panicked"),
                })
            });
            fx.op("start", &id, start)?;
            fx.op("delete --force (racing)", &id, delete)?;
        }
        Fault::KillGone { deleted } => {
            let b = fx.bundle(&short)?;
            let id = fx.new_id();
            let io = fx.created(&id, &b)?;
            fx.started(&id)?;
            fx.until_stopped(&id, &io)?;
            if deleted {
                let r = fx.driver.delete(&id, false);
                let o = fx.op("delete", &id, r)?;
                if !o.status.success() {
                    return Err(fail(LEAK, "delete of a stopped container to succeed", o.reason()));
                }
            }
            let r = fx.driver.kill(&id, "KILL", false);
            let o = fx.op("kill", &id, r)?;
            // runtime.md kill: signalling a container that is neither
            // created nor running MUST generate an error.
            if o.status.success() {
                let what = if deleted { "deleted" } else { "stopped" };
                return Err(fail(
                    "runtime.kill.not-running-error",
                    format!("kill of a {what} container to fail"),
                    "exit 0",
                ));
            }
            if !deleted {
                let st = fx.status(&id)?;
                if st.as_deref() != Some("stopped") {
                    return Err(fail(
                        "runtime.kill.not-running-no-effect",
                        "the container still `stopped` after the refused kill",
                        format!("status {st:?}"),
                    ));
                }
            }
        }
        Fault::RootDiskFull(how) => {
            let b = fx.bundle(&long)?;
            let id = fx.new_id();
            let root = root_fs.unwrap_or(&fx.driver.root).to_path_buf();
            let filler = fill(&root, how);
            let r = fx.create(&id, &b);
            for f in &filler {
                let _ = std::fs::remove_file(f);
            }
            r?;
            fx.log.push(format!(
                "{} filler file(s) removed: the disk has room again",
                filler.len()
            ));
        }
        Fault::BundleRemoved => {
            let b = fx.bundle(&long)?;
            let id = fx.new_id();
            fx.created(&id, &b)?;
            fx.started(&id)?;
            let gone = std::fs::remove_dir_all(&b.dir);
            fx.log.push(format!("bundle {} removed: {gone:?}", b.dir.display()));
            fx.status(&id)?;
            let r = fx.driver.kill(&id, "KILL", false);
            fx.op("kill", &id, r)?;
            let deadline = Instant::now() + fx.timeout;
            while Instant::now() < deadline && fx.status(&id)?.as_deref() == Some("running") {
                std::thread::sleep(Duration::from_millis(10));
            }
            let r = fx.driver.delete(&id, false);
            fx.op("delete", &id, r)?;
        }
    }
    Ok(())
}

/// The checks after every fault: `delete --force` of everything the case
/// made, nothing left, and a full lifecycle on the same root.
fn aftermath(fx: &mut Fx, before: &Snapshot, scope: &Scope) -> std::result::Result<(), Verdict> {
    for id in fx.ids.clone() {
        let r = fx.driver.delete(&id, true);
        fx.op("delete --force", &id, r)?;
    }
    let (_, left) = leaks::settle(before, scope, Duration::from_secs(2));
    if !left.is_empty() {
        let list: Vec<String> = left.iter().map(ToString::to_string).collect();
        return Err(fail(
            LEAK,
            "nothing left after delete --force",
            format!("left behind: {}", list.join(", ")),
        ));
    }
    let b = fx.bundle(&[bundle::PROBE, "true"])?;
    let id = fx.new_id();
    let dir = fx.dir.clone();
    let driver = fx.driver.clone();
    match super::run::lifecycle(&driver, &b, &dir, &id, fx.timeout) {
        Ok(_) => fx.log.push(format!("later lifecycle {id}: ok")),
        Err(f) => {
            fx.log.push(format!("later lifecycle {id}: {}: {}", f.kind, f.detail));
            if f.kind.ends_with("timed out") {
                return Err(wedged_msg("a later lifecycle", format!("{}: {}", f.kind, f.detail)));
            }
            return Err(fail(
                LATER,
                "a later lifecycle on the same root to succeed",
                format!("{}: {}", f.kind, f.detail),
            ));
        }
    }
    let (_, left) = leaks::settle(before, scope, Duration::from_secs(2));
    if !left.is_empty() {
        let list: Vec<String> = left.iter().map(ToString::to_string).collect();
        return Err(fail(
            LEAK,
            "nothing left after the later lifecycle",
            format!("left behind: {}", list.join(", ")),
        ));
    }
    Ok(())
}

/// Usual durations of create, start and delete: the fastest of five plain
/// lifecycles, so that a kill at 90% still lands inside the verb.
pub fn calibrate(runtime: &Runtime, probe: &Path, work: &Path, timeout: Duration) -> Result<Calibration> {
    let dir = work.join("calibrate");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).map_err(|e| Error::Workdir {
        path: root.clone(),
        source: e,
    })?;
    let prefix = format!("{}cal", work.file_name().and_then(|n| n.to_str()).unwrap_or("oh"));
    let mut driver = runtime.driver(&root);
    driver.env.push((MARKER.to_string(), prefix.clone()));
    let mut spec = bundle::default_spec();
    spec.set_args(&[bundle::PROBE, "true"]);
    let b = Bundle::prepare(&dir.join("bundle"), probe)
        .and_then(|b| b.write_spec(&spec).map(|()| b))
        .map_err(|e| Error::Calibration(e.to_string()))?;
    let mut t: [Vec<f64>; 3] = Default::default();
    for i in 0..5 {
        let id = format!("{prefix}-{i}");
        let tm = super::run::lifecycle(&driver, &b, &dir, &id, timeout).map_err(|f| {
            crate::cleanup::sweep(&prefix, &dir, &root, &[]);
            Error::Calibration(format!("{}: {}", f.kind, f.detail))
        })?;
        t[0].push(tm.create);
        t[1].push(tm.start);
        t[2].push(tm.delete);
    }
    crate::cleanup::sweep(&prefix, &dir, &root, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    let fastest = |v: &[f64]| Duration::from_secs_f64(v.iter().copied().fold(f64::INFINITY, f64::min) / 1000.0);
    Ok(Calibration {
        create: fastest(&t[0]),
        start: fastest(&t[1]),
        delete: fastest(&t[2]),
    })
}

fn result(case: &FaultCase, status: Status, d: Duration) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        group: crate::cases::Selectable::group(case).to_string(),
        status,
        clauses: case.clauses().iter().map(|c| c.to_string()).collect(),
        duration_ms: d.as_millis() as u64,
        message: String::new(),
        failure: None,
        log: Vec::new(),
    }
}

/// What every case of one run shares.
struct Suite<'a> {
    token: String,
    runtime: &'a Runtime,
    probe: &'a Path,
    work: PathBuf,
    cal: Calibration,
    timeout: Duration,
}

fn run_one(case: &FaultCase, index: usize, suite: &Suite<'_>) -> CaseResult {
    let Suite {
        token,
        runtime,
        probe,
        work,
        cal,
        timeout,
    } = suite;
    let (cal, timeout) = (*cal, *timeout);
    let start = Instant::now();
    let dir = work.join(format!("{index}"));
    let root = dir.join("root");
    let harness_fail = |what: String| {
        let mut r = result(case, Status::Failed, start.elapsed());
        r.message = format!("[harness] {what}");
        r
    };
    if let Err(e) = std::fs::create_dir_all(&root) {
        return harness_fail(format!("cannot create {}: {e}", root.display()));
    }
    // The disk faults get a small tmpfs as `--root`: 1 MiB, or few inodes.
    let tmpfs = match case.fault {
        Fault::RootDiskFull(d) => {
            let opts = if d == Disk::NoInodes {
                "size=4m,nr_inodes=64"
            } else {
                "size=1m"
            };
            match Tmpfs::mount(&root, opts) {
                Ok(t) => Some(t),
                Err(e) => return harness_fail(format!("mounting a tmpfs on {}: {e}", root.display())),
            }
        }
        _ => None,
    };
    let prefix = format!("of{token}c{index}");
    let mut driver = runtime.driver(&root);
    driver.env.push((MARKER.to_string(), prefix.clone()));
    let scope = Scope {
        dirs: vec![dir.clone()],
        prefix: prefix.clone(),
        root: root.clone(),
        cgroup_paths: Vec::new(),
    };
    let before = Snapshot::take(&scope);
    let mut fx = Fx {
        driver,
        dir: dir.clone(),
        prefix: prefix.clone(),
        probe: probe.to_path_buf(),
        timeout,
        seq: 0,
        ids: Vec::new(),
        log: Vec::new(),
        missed: None,
    };
    let root_fs = tmpfs.as_ref().map(|t| t.0.clone());
    // A verdict from the fault itself stands; the aftermath still runs, so
    // nothing stays behind for the next case, and what it finds is added.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match inject(&mut fx, case.fault, &cal, root_fs.as_deref()) {
            Ok(()) => aftermath(&mut fx, &before, &scope).and_then(|()| match fx.missed.take() {
                Some(why) => Err(crate::case::skip(format!("{MISSED}: {why}"))),
                None => Ok(()),
            }),
            Err(Verdict::Fail(mut f)) if f.clause != "harness" => {
                if let Err(Verdict::Fail(g)) = aftermath(&mut fx, &before, &scope) {
                    f.observed = format!("{}; and then {g}", f.observed);
                }
                Err(Verdict::Fail(f))
            }
            Err(v) => Err(v),
        }
    }));
    // Unmounted first, so the sweep does not count the tmpfs as a leftover.
    drop(tmpfs);
    let swept: Vec<String> = crate::cleanup::sweep(&prefix, &dir, &root, &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    if !swept.is_empty() {
        fx.log.push(format!("swept after the case: {}", swept.join(", ")));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let verdict = crate::runner::judge(
        outcome,
        &[],
        &crate::runner::Leak {
            clause: LEAK,
            expected: "nothing left after delete --force",
            label: "left behind",
        },
    );
    let log = std::mem::take(&mut fx.log);
    let mut r = crate::runner::record(result(case, Status::Skipped, start.elapsed()), verdict, log);
    r.duration_ms = start.elapsed().as_millis() as u64;
    r
}

/// Runs `cases` one at a time (their timing must not be disturbed by each
/// other) and returns the results; `progress` is called after each.
pub fn run(
    cases: &[FaultCase],
    runtime: &Runtime,
    probe: &Path,
    opts: &Options,
    progress: &dyn Fn(usize, usize, &CaseResult),
) -> Result<Results> {
    crate::runner::check_probe(probe)?;
    crate::reaper::start();
    crate::runner::install_interrupt_handler();
    let started_at = crate::runner::now_rfc3339();
    let start = Instant::now();
    let token = crate::runner::token();
    let work = opts.workdir.join(format!("oci-faults-{token}"));
    std::fs::create_dir_all(&work).map_err(|e| Error::Workdir {
        path: work.clone(),
        source: e,
    })?;
    let cal = match calibrate(runtime, probe, &work, opts.timeout) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
    };
    let host = Arc::new(crate::host::Host::detect());
    let suite = Suite {
        token,
        runtime,
        probe,
        work: work.clone(),
        cal,
        timeout: opts.timeout,
    };
    let mut out = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let r = if crate::runner::interrupted() {
            let mut r = result(c, Status::Skipped, Duration::ZERO);
            r.message = "interrupted".into();
            r
        } else {
            // A kill that came after the verb ended tested nothing: try
            // again (timings vary from one run of a verb to the next).
            let mut r = run_one(c, i, &suite);
            for _ in 0..2 {
                if r.status != Status::Skipped || !r.message.starts_with(MISSED) {
                    break;
                }
                r = run_one(c, i, &suite);
            }
            r
        };
        progress(i + 1, cases.len(), &r);
        out.push(r);
    }
    let _ = std::fs::remove_dir_all(&work);
    let summary = Results::summarize(&out, specs::catalog());
    Ok(Results {
        schema: results::SCHEMA,
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: runtime.info(),
        host: serde_json::to_value(&*host).unwrap_or_default(),
        started_at,
        command: opts.command.clone(),
        duration_ms: start.elapsed().as_millis() as u64,
        cases: out,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{select_cases, Selectable};

    #[test]
    fn ids_are_unique_and_grouped() {
        let all = all();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert!(all.iter().all(|c| c.id.contains("::")));
        let groups: std::collections::BTreeSet<&str> = all.iter().map(|c| c.group()).collect();
        for g in [
            "sigkill_create",
            "sigkill_start",
            "sigkill_delete",
            "delete_races_start",
            "kill_gone",
            "root_disk_full",
            "bundle_removed",
        ] {
            assert!(groups.contains(g), "{g}");
        }
    }

    #[test]
    fn selection_by_group_and_id() {
        let only = vec!["kill_gone".to_string(), "sigkill_start::at_first_child".to_string()];
        let s = select_cases(all(), &only, &[], "fault").unwrap();
        assert_eq!(s.len(), 3);
        let err = select_cases(all(), &["nope".to_string()], &[], "fault").unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn kill_gone_cites_the_kill_clauses() {
        let c = all().into_iter().find(|c| c.id == "kill_gone::stopped").unwrap();
        assert_eq!(c.clauses()[0], "runtime.kill.not-running-error");
        assert!(c.clauses().contains(&LEAK));
    }
}
