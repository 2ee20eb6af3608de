//! Spawning runtime processes with a deadline. Output is read by threads so a
//! runtime that floods a pipe cannot block, and a process that outlives its
//! deadline is killed with its whole process group.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{Error, Result};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    fn from_std(s: std::process::ExitStatus) -> ExitStatus {
        match (s.code(), s.signal()) {
            (Some(c), _) => ExitStatus::Code(c),
            (None, Some(sig)) => ExitStatus::Signal(sig),
            (None, None) => ExitStatus::Code(-1),
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What one runtime invocation did.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl Output {
    /// The last non-empty line of stderr, which is where runtimes put the
    /// reason of a failure; trimmed to keep messages readable.
    pub fn reason(&self) -> String {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let mut s: String = line.chars().take(300).collect();
        if s.is_empty() {
            s = "(no message)".into();
        }
        s
    }
}

/// Where the container's stdin comes from.
#[derive(Debug, Clone, Default)]
pub enum StdinMode {
    #[default]
    Null,
    /// These bytes, then end of file.
    Data(Vec<u8>),
}

/// A buffer filled by a reader thread until end of file.
#[derive(Debug, Default)]
struct Sink {
    data: Mutex<(Vec<u8>, bool)>,
    cond: Condvar,
}

impl Sink {
    fn spawn<R: Read + Send + 'static>(mut r: R) -> Arc<Sink> {
        let sink = Arc::new(Sink::default());
        let s = sink.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut g = s.data.lock().unwrap_or_else(|p| p.into_inner());
                        // Bounded: a runaway container cannot exhaust memory.
                        if g.0.len() < 16 << 20 {
                            g.0.extend_from_slice(&buf[..n]);
                        }
                    }
                }
            }
            let mut g = s.data.lock().unwrap_or_else(|p| p.into_inner());
            g.1 = true;
            s.cond.notify_all();
        });
        sink
    }

    /// Waits until end of file or `deadline`; true at end of file.
    fn wait_eof(&self, timeout: Duration) -> bool {
        let g = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cond
            .wait_timeout_while(g, timeout, |(_, eof)| !*eof)
            .unwrap_or_else(|p| p.into_inner());
        g.1
    }

    fn text(&self) -> String {
        let g = self.data.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&g.0).into_owned()
    }
}

/// The container's end of stdio: pipes whose write ends the container holds.
#[derive(Debug, Clone)]
pub struct ContainerIo {
    stdout: Arc<Sink>,
    stderr: Arc<Sink>,
}

