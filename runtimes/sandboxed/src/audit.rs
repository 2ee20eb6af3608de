//! The audit log of denials: one JSON object per line.
//!
//! Each line is built in memory and written with one `write(2)` on a file
//! opened `O_APPEND`, so lines from many threads (and from several
//! supervisors sharing a file) never interleave: the kernel appends a whole
//! write under the inode lock for a regular file, and atomically for a pipe
//! when the line is shorter than `PIPE_BUF`. Logging never panics and never
//! fails the call it records: a failed write is counted ([`Audit::errors`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;

use crate::policy::{Errno, Request, SocketDomain, SocketType};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open audit log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// What the denied call asked for, as far as the policy looked at it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Args {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<SocketDomain>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<SocketType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ptrace_request: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ioctl_request: Option<u64>,
}

impl From<&Request<'_>> for Args {
    fn from(r: &Request<'_>) -> Self {
        Self {
            paths: r.paths.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
            flags: r.open_flags,
            domain: r.socket_domain.map(SocketDomain),
            // Without SOCK_NONBLOCK/SOCK_CLOEXEC, so the type reads by name.
            socket_type: r.socket_type.map(|t| SocketType(t & 0xf)),
            namespaces: (r.syscall == "unshare" || r.syscall == "setns").then_some(r.namespaces),
            ptrace_request: r.ptrace_request,
            ioctl_request: r.ioctl_request,
        }
    }
}

/// One denial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenialRecord {
    pub time: SystemTime,
    pub container_id: String,
    /// The calling thread's pid as the supervisor sees it.
    pub pid: u32,
    pub syscall: String,
    pub args: Args,
    pub errno: i32,
    /// The policy rule (or resolution outcome, e.g. `magic-link`) that denied.
    pub rule: String,
}

impl DenialRecord {
    /// The record of a request the policy (or resolution) denied, now.
    pub fn new(container_id: &str, pid: u32, req: &Request<'_>, errno: i32, rule: &str) -> Self {
        Self {
            time: SystemTime::now(),
            container_id: container_id.to_owned(),
            pid,
            syscall: req.syscall.to_owned(),
            args: Args::from(req),
            errno,
            rule: rule.to_owned(),
        }
    }

    /// The JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            container_id: &'a str,
            pid: u32,
            syscall: &'a str,
            args: &'a Args,
            errno: i32,
            #[serde(skip_serializing_if = "Option::is_none")]
            errno_name: Option<&'static str>,
            rule: &'a str,
        }
        let line = Line {
            time: rfc3339(self.time),
            container_id: &self.container_id,
            pid: self.pid,
            syscall: &self.syscall,
            args: &self.args,
            errno: self.errno,
            errno_name: Errno(self.errno).name(),
            rule: &self.rule,
        };
        // Serialising plain strings and integers into a Vec cannot fail;
        // should it ever, an empty object still keeps the file line-shaped.
        let mut buf = serde_json::to_vec(&line).unwrap_or_else(|_| b"{}".to_vec());
        buf.push(b'\n');
        buf
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC). Times before the epoch
/// (a clock set wrong) print as the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    container::time::rfc3339(t, 3)
}

enum Sink {
    File(File),
    Stderr,
}

/// The denial log.
pub struct Audit {
    sink: Sink,
    written: AtomicU64,
    errors: AtomicU64,
}

