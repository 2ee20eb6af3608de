//! `cri monitor`: one host process per container (conmon's role). It runs
//! `RUNTIME create` with the container's stdout and stderr on pipes, turns
//! what the container writes into CRI log lines at the path kubelet gave,
//! becomes the container's subreaper, and records the exit status on disk
//! when the container ends, so containers outlive a restart of the server.
//!
//! Protocol with the server: after `create` the monitor prints one line on
//! its stdout, `ok PID` or `error MESSAGE`, then closes it. SIGUSR1 reopens
//! the log file (ReopenContainerLog).
//!
//! The monitor also holds the container's stdio for attach: before `ok` it
//! serves [`crate::streaming::attach::Hub`] on `STATE_DIR/attach`, which
//! gets every byte the log gets, and writes attached clients' input to the
//! container's stdin (a pipe, when the config asked for stdin). A tty
//! container gets a terminal instead of pipes: the runtime hands its master
//! over on a console socket, and the monitor reads output from it, writes
//! input to it and sets its window size.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::streaming::attach::{kind, Hub};
use crate::streaming::console;

/// File names in the container's state directory.
pub const PID_FILE: &str = "pid";
pub const MONITOR_PID_FILE: &str = "monitor.pid";
pub const EXIT_FILE: &str = "exit.json";
pub const RUNTIME_LOG: &str = "runtime.log";

/// Lines longer than this are split into partial (`P`) records.
const MAX_LINE: usize = 16 * 1024;

/// How the container ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, or 128 + the signal's number.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Nanoseconds since the epoch.
    pub finished_at: i64,
    /// The memory cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

pub fn read_exit(state_dir: &Path) -> Option<Exit> {
    let bytes = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What `cri monitor` is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub runtime: PathBuf,
    pub runtime_args: Vec<String>,
    pub runtime_root: PathBuf,
    pub bundle: PathBuf,
    pub id: String,
    pub state_dir: PathBuf,
    /// None: output is read and dropped.
    pub log_path: Option<PathBuf>,
    /// Memory cgroup directories to check for OOM kills on exit.
    pub oom_files: Vec<PathBuf>,
    /// Keep the container's stdin open for attached clients.
    pub stdin: bool,
    /// The first attached client to close stdin closes the container's.
    pub stdin_once: bool,
    /// The container's process has a terminal (`process.terminal`).
    pub tty: bool,
}

impl Options {
    /// The argument list of `cri monitor` for these options.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "monitor".to_string(),
            "--runtime".into(),
            self.runtime.display().to_string(),
        ];
        for r in &self.runtime_args {
            a.push(format!("--runtime-arg={r}"));
        }
        a.extend(["--runtime-root".into(), self.runtime_root.display().to_string()]);
        a.extend(["--bundle".into(), self.bundle.display().to_string()]);
        a.extend(["--state-dir".into(), self.state_dir.display().to_string()]);
        if let Some(l) = &self.log_path {
            a.extend(["--log-path".into(), l.display().to_string()]);
        }
        for f in &self.oom_files {
            a.extend(["--oom-file".into(), f.display().to_string()]);
        }
        for (on, flag) in [
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
            (self.tty, "--tty"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        a.push(self.id.clone());
        a
    }
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Formats one CRI log record: `<RFC3339Nano> <stream> <F|P> <text>\n`.
pub fn log_record(time: SystemTime, stream: &str, partial: bool, text: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{} {} {} ",
        container::time::rfc3339(time, 9),
        stream,
        if partial { "P" } else { "F" }
    )
    .into_bytes();
    out.extend_from_slice(text);
    out.push(b'\n');
    out
}

/// Splits `buf` into complete records, leaving an unfinished line in it
/// (or emitting it as partial when it grew past `max`).
pub fn take_records(buf: &mut Vec<u8>, max: usize, eof: bool) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            if nl > max {
                out.push((true, buf.drain(..max).collect()));
                continue;
            }
            let mut line: Vec<u8> = buf.drain(..=nl).collect();
            line.pop();
            out.push((false, line));
        } else if buf.len() > max {
            out.push((true, buf.drain(..max).collect()));
        } else {
            if eof && !buf.is_empty() {
                out.push((false, std::mem::take(buf)));
            }
            return out;
        }
    }
}

struct Log {
    path: Option<PathBuf>,
    file: Option<File>,
}

impl Log {
    fn open(path: Option<PathBuf>) -> std::io::Result<Log> {
        let file = match &path {
            Some(p) => {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Some(OpenOptions::new().create(true).append(true).open(p)?)
            }
            None => None,
        };
        Ok(Log { path, file })
    }
    fn reopen(&mut self) {
        if let Ok(l) = Log::open(self.path.clone()) {
            *self = l;
        }
    }
    fn write(&mut self, record: &[u8]) {
        if let Some(f) = &mut self.file {
            // A full disk must not stop the container: the record is lost.
            let _ = f.write_all(record);
        }
    }
}

static REOPEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {
    REOPEN.store(true, Ordering::SeqCst);
}

