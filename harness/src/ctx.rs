//! What a case works with: a private directory and `--root`, container ids
//! that carry the case's marker, helpers that drive the runtime and turn its
//! answers into verdicts, and a transcript of every operation.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oci_spec::runtime::Spec;
use serde_json::Value;

use crate::bundle::{self, Bundle, SpecExt};
use crate::case::{fail, skip, Verdict};
use crate::cleanup::{self, MARKER};
use crate::host::Host;
use crate::reaper;
use crate::runtime::{ContainerIo, CreateOpts, Driver, ExitStatus, Output, State};

/// A created container, as the case knows it.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub bundle: Bundle,
    /// From `state` right after `create` (or the pid file).
    pub pid: Option<i32>,
    pub io: ContainerIo,
}

/// A container run to its end with create, start and delete.
#[derive(Debug, Clone)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    /// The process's exit status, when the harness could reap it.
    pub status: Option<ExitStatus>,
}

/// Shared by every case of one run.
#[derive(Debug)]
pub struct Shared {
    pub host: Host,
    /// The runtime's `features` document, if it has the command.
    pub features: Option<Value>,
    pub probe: PathBuf,
    /// How long a container may take to finish its work.
    pub timeout: Duration,
    /// The host's hostname when the run began.
    pub host_name: String,
}

pub struct Ctx {
    pub case_id: &'static str,
    /// The clause a failure of the plumbing (create, start) is charged to.
    pub clause: &'static str,
    pub shared: Arc<Shared>,
    driver: Driver,
    dir: PathBuf,
    prefix: String,
    seq: u32,
    ids: Vec<String>,
    pids: Vec<i32>,
    helpers: Vec<std::process::Child>,
    cgroup_paths: Vec<PathBuf>,
    log: Vec<String>,
}

impl Ctx {
    /// `dir` must exist and be private to this case; `prefix` unique in the
    /// run (it names container ids and marks processes).
    pub fn new(
        case_id: &'static str,
        clause: &'static str,
        shared: Arc<Shared>,
        mut driver: Driver,
        dir: PathBuf,
        prefix: String,
    ) -> Ctx {
        driver.env.push((MARKER.to_string(), prefix.clone()));
        Ctx {
            case_id,
            clause,
            shared,
            driver,
            dir,
            prefix,
            seq: 0,
            ids: Vec::new(),
            pids: Vec::new(),
            helpers: Vec::new(),
            cgroup_paths: Vec::new(),
            log: Vec::new(),
        }
    }

