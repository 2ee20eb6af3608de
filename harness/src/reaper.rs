//! The harness is a child subreaper (as containerd's shim is): a container's
//! init is re-parented to it when the runtime's `create` exits, so the
//! harness learns the process's exit status and no zombie lingers (a zombie
//! init makes some runtimes report `running` forever).
//!
//! Children spawned through `std::process::Command` are waited by their
//! owners; they are registered here so the reaper never steals them.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::runtime::ExitStatus;

static OWNED: Mutex<Option<HashSet<u32>>> = Mutex::new(None);
static EXITS: OnceLock<(Mutex<HashMap<i32, ExitStatus>>, Condvar)> = OnceLock::new();
static STARTED: OnceLock<bool> = OnceLock::new();

fn exits() -> &'static (Mutex<HashMap<i32, ExitStatus>>, Condvar) {
    EXITS.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

/// Makes this process a subreaper and starts the reaping thread. Returns
/// false when the kernel refused (then exit statuses come only from `run`).
pub fn start() -> bool {
    *STARTED.get_or_init(|| {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no
        // memory of ours.
        let ok = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
        if ok {
            std::thread::Builder::new()
                .name("reaper".into())
                .spawn(|| loop {
                    reap_orphans();
                    std::thread::sleep(Duration::from_millis(20));
                })
                .is_ok()
        } else {
            false
        }
    })
}

/// Spawns `cmd`, registering the child so the reaper leaves it to its owner.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut owned = OWNED.lock().unwrap_or_else(|p| p.into_inner());
    let child = cmd.spawn()?;
    owned.get_or_insert_with(HashSet::new).insert(child.id());
    Ok(child)
}

/// `cmd.output()` (stdin from /dev/null, stdout and stderr collected), with
/// the child kept from the reaper until it has been waited for: a plain
/// `Command::output` races the reaping thread, which may take the exit
/// status first (the wait then fails with ECHILD).
pub fn output(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = spawn(cmd)?;
    let pid = child.id();
    let out = child.wait_with_output();
    release(pid);
    out
}

/// `cmd.status()` (stdio inherited), kept from the reaper as [`output`] is.
pub fn status(cmd: &mut Command) -> std::io::Result<std::process::ExitStatus> {
    let mut child = spawn(cmd)?;
    let st = child.wait();
    release(child.id());
    st
}

/// Called once the owner has waited for `pid`.
pub fn release(pid: u32) {
    let mut owned = OWNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = owned.as_mut() {
        s.remove(&pid);
    }
}

fn status_from_wait(raw: i32) -> ExitStatus {
    if libc::WIFEXITED(raw) {
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    } else if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Code(-1)
    }
}

/// Reaps `pid` if it is a zombie child of ours; records its status.
fn try_reap(pid: i32) -> Option<ExitStatus> {
    let mut raw = 0;
    // SAFETY: waitpid writes the status into `raw`, a valid i32 we own; with
    // WNOHANG it never blocks. It only reaps `pid`, which the caller checked
    // is not owned by a `Command`.
    let r = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
    if r == pid {
        let st = status_from_wait(raw);
        let (m, c) = exits();
        m.lock().unwrap_or_else(|p| p.into_inner()).insert(pid, st);
        c.notify_all();
        Some(st)
    } else {
        None
    }
}

fn reap_orphans() {
    let me = std::process::id() as i32;
    let owned = OWNED.lock().unwrap_or_else(|p| p.into_inner());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if owned.as_ref().is_some_and(|s| s.contains(&(pid as u32))) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, ppid)) = parse_stat(&stat) {
            if ppid == me && state == 'Z' {
                try_reap(pid);
            }
        }
    }
}

/// State letter and parent pid from /proc/PID/stat (the command name may
/// hold spaces and parentheses, so parse from the last `)`).
pub fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The exit status of container process `pid`, waiting up to `timeout`.
/// `None` when it has not exited in time or is not our child (its status
/// then went to someone else).
pub fn wait_exit(pid: i32, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let (m, c) = exits();
    loop {
        if let Some(s) = m.lock().unwrap_or_else(|p| p.into_inner()).get(&pid).copied() {
            return Some(s);
        }
        if let Some(s) = try_reap(pid) {
            return Some(s);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        let _ = c.wait_timeout(g, (deadline - now).min(Duration::from_millis(10)));
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => parse_stat(&s).is_some_and(|(st, _)| st != 'Z' && st != 'X'),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        assert_eq!(parse_stat("12 (a b) c) S 7 12 12 0"), Some(('S', 7)));
        assert_eq!(parse_stat("1 (init) Z 0 1"), Some(('Z', 0)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