/// Copies one output stream of the container to the log and to attached
/// clients, until it ends.
fn pump(mut pipe: impl Read, stream: &'static str, log: Arc<Mutex<Log>>, hub: Arc<Hub>) {
    let frame = if stream == "stderr" { kind::STDERR } else { kind::STDOUT };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let (n, eof) = match pipe.read(&mut chunk) {
            Ok(0) => (0, true),
            Ok(n) => (n, false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => (0, true),
        };
        hub.output(frame, &chunk[..n]);
        buf.extend_from_slice(&chunk[..n]);
        let now = SystemTime::now();
        let records = take_records(&mut buf, MAX_LINE, eof);
        if !records.is_empty() {
            let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
            for (partial, text) in records {
                l.write(&log_record(now, stream, partial, &text));
            }
        }
        if eof {
            return;
        }
    }
}

fn oom_killed(files: &[PathBuf]) -> bool {
    files.iter().any(|f| {
        std::fs::read_to_string(f).ok().is_some_and(|text| {
            text.lines().any(|l| {
                let mut it = l.split_whitespace();
                it.next() == Some("oom_kill") && it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) > 0
            })
        })
    })
}

/// Points stdout and stderr at /dev/null: the server reads the monitor's
/// stdout only until the `ok` line, and must see it close.
fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
        // SAFETY: dup2 onto the standard descriptors with a valid open fd.
        unsafe {
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
        }
    }
}

/// [`run`] for the `cri monitor` process.
pub fn run_detached(opts: &Options, announce: &mut dyn Write) -> i32 {
    run(opts, announce)
}

/// Runs the monitor; returns the process's exit code. `announce` is where
/// the `ok`/`error` line goes (the monitor's stdout).
pub fn run(opts: &Options, announce: &mut dyn Write) -> i32 {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let _ = std::fs::write(opts.state_dir.join(MONITOR_PID_FILE), std::process::id().to_string());
    let log = match Log::open(opts.log_path.clone()) {
        Ok(l) => Arc::new(Mutex::new(l)),
        Err(e) => {
            let _ = writeln!(
                announce,
                "error opening log {}: {e}",
                opts.log_path.as_ref().unwrap().display()
            );
            return 1;
        }
    };
    let pid_file = opts.state_dir.join(PID_FILE);
    let runtime_log = opts.state_dir.join(RUNTIME_LOG);
    let fail_detail = |what: String| {
        let detail = std::fs::read_to_string(&runtime_log).unwrap_or_default();
        let detail = detail.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        format!("error {} create: {what}: {detail}", opts.runtime.display())
    };
    let console = if opts.tty {
        match console_socket() {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = writeln!(announce, "error creating a console socket: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    let mut cmd = Command::new(&opts.runtime);
    cmd.args(&opts.runtime_args)
        .arg("--root")
        .arg(&opts.runtime_root)
        .arg("--log")
        .arg(&runtime_log)
        .arg("create")
        .arg("--bundle")
        .arg(&opts.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    if let Some((dir, _)) = &console {
        cmd.arg("--console-socket").arg(dir.socket());
    }
    cmd.arg(&opts.id);
    let mut stdin = None;
    if opts.tty {
        // The container's stdio is the terminal; the runtime's own is not
        // the container's output.
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    } else {
        if opts.stdin {
            let (r, w) = match std::io::pipe() {
                Ok(p) => p,
                Err(e) => {
                    let _ = writeln!(announce, "error creating the stdin pipe: {e}");
                    return 1;
                }
            };
            cmd.stdin(r);
            stdin = Some(w);
        } else {
            cmd.stdin(Stdio::null());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let spawned = cmd.spawn();
    // Our copy of the stdin pipe's read end goes with the command.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(announce, "error spawning {}: {e}", opts.runtime.display());
            return 1;
        }
    };
    let (hub, pumps) = match serve_stdio(opts, &mut child, console, stdin, &log) {
        Ok(h) => h,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let _ = writeln!(announce, "{}", fail_detail(e));
            return 1;
        }
    };
    let status = child.wait();
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let pid = match (status, pid) {
        (Ok(s), Some(pid)) if s.success() => pid,
        (status, _) => {
            let _ = writeln!(announce, "{}", fail_detail(format!("{status:?}")));
            return 1;
        }
    };
    // SAFETY: the handler only stores to an atomic; no SA_RESTART, so a
    // blocking waitpid returns EINTR and the loop below reopens the log.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let _ = writeln!(announce, "ok {pid}");
    let _ = announce.flush();
    detach_stdio();
    let wait_status = loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid {
            break Some(status);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                if REOPEN.swap(false, Ordering::SeqCst) {
                    log.lock().unwrap_or_else(|p| p.into_inner()).reopen();
                }
                continue;
            }
            break None;
        }
    };
    let finished_at = now_ns();
    // Output still buffered in the pipes belongs before the exit record; a
    // daemon the container left behind may hold them open, so bounded.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for t in pumps {
            let _ = t.join();
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(2));
    let (code, signal) = match wait_status {
        Some(s) if libc::WIFEXITED(s) => (libc::WEXITSTATUS(s), None),
        Some(s) if libc::WIFSIGNALED(s) => (128 + libc::WTERMSIG(s), Some(libc::WTERMSIG(s))),
        _ => (255, None),
    };
    let exit = Exit {
        code,
        signal,
        finished_at,
        oom_killed: oom_killed(&opts.oom_files),
    };
    let json = serde_json::to_vec(&exit).unwrap_or_default();
    let _ = crate::store::write_atomic(&opts.state_dir.join(EXIT_FILE), &json);
    // Attached clients learn of the end once ContainerStatus can report it.
    hub.exit(code);
    0
}