impl ContainerIo {
    /// Waits for the container (and anything else holding the pipes) to close
    /// stdout and stderr; false when `timeout` passed first.
    pub fn wait_eof(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        let out = self.stdout.wait_eof(timeout);
        let left = timeout.saturating_sub(start.elapsed());
        out && self.stderr.wait_eof(left)
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

fn command(path: &Path, argv: &[OsString], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(path);
    cmd.args(argv);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // Its own process group, so a timeout kills the runtime and whatever it
    // forked, and a ^C aimed at the harness does not reach it first.
    cmd.process_group(0);
    cmd
}

/// Waits for `child` until `timeout`; on expiry kills its process group.
fn wait_deadline(child: &mut Child, verb: &str, timeout: Duration) -> Result<ExitStatus> {
    let r = wait_deadline_inner(child, verb, timeout);
    crate::reaper::release(child.id());
    r
}

fn wait_deadline_inner(child: &mut Child, verb: &str, timeout: Duration) -> Result<ExitStatus> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(ExitStatus::from_std(s)),
            Ok(None) => {}
            Err(e) => {
                return Err(Error::Io {
                    what: format!("waiting for `{verb}`"),
                    source: e,
                })
            }
        }
        if start.elapsed() >= timeout {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: kill(2) with a negative pid signals the process group we
            // created for this child (process_group(0)); no memory is touched.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                verb: verb.to_string(),
                secs: timeout.as_secs_f64(),
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn verb_of(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy())
        .find(|a| {
            matches!(
                a.as_ref(),
                "create"
                    | "start"
                    | "state"
                    | "kill"
                    | "delete"
                    | "run"
                    | "features"
                    | "exec"
                    | "ps"
                    | "list"
                    | "pause"
                    | "resume"
                    | "update"
            )
        })
        .map(|s| s.into_owned())
        .unwrap_or_else(|| {
            argv.first()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// Runs `path argv...` and collects its output; stdin is `input` or empty.
pub fn run_simple(
    path: &Path,
    argv: &[OsString],
    env: &[(String, String)],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    let verb = verb_of(argv);
    let start = Instant::now();
    let mut cmd = command(path, argv, env);
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = crate::reaper::spawn(&mut cmd).map_err(|e| Error::Spawn {
        path: path.to_path_buf(),
        verb: verb.clone(),
        source: e,
    })?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        let data = data.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let out = Sink::spawn(child.stdout.take().expect("piped stdout"));
    let err = Sink::spawn(child.stderr.take().expect("piped stderr"));
    let status = wait_deadline(&mut child, &verb, timeout)?;
    // A grandchild may still hold the pipes; do not wait on it for long.
    out.wait_eof(Duration::from_millis(500));
    err.wait_eof(Duration::from_millis(100));
    Ok(Output {
        status,
        stdout: out.text(),
        stderr: err.text(),
        duration: start.elapsed(),
    })
}

/// Runs `create` or `run`: the runtime passes the pipes on to the container,
/// so they are read until the container closes them, past the runtime's exit.
pub fn run_container(
    path: &Path,
    argv: &[OsString],
    env: &[(String, String)],
    stdin: StdinMode,
    timeout: Duration,
) -> Result<(Output, ContainerIo)> {
    let verb = verb_of(argv);
    let io_err = |what: &str, e: std::io::Error| Error::Io {
        what: what.to_string(),
        source: e,
    };
    let (out_r, out_w) = std::io::pipe().map_err(|e| io_err("stdout pipe", e))?;
    let (err_r, err_w) = std::io::pipe().map_err(|e| io_err("stderr pipe", e))?;
    let start = Instant::now();
    let mut cmd = command(path, argv, env);
    cmd.stdout(out_w).stderr(err_w);
    match &stdin {
        StdinMode::Null => cmd.stdin(Stdio::null()),
        StdinMode::Data(_) => cmd.stdin(Stdio::piped()),
    };
    let spawned = crate::reaper::spawn(&mut cmd);
    // Our copies of the write ends must go, or end of file never comes.
    drop(cmd);
    let mut child = spawned.map_err(|e| Error::Spawn {
        path: path.to_path_buf(),
        verb: verb.clone(),
        source: e,
    })?;
    if let (StdinMode::Data(data), Some(mut w)) = (stdin, child.stdin.take()) {
        thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let io = ContainerIo {
        stdout: Sink::spawn(out_r),
        stderr: Sink::spawn(err_r),
    };
    let status = wait_deadline(&mut child, &verb, timeout)?;
    if verb == "run" {
        io.wait_eof(Duration::from_millis(500));
    }
    Ok((
        Output {
            status,
            stdout: io.stdout(),
            stderr: io.stderr(),
            duration: start.elapsed(),
        },
        io,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_kills_the_process_group() {
        let argv: Vec<OsString> = vec!["-c".into(), "sleep 30 & sleep 30".into()];
        let start = Instant::now();
        let err = run_simple(Path::new("/bin/sh"), &argv, &[], None, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_and_status_are_collected() {
        let argv: Vec<OsString> = vec!["-c".into(), "echo out; echo err >&2; exit 3".into()];
        let o = run_simple(Path::new("/bin/sh"), &argv, &[], None, Duration::from_secs(5)).unwrap();
        assert_eq!(o.status, ExitStatus::Code(3));
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.reason(), "err");
    }

    #[test]
    fn container_pipes_outlive_the_spawner() {
        // The "runtime" exits at once; its background child (the
        // "container") writes later and closes the pipe when it ends.
        let argv: Vec<OsString> = vec!["-c".into(), "(sleep 0.2; echo late) & exit 0".into()];
        let (o, io) = run_container(
            Path::new("/bin/sh"),
            &argv,
            &[],
            StdinMode::Null,
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(o.status.success());
        assert!(io.wait_eof(Duration::from_secs(5)));
        assert_eq!(io.stdout(), "late\n");
    }

    #[test]
    fn stdin_data_reaches_the_process() {
        let argv: Vec<OsString> = vec!["-c".into(), "cat".into()];
        let (_, io) = run_container(
            Path::new("/bin/sh"),
            &argv,
            &[],
            StdinMode::Data(b"hello".to_vec()),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(io.wait_eof(Duration::from_secs(5)));
        assert_eq!(io.stdout(), "hello");
    }
}
