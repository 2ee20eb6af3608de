//! What the virtualized runtime's integration tests share: finding the
//! processes a state root's VMs left, and whether the tests can run here.

use std::path::Path;

/// Whether containers can run here (root) and a VM can boot (QEMU and a
/// guest kernel): without them the tests say why and pass.
pub fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return false;
    }
    let qemu = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("qemu-system-x86_64").is_file());
    if !qemu {
        eprintln!("skipping: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        return false;
    }
    true
}

/// Pids of processes whose command line mentions `dir` (the shims of
/// containers under that state root), and their descendants (QEMU: a VM
/// cloned from a template names only the cache on its command line), other
/// than this test. Zombies count: a process not reaped is still left.
pub fn processes_under(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // The parent is the second field after the parenthesised name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok())
            .unwrap_or(0);
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let mut cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.is_empty() {
            cmd = stat.split_once(' ').map(|(_, r)| r.to_string()).unwrap_or_default();
        }
        all.push((pid, ppid, cmd));
    }
    let mut found: Vec<i32> = all
        .iter()
        .filter(|(_, _, c)| c.contains(&needle))
        .map(|p| p.0)
        .collect();
    loop {
        let more: Vec<i32> = all
            .iter()
            .filter(|(pid, ppid, _)| found.contains(ppid) && !found.contains(pid))
            .map(|p| p.0)
            .collect();
        if more.is_empty() {
            break;
        }
        found.extend(more);
    }
    all.into_iter()
        .filter(|(pid, _, _)| found.contains(pid))
        .map(|(pid, _, cmd)| (pid, cmd))
        .collect()
}

/// Every file below `dir`.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