/// How long the runtime gets to hand over a tty container's terminal.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A private directory holding the console socket, removed on drop. Its
/// path goes to the runtime, so it must fit a sockaddr_un (108 bytes),
/// which the container's state directory may not.
struct ConsoleDir(PathBuf);

impl ConsoleDir {
    fn socket(&self) -> PathBuf {
        self.0.join("console.sock")
    }
}

impl Drop for ConsoleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn console_socket() -> std::io::Result<(ConsoleDir, UnixListener)> {
    let dir = ConsoleDir(std::env::temp_dir().join(format!("cri-console-{}", &crate::new_id()[..16])));
    std::fs::DirBuilder::new().mode(0o700).create(&dir.0)?;
    let listener = UnixListener::bind(dir.socket())?;
    Ok((dir, listener))
}

/// Starts serving attach and pumping the container's output: from the
/// terminal the runtime sends on `console` for a tty container, else from
/// the runtime's stdout and stderr pipes (which the container inherits).
fn serve_stdio(
    opts: &Options,
    child: &mut Child,
    console: Option<(ConsoleDir, UnixListener)>,
    stdin: Option<std::io::PipeWriter>,
    log: &Arc<Mutex<Log>>,
) -> Result<(Arc<Hub>, Vec<JoinHandle<()>>), String> {
    let listen = |stdin: Option<Box<dyn Write + Send>>, resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>| {
        Hub::listen(&opts.state_dir, stdin, resize, opts.stdin_once)
            .map_err(|e| format!("serving attach in {}: {e}", opts.state_dir.display()))
    };
    let mut pumps = Vec::new();
    if let Some((_dir, listener)) = console {
        let master = console::receive_master(&listener, child, CONSOLE_TIMEOUT)
            .map_err(|e| format!("receiving the terminal on the console socket: {e}"))?;
        let master = File::from(master);
        let dup = |f: &File| f.try_clone().map_err(|e| format!("dup of the terminal: {e}"));
        let stdin: Option<Box<dyn Write + Send>> = if opts.stdin {
            Some(Box::new(dup(&master)?))
        } else {
            None
        };
        let resizer = dup(&master)?;
        let hub = listen(
            stdin,
            Some(Box::new(move |w, h| {
                let _ = console::set_size(&resizer, w, h);
            })),
        )?;
        let (l, h) = (log.clone(), hub.clone());
        pumps.push(std::thread::spawn(move || pump(master, "stdout", l, h)));
        return Ok((hub, pumps));
    }
    let hub = listen(stdin.map(|w| Box::new(w) as Box<dyn Write + Send>), None)?;
    let out = child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
    let err = child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
    for (pipe, stream) in [(out, "stdout"), (err, "stderr")] {
        if let Some(p) = pipe {
            let (l, h) = (log.clone(), hub.clone());
            pumps.push(std::thread::spawn(move || pump(p, stream, l, h)));
        }
    }
    Ok((hub, pumps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_full_and_partial_records() {
        let mut buf = b"one\ntwo\nthr".to_vec();
        let r = take_records(&mut buf, 16, false);
        assert_eq!(r, vec![(false, b"one".to_vec()), (false, b"two".to_vec())]);
        assert_eq!(buf, b"thr");
        buf.extend_from_slice(b"eeeeeeeeeeeeeeeeeeee\n");
        let r = take_records(&mut buf, 8, false);
        assert_eq!(r[0], (true, b"threeeee".to_vec()));
        assert_eq!(r.last().unwrap(), &(false, b"eeeeeee".to_vec()));
        assert!(r[..r.len() - 1].iter().all(|(p, _)| *p));
        buf.extend_from_slice(b"tail");
        assert_eq!(take_records(&mut buf, 8, true), vec![(false, b"tail".to_vec())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn record_format_is_cri() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let r = log_record(t, "stderr", true, b"hi there");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "2023-11-14T22:13:20.000000005Z stderr P hi there\n"
        );
    }

    #[test]
    fn oom_kill_counter_is_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.events");
        std::fs::write(&f, "low 0\noom 1\noom_kill 0\n").unwrap();
        assert!(!oom_killed(std::slice::from_ref(&f)));
        std::fs::write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        assert!(oom_killed(&[f]));
    }
}
