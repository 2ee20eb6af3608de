//! One runtime invocation timed to the microsecond: spawn, then block on a
//! pidfd until the process exits (no polling interval to quantise the
//! figure), then reap it with `wait4` for its CPU time and peak memory. The
//! deadline kills the whole process group, as the conformance driver does.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::runtime::{Driver, Error, ExitStatus, Result};

/// What one timed invocation did.
#[derive(Debug, Clone)]
pub struct Timed {
    pub status: ExitStatus,
    /// From just before the spawn to the reap.
    pub wall: Duration,
    /// CPU time of the process and the children it waited for.
    pub cpu: Duration,
    /// Peak resident set (KiB) of the process, or of a waited-for child.
    /// Never below the spawning process's own resident set at the spawn:
    /// std spawns with vfork semantics, and exec records the high-water mark
    /// of the memory it leaves, which is ours. Only figures above that floor
    /// are the child's.
    pub maxrss_kib: i64,
    /// Standard output, when asked for (`state`).
    pub stdout: String,
    /// The last line of standard error, for failure messages.
    pub reason: String,
}

impl Timed {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
}

/// Standard output of the invocation: discarded, or read after exit (fine for
/// `state`, whose output fits a pipe; a container must not hold it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    Null,
    Capture,
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory of ours is involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Blocks until the pidfd is readable (the process exited) or `timeout`
/// passes; true on exit.
fn poll_exit(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, count 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r == 0 || Instant::now() >= deadline {
            return false;
        }
        // EINTR (^C lands here): go on waiting; the caller decides later.
    }
}

/// Reaps `pid`, blocking; its status and resource usage.
fn reap(pid: i32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child `pid`; both out-pointers are valid
        // for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (status, ru);
        }
    }
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)");
    line.trim().chars().take(300).collect()
}

/// Runs `path argv...` with stdin from /dev/null and stderr into
/// `stderr_file` (a regular file: a container that inherits it cannot block
/// anyone), and times it.
// The child is reaped by wait4 (for its rusage), which std's wait cannot do.
#[allow(clippy::zombie_processes)]
pub fn run(
    path: &Path,
    argv: &[OsString],
    env: &[(String, String)],
    stdout: Stdout,
    stderr_file: &Path,
    timeout: Duration,
) -> Result<Timed> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| Error::Io { what, source }
    };
    let err = File::create(stderr_file).map_err(io("the runtime's stderr file"))?;
    let (out_r, out_w) = match stdout {
        Stdout::Capture => {
            let (r, w) = std::io::pipe().map_err(io("stdout pipe"))?;
            (Some(r), Some(w))
        }
        Stdout::Null => (None, None),
    };
    let mut cmd = Command::new(path);
    cmd.args(argv)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stderr(err)
        .process_group(0);
    match out_w {
        Some(w) => cmd.stdout(w),
        None => cmd.stdout(Stdio::null()),
    };
    let verb = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-') && !a.contains('/'))
        .unwrap_or_default();
    let start = Instant::now();
    let spawned = crate::reaper::spawn(&mut cmd);
    drop(cmd);
    let child = spawned.map_err(|source| Error::Spawn {
        path: path.to_path_buf(),
        verb: verb.clone(),
        source,
    })?;
    let pid = child.id() as i32;
    let exited = match pidfd_open(pid) {
        Some(fd) => poll_exit(&fd, timeout),
        None => wait_by_polling(pid, timeout),
    };
    if !exited {
        // SAFETY: signals the process group made for this child.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        reap(pid);
        crate::reaper::release(pid as u32);
        return Err(Error::Timeout {
            verb,
            secs: timeout.as_secs_f64(),
        });
    }
    let (raw, ru) = reap(pid);
    let wall = start.elapsed();
    crate::reaper::release(pid as u32);
    let mut text = String::new();
    if let Some(mut r) = out_r {
        let _ = r.read_to_string(&mut text);
    }
    let status = if libc::WIFEXITED(raw) {
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    } else if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Code(-1)
    };
    Ok(Timed {
        status,
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss,
        stdout: text,
        reason: if status.success() {
            String::new()
        } else {
            last_line(stderr_file)
        },
    })
}

/// Without pidfds (kernels before 5.3): peek with waitid(WNOWAIT) so the
/// child stays reapable, sleeping briefly between peeks.
fn wait_by_polling(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: an all-zero siginfo_t is valid to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child with a valid siginfo pointer;
        // WNOWAIT leaves it for `reap`.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is valid to read after waitid filled the struct.
        if r == 0 && unsafe { info.si_pid() } == pid {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Blocks until process `pid` (not necessarily our child) has exited, or
/// `timeout`; true when it is gone. Our own child is reaped on the way.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    if pid <= 0 {
        return true;
    }
    let gone = match pidfd_open(pid) {
        Some(fd) => poll_exit(&fd, timeout),
        // ESRCH: it is gone already (or was never there).
        None => !crate::reaper::alive(pid),
    };
    if gone {
        // A re-parented container init is ours to reap; the reaper thread
        // may beat us to it, which is as good.
        crate::reaper::wait_exit(pid, Duration::from_millis(1));
    }
    gone
}

/// A runtime verb through `driver` (its global flags, `--root`, env), timed.
pub fn verb(driver: &Driver, verb: &str, args: &[OsString], stdout: Stdout, stderr_file: &Path) -> Result<Timed> {
    let argv = driver.argv(verb, args);
    run(
        &driver.runtime.path,
        &argv,
        &driver.env,
        stdout,
        stderr_file,
        driver.runtime.timeout,
    )
    .map_err(|e| e.in_verb(verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, stdout: Stdout, timeout: Duration) -> Result<Timed> {
        let t = tempfile::tempdir().unwrap();
        let argv: Vec<OsString> = vec!["-c".into(), script.into()];
        run(Path::new("/bin/sh"), &argv, &[], stdout, &t.path().join("err"), timeout)
    }

    #[test]
    fn status_output_and_reason() {
        let t = sh(
            "echo hello; echo first >&2; echo why >&2; exit 3",
            Stdout::Capture,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(t.status, ExitStatus::Code(3));
        assert_eq!(t.stdout, "hello\n");
        assert_eq!(t.reason, "why");
        let ok = sh("echo x", Stdout::Null, Duration::from_secs(5)).unwrap();
        assert!(ok.ok() && ok.stdout.is_empty() && ok.reason.is_empty());
    }

    #[test]
    fn the_wait_is_not_quantised() {
        // A 30 ms sleep must measure close to 30 ms: a polling wait with a
        // growing interval would land far above it.
        let t = sh("exec sleep 0.03", Stdout::Null, Duration::from_secs(5)).unwrap();
        assert!(t.wall >= Duration::from_millis(30), "{:?}", t.wall);
        assert!(t.maxrss_kib > 0);
    }

    #[test]
    fn timeout_kills_the_group() {
        let start = Instant::now();
        let e = sh("sleep 30 & sleep 30", Stdout::Null, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn waiting_for_a_process_that_is_not_ours() {
        let mut c = Command::new("/bin/sleep").arg("0.05").spawn().unwrap();
        let pid = c.id() as i32;
        let waiter = std::thread::spawn(move || wait_gone(pid, Duration::from_secs(5)));
        let _ = c.wait();
        assert!(waiter.join().unwrap());
        assert!(wait_gone(-1, Duration::ZERO));
    }
}