    pub fn host(&self) -> &Host {
        &self.shared.host
    }

    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// A private scratch directory for this case.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The transcript of runtime operations, for failure reports.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
    }

    /// A fresh container id, unique in the run and carrying the marker.
    pub fn new_id(&mut self) -> String {
        self.seq += 1;
        let id = format!("{}-{}", self.prefix, self.seq);
        self.ids.push(id.clone());
        id
    }

    /// A fresh path under the case directory (not created).
    pub fn path(&mut self, name: &str) -> PathBuf {
        self.seq += 1;
        self.dir.join(format!("{name}-{}", self.seq))
    }

    /// A cgroup path unique to this case, remembered for the leak sweep.
    pub fn cgroup_path(&mut self, leaf: &str) -> String {
        self.seq += 1;
        let p = format!("/{}-{}-{leaf}", self.prefix, self.seq);
        self.cgroup_paths.push(PathBuf::from(&p));
        p
    }

    /// The default config with this case's marker in the environment.
    pub fn spec(&self) -> Spec {
        let mut spec = bundle::default_spec();
        let env = spec.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
        env.push(format!("{MARKER}={}", self.prefix));
        spec
    }

    fn harness_error(&self, what: impl std::fmt::Display) -> Verdict {
        fail("harness", "the harness to set the case up", format!("{what}"))
    }

    /// Writes a validated bundle for `spec`.
    pub fn bundle(&mut self, spec: &Spec) -> Result<Bundle, Verdict> {
        let dir = self.path("bundle");
        let b = Bundle::prepare(&dir, &self.shared.probe).map_err(|e| self.harness_error(e))?;
        b.write_spec(spec).map_err(|e| self.harness_error(e))?;
        Ok(b)
    }

    /// Writes a bundle whose config is `config` as given, unvalidated.
    pub fn bundle_raw(&mut self, config: &Value) -> Result<Bundle, Verdict> {
        let dir = self.path("bundle");
        let b = Bundle::prepare(&dir, &self.shared.probe).map_err(|e| self.harness_error(e))?;
        b.write_raw(config).map_err(|e| self.harness_error(e))?;
        Ok(b)
    }

    /// The default spec as JSON, for cases that write raw configs.
    pub fn spec_json(&self) -> Value {
        serde_json::to_value(self.spec()).unwrap_or(Value::Null)
    }

    fn record(&mut self, verb: &str, id: &str, r: Result<&Output, &crate::runtime::Error>) {
        let line = match r {
            Ok(o) => format!(
                "{verb} {id}: {} in {} ms{}",
                o.status,
                o.duration.as_millis(),
                if o.status.success() {
                    String::new()
                } else {
                    format!(": {}", o.reason())
                }
            ),
            Err(e) => format!("{verb} {id}: {e}"),
        };
        self.log.push(line);
    }

    /// A runtime error that is not the runtime's answer: a timeout or a
    /// failure to spawn it. Timeouts are failures of the runtime.
    fn driver_error(&self, verb: &str, e: crate::runtime::Error) -> Verdict {
        match e {
            crate::runtime::Error::Timeout { .. } => fail(self.clause, format!("`{verb}` to finish"), e),
            other => self.harness_error(other),
        }
    }

    /// `create` with options; the raw answer, for cases that judge it.
    pub fn create_raw(
        &mut self,
        id: &str,
        bundle: &Bundle,
        opts: &CreateOpts,
    ) -> Result<(Output, ContainerIo), Verdict> {
        let r = self.driver.create(id, &bundle.dir, opts);
        self.record("create", id, r.as_ref().map(|(o, _)| o));
        r.map_err(|e| self.driver_error("create", e))
    }

    /// Creates a container from `bundle`; a runtime refusal fails the case.
    pub fn create_with(&mut self, bundle: &Bundle, opts: &CreateOpts) -> Result<Container, Verdict> {
        let id = self.new_id();
        let mut opts = opts.clone();
        let pid_file = opts
            .pid_file
            .get_or_insert_with(|| self.dir.join(format!("{id}.pid")))
            .clone();
        let (out, io) = self.create_raw(&id, bundle, &opts)?;
        if !out.status.success() {
            return Err(fail(
                self.clause,
                "create to succeed",
                format!("create: {}: {}", out.status, out.reason()),
            ));
        }
        let from_file = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let pid = match from_file {
            Some(p) => Some(p),
            None => self.state(&id).ok().and_then(|s| s.pid).map(|p| p as i32),
        };
        if let Some(p) = pid.filter(|&p| p > 0) {
            self.pids.push(p);
        }
        Ok(Container {
            id,
            bundle: bundle.clone(),
            pid,
            io,
        })
    }

    pub fn create(&mut self, bundle: &Bundle) -> Result<Container, Verdict> {
        self.create_with(bundle, &CreateOpts::default())
    }

    /// Writes `spec` to a bundle and creates a container from it.
    pub fn create_spec(&mut self, spec: &Spec) -> Result<Container, Verdict> {
        let b = self.bundle(spec)?;
        self.create(&b)
    }

    pub fn start_raw(&mut self, id: &str) -> Result<Output, Verdict> {
        let r = self.driver.start(id);
        self.finish_op("start", id, r)
    }

    /// Starts `c`; a refusal fails the case.
    pub fn start(&mut self, c: &Container) -> Result<(), Verdict> {
        let out = self.start_raw(&c.id)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(
                self.clause,
                "start to succeed",
                format!("start: {}: {}", out.status, out.reason()),
            ))
        }
    }

    pub fn state_raw(&mut self, id: &str) -> Result<Output, Verdict> {
        let r = self.driver.state(id);
        self.finish_op("state", id, r)
    }

    /// `state` parsed; an error or unparsable output fails the case.
    pub fn state(&mut self, id: &str) -> Result<State, Verdict> {
        let out = self.state_raw(id)?;
        if !out.status.success() {
            return Err(fail(
                "runtime.query.returns-state",
                "state to succeed",
                format!("state: {}: {}", out.status, out.reason()),
            ));
        }
        State::parse(&out.stdout).map_err(|e| fail("runtime.query.returns-state", "state JSON", e))
    }

    pub fn kill(&mut self, id: &str, signal: &str) -> Result<Output, Verdict> {
        let r = self.driver.kill(id, signal, false);
        self.finish_op("kill", id, r)
    }

    pub fn delete(&mut self, id: &str, force: bool) -> Result<Output, Verdict> {
        let r = self.driver.delete(id, force);
        self.finish_op(if force { "delete --force" } else { "delete" }, id, r)
    }

    /// Any verb with arguments, for cases beyond the helpers.
    pub fn exec(&mut self, verb: &str, args: &[&str]) -> Result<Output, Verdict> {
        let a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let r = self.driver.exec(verb, &a);
        self.finish_op(verb, &args.join(" "), r)
    }

    fn finish_op(&mut self, verb: &str, id: &str, r: crate::runtime::Result<Output>) -> Result<Output, Verdict> {
        self.record(verb, id, r.as_ref());
        r.map_err(|e| self.driver_error(verb, e))
    }

    /// Polls `state` until `status` is `want` or the timeout passes.
    pub fn wait_status(&mut self, id: &str, want: &str) -> Result<State, Verdict> {
        let deadline = std::time::Instant::now() + self.shared.timeout;
        let mut last = None;
        while std::time::Instant::now() < deadline {
            let r = self.driver.state(id);
            if let Ok(o) = &r {
                if let Ok(s) = State::parse(&o.stdout) {
                    if s.status.as_deref() == Some(want) {
                        self.log.push(format!("state {id}: {want}"));
                        return Ok(s);
                    }
                    last = s.status.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(fail(
            "runtime.state.status",
            format!("status {want:?} within {:?}", self.shared.timeout),
            format!("status {last:?}"),
        ))
    }

    /// Waits for `c`'s process to end: its stdio reaches end of file and, if
    /// the harness can reap it, its exit status is known.
    pub fn wait_exit(&mut self, c: &Container) -> Result<Option<ExitStatus>, Verdict> {
        if !c.io.wait_eof(self.shared.timeout) {
            return Err(fail(
                self.clause,
                "the container process to exit",
                format!(
                    "still running after {:?}; output so far: {:?}",
                    self.shared.timeout,
                    tail(&c.io.stdout(), 200)
                ),
            ));
        }
        Ok(c.pid.and_then(|p| reaper::wait_exit(p, Duration::from_secs(2))))
    }

    /// Create, start, wait for the end, delete: the process's output.
    pub fn run_to_end(&mut self, spec: &Spec) -> Result<Finished, Verdict> {
        let b = self.bundle(spec)?;
        self.run_bundle(&b)
    }

    /// Creates and starts a container from `spec` and waits until the
    /// runtime reports it stopped; the container is not deleted.
    pub fn run_until_stopped(&mut self, spec: &Spec) -> Result<Container, Verdict> {
        let c = self.create_spec(spec)?;
        self.start(&c)?;
        self.wait_exit(&c)?;
        self.wait_status(&c.id, "stopped")?;
        Ok(c)
    }

    /// `run_to_end` for a bundle already on disk.
    pub fn run_bundle(&mut self, b: &Bundle) -> Result<Finished, Verdict> {
        let c = self.create(b)?;
        self.start(&c)?;
        let status = self.wait_exit(&c)?;
        // Only the runtime knows when it has noticed the exit.
        self.wait_status(&c.id, "stopped")?;
        let out = self.delete(&c.id, false)?;
        if !out.status.success() {
            return Err(fail(
                "runtime.lifecycle.destroy",
                "delete of a stopped container to succeed",
                format!("delete: {}: {}", out.status, out.reason()),
            ));
        }
        Ok(Finished {
            stdout: c.io.stdout(),
            stderr: c.io.stderr(),
            status,
        })
    }

    /// Runs `probe report ITEMS...` under `spec` and parses what it printed.
    pub fn report(&mut self, spec: &Spec, items: &[&str]) -> Result<probe::Report, Verdict> {
        let b = self.bundle(spec)?;
        self.report_in(&b, spec, items)
    }

    /// `report` in a bundle the case has already prepared (files placed in
    /// its rootfs or beside it): `spec` is rewritten there with the probe's
    /// arguments, then run to its end.
    pub fn report_in(&mut self, b: &Bundle, spec: &Spec, items: &[&str]) -> Result<probe::Report, Verdict> {
        let mut spec = spec.clone();
        let mut args = vec![bundle::PROBE, "report"];
        args.extend_from_slice(items);
        spec.set_args(&args);
        b.write_spec(&spec).map_err(|e| self.harness_error(e))?;
        let f = self.run_bundle(b)?;
        parse_report(&f.stdout).map_err(|e| {
            fail(
                self.clause,
                "the probe to print its report",
                format!("{e}; stderr: {:?}", tail(&f.stderr, 300)),
            )
        })
    }

    /// Starts a helper process of the harness's own (a namespace holder, a
    /// seccomp agent); it is killed when the case ends.
    pub fn spawn_helper(&mut self, cmd: &mut std::process::Command) -> Result<u32, Verdict> {
        let child = reaper::spawn(cmd).map_err(|e| self.harness_error(format!("spawning helper: {e}")))?;
        let pid = child.id();
        self.helpers.push(child);
        Ok(pid)
    }

    /// Requires a host feature, else skips.
    pub fn require(&self, ok: bool, what: &str) -> Result<(), Verdict> {
        if ok {
            Ok(())
        } else {
            Err(skip(format!("{what} is not available here")))
        }
    }

    /// Ends the case: kills and deletes every container it made, stops
    /// helpers, then sweeps for leaks. Returns what was left behind.
    pub fn teardown(&mut self) -> Vec<cleanup::Leak> {
        for id in std::mem::take(&mut self.ids) {
            // Only containers the runtime still knows need work.
            if matches!(self.driver.state(&id), Ok(o) if o.status.success()) {
                let _ = self.driver.kill(&id, "KILL", false);
                let r = self.driver.delete(&id, true);
                self.record("delete --force", &id, r.as_ref());
            }
        }
        for mut h in std::mem::take(&mut self.helpers) {
            let _ = h.kill();
            let _ = h.wait();
            reaper::release(h.id());
        }
        for &p in &self.pids {
            reaper::wait_exit(p, Duration::from_millis(200));
        }
        let mut leaks = cleanup::sweep(&self.prefix, &self.dir, &self.driver.root, &self.cgroup_paths);
        leaks.extend(cleanup::restore_host_name(&self.shared.host_name));
        leaks
    }
}

/// The last `n` characters of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// Finds the report line in the probe's output.
pub fn parse_report(stdout: &str) -> Result<probe::Report, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("no JSON line in stdout {:?}", tail(stdout, 200)))?;
    serde_json::from_str(line).map_err(|e| format!("report does not parse: {e}"))
}