impl Audit {
    /// Append to `path` (created 0600 if missing).
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self::with_sink(Sink::File(file)))
    }

    /// Write to the supervisor's stderr.
    pub fn stderr() -> Self {
        Self::with_sink(Sink::Stderr)
    }

    fn with_sink(sink: Sink) -> Self {
        Self {
            sink,
            written: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Log one denial: one line, one write. Never panics; a failed or
    /// short write is counted in [`Audit::errors`].
    pub fn deny(&self, rec: &DenialRecord) {
        let line = rec.to_line();
        let result = match &self.sink {
            // `Write for &File` is one write(2), no buffering.
            Sink::File(f) => write_once(&mut &*f, &line),
            // Stderr is unbuffered: one write(2) as well.
            Sink::Stderr => write_once(&mut io::stderr().lock(), &line),
        };
        match result {
            Ok(()) => self.written.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.errors.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Lines written whole.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Lines lost (failed or short writes).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// One write of the whole line, retried only on EINTR (nothing written).
/// A short write is not completed: a second write could land after another
/// writer's line and split this one, so it counts as an error instead.
fn write_once(w: &mut impl Write, line: &[u8]) -> io::Result<()> {
    loop {
        match w.write(line) {
            Ok(n) if n == line.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {n} of {} bytes", line.len()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn record(i: u32) -> DenialRecord {
        let req = Request {
            syscall: "openat",
            paths: vec![PathBuf::from(format!("/proc/sys/kernel/x{i}"))],
            open_flags: Some(libc::O_WRONLY),
            ..Request::default()
        };
        DenialRecord::new("ctr-1", 4242 + i, &req, libc::EACCES, "kernel-tunables-write-open")
    }

    #[test]
    fn rfc3339_known_instants() {
        let at = |s: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_798_544_096, 999), "2026-12-29T11:34:56.999Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn line_format() {
        let mut rec = record(0);
        rec.time = UNIX_EPOCH + Duration::from_secs(951_782_400);
        let line = rec.to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2000-02-29T00:00:00.000Z",
                "container_id": "ctr-1",
                "pid": 4242,
                "syscall": "openat",
                "args": {"paths": ["/proc/sys/kernel/x0"], "flags": libc::O_WRONLY},
                "errno": 13,
                "errno_name": "EACCES",
                "rule": "kernel-tunables-write-open",
            })
        );
    }

    #[test]
    fn socket_and_namespace_args_read_by_name() {
        let req = Request {
            syscall: "socket",
            socket_domain: Some(libc::AF_PACKET),
            socket_type: Some(libc::SOCK_RAW | libc::SOCK_CLOEXEC),
            ..Request::default()
        };
        let v: serde_json::Value =
            serde_json::from_slice(&DenialRecord::new("c", 1, &req, libc::EPERM, "socket-packet").to_line()).unwrap();
        assert_eq!(
            v["args"],
            serde_json::json!({"domain": "AF_PACKET", "type": "SOCK_RAW"})
        );
        let req = Request {
            syscall: "unshare",
            namespaces: libc::CLONE_NEWUSER as u64,
            ..Request::default()
        };
        let v: serde_json::Value =
            serde_json::from_slice(&DenialRecord::new("c", 1, &req, libc::EPERM, "ns").to_line()).unwrap();
        assert_eq!(v["args"], serde_json::json!({"namespaces": libc::CLONE_NEWUSER}));
    }

    #[test]
    fn concurrent_appends_keep_lines_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "").unwrap();
        // Two logs on the same file (two open file descriptions, as two
        // supervisors would have), each shared by four threads.
        let logs = [
            Arc::new(Audit::open(&path).unwrap()),
            Arc::new(Audit::open(&path).unwrap()),
        ];
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let log = Arc::clone(&logs[t as usize % 2]);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        log.deny(&record(t * 1000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(logs.iter().map(|l| l.written()).sum::<u64>(), 4000);
        assert_eq!(logs.iter().map(|l| l.errors()).sum::<u64>(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut pids: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["pid"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        pids.sort_unstable();
        let want: Vec<u64> = (0..8u64)
            .flat_map(|t| (0..500).map(move |i| 4242 + t * 1000 + i))
            .collect();
        assert_eq!(pids, want);
    }

    #[test]
    fn appends_to_existing_content_and_creates_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.jsonl");
        Audit::open(&path).unwrap().deny(&record(1));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        Audit::open(&path).unwrap().deny(&record(2));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn write_errors_are_counted_not_raised() {
        // /dev/full answers every write with ENOSPC.
        let log = Audit::open(Path::new("/dev/full")).unwrap();
        log.deny(&record(0));
        log.deny(&record(1));
        assert_eq!((log.written(), log.errors()), (0, 2));
    }

    #[test]
    fn open_error_names_the_path() {
        let e = Audit::open(Path::new("/nonexistent-dir/audit.jsonl"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent-dir/audit.jsonl"), "{e}");
    }

    #[test]
    fn stderr_sink_writes() {
        let log = Audit::stderr();
        log.deny(&record(0));
        assert_eq!(log.written() + log.errors(), 1);
    }
}
