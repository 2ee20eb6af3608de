//! `cri reap --pid-file F -- RUNTIME ... exec --detach --pid-file F ...`:
//! runs a runtime command that leaves a process behind (runc takes a
//! `--console-socket` only with `--detach`, as containerd's shim uses it),
//! then waits for that process as its subreaper and ends with its status,
//! so the streaming server has one child that stands for the exec'd
//! process, as with an exec that does not detach.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// How a reaped process ended, in the shell's convention.
fn shell_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// The runtime command's exit status when it failed, else the detached
/// process's once it ends.
pub fn run(pid_file: &Path, argv: &[OsString]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("cri reap: no command to run");
        return 2;
    };
    // SAFETY: prctl with integer arguments: orphans of this process's
    // descendants come to it.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        eprintln!("cri reap: PR_SET_CHILD_SUBREAPER: {}", std::io::Error::last_os_error());
        return 1;
    }
    let status = match Command::new(program).args(args).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cri reap: running {}: {e}", program.to_string_lossy());
            return 1;
        }
    };
    if !status.success() {
        return status.code().unwrap_or(1);
    }
    let pid = match std::fs::read_to_string(pid_file).map(|t| t.trim().parse::<i32>()) {
        Ok(Ok(p)) if p > 0 => p,
        other => {
            eprintln!(
                "cri reap: the runtime wrote no pid to {}: {other:?}",
                pid_file.display()
            );
            return 1;
        }
    };
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid with a valid out pointer; -1 reaps any child,
        // orphans handed to this subreaper among them.
        let r = unsafe { libc::waitpid(-1, &mut st, 0) };
        if r == pid {
            return shell_code(st);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // No child left: the process was never handed to us (its
            // runtime kept it elsewhere). Its end can only be watched.
            return watch_until_gone(pid);
        }
    }
}

/// Polls until `pid` is gone; its status is not ours to read.
fn watch_until_gone(pid: i32) -> i32 {
    // SAFETY: kill with signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detached_process_status_is_the_exit_status() {
        let t = tempfile::tempdir().unwrap();
        let pid_file = t.path().join("pid");
        // A "runtime" that leaves a process behind, writes its pid and
        // returns at once.
        let script = format!("sh -c 'sleep 0.2; exit 7' & echo $! > {}", pid_file.display());
        let argv: Vec<OsString> = ["sh", "-c", &script].iter().map(OsString::from).collect();
        assert_eq!(run(&pid_file, &argv), 7);
        let argv: Vec<OsString> = ["sh", "-c", "echo no >&2; exit 3"].iter().map(OsString::from).collect();
        assert_eq!(run(&pid_file, &argv), 3, "the runtime's own failure");
    }
}
