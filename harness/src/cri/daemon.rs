//! A daemon the harness starts for a CRI run (a registry, containerd): its
//! process, its log file, and a stop that always happens (on drop too).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {path} is not installed ({hint})")]
    Missing {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("{what}: {action}: {source}")]
    Io {
        what: &'static str,
        action: String,
        source: std::io::Error,
    },
    #[error("{what} did not become ready within {secs:.0}s; its log {log} ends with: {tail}")]
    NotReady {
        what: &'static str,
        secs: f64,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} exited before it was ready ({status}); its log {log} ends with: {tail}")]
    Exited {
        what: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{what}: {command} failed ({status}): {stderr}")]
    Command {
        what: &'static str,
        command: String,
        status: String,
        stderr: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The last `n` bytes of a file, as text, on one line.
pub fn tail(path: &Path, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(n);
    String::from_utf8_lossy(&bytes[start..]).trim().replace('\n', " | ")
}

/// A running daemon; stopped with SIGTERM (then SIGKILL after 5 s) when
/// dropped.
#[derive(Debug)]
pub struct Daemon {
    pub what: &'static str,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Spawns `cmd` with stdout and stderr to `log`.
    pub fn spawn(what: &'static str, mut cmd: Command, log: &Path) -> Result<Self> {
        let io = |action: String| {
            move |e| Error::Io {
                what,
                action,
                source: e,
            }
        };
        let f = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
        let f2 = f.try_clone().map_err(io("duplicating the log fd".into()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .map_err(io(format!("spawning {:?}", cmd.get_program())))?;
        Ok(Daemon {
            what,
            log: log.to_path_buf(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Polls `ready` every 50 ms until it returns true, the daemon exits, or
    /// `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Err(Error::Exited {
                        what: self.what,
                        status: st.to_string(),
                        log: self.log.clone(),
                        tail: tail(&self.log, 600),
                    });
                }
            }
            if start.elapsed() > timeout {
                return Err(Error::NotReady {
                    what: self.what,
                    secs: timeout.as_secs_f64(),
                    log: self.log.clone(),
                    tail: tail(&self.log, 600),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, up to 5 s of grace, then SIGKILL; reaps the process.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        if let Ok(pid) = i32::try_from(c.id()) {
            // SAFETY: kill takes a pid and a signal number and touches no
            // memory; the pid is our unreaped child, so it is not recycled.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to completion within `timeout` (then kills it); a non-zero
/// exit is an error carrying stderr.
pub fn run(what: &'static str, cmd: &mut Command, timeout: Duration) -> Result<String> {
    let command = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io {
            what,
            action: format!("spawning {command}"),
            source: e,
        })?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(r) => r.map_err(|e| Error::Io {
            what,
            action: format!("waiting for {command}"),
            source: e,
        })?,
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill touches no memory; the child is not reaped
                // until the thread's wait returns, so the pid is still ours.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = rx.recv();
            return Err(Error::Command {
                what,
                command,
                status: format!("killed after {:.0}s", timeout.as_secs_f64()),
                stderr: String::new(),
            });
        }
    };
    if !out.status.success() {
        return Err(Error::Command {
            what,
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A TCP port on loopback that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Whether `path` is an executable file.
pub fn installed(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
