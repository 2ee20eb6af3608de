//! Gathers a `Report`: the container as seen from inside. Every source is
//! optional; what cannot be read stays at its default and, for files and
//! calls, is named in `Report::errors`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::errno::io_error_name;
use crate::paths::{dev_nodes, path_info};
use crate::procfs;
use crate::report::{FdInfo, Report, Stdio, REPORT_SCHEMA};
use crate::sys;

/// The namespace types the report looks for under /proc/self/ns.
pub const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// The spec's rlimit names and their resources.
pub const RLIMITS: [(&str, libc::__rlimit_resource_t); 16] = [
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// One `probe report` argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Path(String),
    Sysctl(String),
}

pub fn parse_item(arg: &str) -> Item {
    match arg.strip_prefix("sysctl:") {
        Some(key) => Item::Sysctl(key.to_string()),
        None => Item::Path(arg.to_string()),
    }
}

/// Reads a text file, noting a failure in `errors`.
fn read_text(path: &str, errors: &mut BTreeMap<String, String>) -> Option<String> {
    match fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) => {
            errors.insert(path.to_string(), io_error_name(&err));
            None
        }
    }
}

/// Type to inode of /proc/self/ns/TYPE, for the types that exist.
pub fn namespaces() -> BTreeMap<String, u64> {
    NAMESPACES
        .iter()
        .filter_map(|ns| {
            let meta = fs::metadata(format!("/proc/self/ns/{ns}")).ok()?;
            Some((ns.to_string(), meta.ino()))
        })
        .collect()
}

/// Open descriptors other than 0, 1, 2, with their readlink targets.
pub fn open_fds() -> std::io::Result<Vec<FdInfo>> {
    let fds = sys::list_fd_dir("/proc/self/fd")?;
    Ok(fds
        .into_iter()
        .filter(|fd| *fd > 2)
        .filter_map(|fd| {
            // A descriptor closed since the listing is gone; skip it.
            let target = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some(FdInfo {
                fd,
                target: target.to_string_lossy().into_owned(),
            })
        })
        .collect())
}

pub fn stdio() -> Stdio {
    Stdio {
        stdin_tty: sys::isatty(0),
        stdout_tty: sys::isatty(1),
        stderr_tty: sys::isatty(2),
        targets: (0..3)
            .map(|fd| {
                fs::read_link(format!("/proc/self/fd/{fd}"))
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect(),
        controlling_tty: sys::tcgetsid(0).is_some(),
    }
}

/// Sorted interface names: /sys/class/net, else /proc/net/dev.
pub fn net_interfaces(errors: &mut BTreeMap<String, String>) -> Vec<String> {
    match fs::read_dir("/sys/class/net") {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
        Err(err) => {
            errors.insert("/sys/class/net".to_string(), io_error_name(&err));
            read_text("/proc/net/dev", errors)
                .map(|t| procfs::parse_proc_net_dev(&t))
                .unwrap_or_default()
        }
    }
}

/// Collects the whole report; `items` are the command-line arguments after
/// `report`.
pub fn collect(items: &[String]) -> Report {
    let mut errors = BTreeMap::new();
    let mut report = Report {
        schema: REPORT_SCHEMA,
        args: std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect(),
        env: std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        pid: sys::getpid(),
        ppid: sys::getppid(),
        ids: sys::ids(),
        umask: sys::read_umask(),
        personality: sys::personality_query(),
        ..Report::default()
    };
    match std::env::current_dir() {
        Ok(cwd) => report.cwd = cwd.to_string_lossy().into_owned(),
        Err(err) => {
            errors.insert("getcwd".to_string(), io_error_name(&err));
        }
    }
    match sys::uname() {
        Some(uts) => {
            report.hostname = uts.nodename;
            report.domainname = uts.domainname;
        }
        None => {
            errors.insert("uname".to_string(), "EFAULT".to_string());
        }
    }
    let status = read_text("/proc/self/status", &mut errors)
        .map(|t| procfs::parse_status(&t))
        .unwrap_or_default();
    report.caps = status.caps;
    report.seccomp_mode = status.seccomp;
    report.no_new_privs = sys::no_new_privs().or(status.no_new_privs).unwrap_or(false);
    for (name, resource) in RLIMITS {
        if let Some(limit) = sys::rlimit(resource) {
            report.rlimits.insert(name.to_string(), limit);
        }
    }
    report.oom_score_adj = read_text("/proc/self/oom_score_adj", &mut errors)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    report.namespaces = namespaces();
    report.uid_map = read_text("/proc/self/uid_map", &mut errors)
        .map(|t| procfs::parse_id_map(&t))
        .unwrap_or_default();
    report.gid_map = read_text("/proc/self/gid_map", &mut errors)
        .map(|t| procfs::parse_id_map(&t))
        .unwrap_or_default();
    report.mounts = read_text("/proc/self/mountinfo", &mut errors)
        .map(|t| procfs::parse_mountinfo(&t))
        .unwrap_or_default();
    report.devices = dev_nodes("/dev");
    report.devices.extend(dev_nodes("/dev/pts"));
    report.cgroups = read_text("/proc/self/cgroup", &mut errors)
        .map(|t| procfs::parse_cgroups(&t))
        .unwrap_or_default();
    report.net_interfaces = net_interfaces(&mut errors);
    match open_fds() {
        Ok(fds) => report.fds = fds,
        Err(err) => {
            errors.insert("/proc/self/fd".to_string(), io_error_name(&err));
        }
    }
    report.stdio = stdio();
    for item in items {
        match parse_item(item) {
            Item::Path(path) => {
                let info = path_info(&path);
                report.paths.insert(path, info);
            }
            Item::Sysctl(key) => match fs::read(procfs::sysctl_path(&key)) {
                Ok(bytes) => {
                    let value = String::from_utf8_lossy(&bytes).trim().to_string();
                    report.sysctls.insert(key, value);
                }
                Err(err) => {
                    report.sysctl_errors.insert(key, io_error_name(&err));
                }
            },
        }
    }
    report.errors = errors;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items() {
        assert_eq!(
            parse_item("sysctl:net.ipv4.ip_forward"),
            Item::Sysctl("net.ipv4.ip_forward".into())
        );
        assert_eq!(parse_item("/dev/null"), Item::Path("/dev/null".into()));
    }

    #[test]
    fn report_of_this_process() {
        let r = collect(&["/".to_string(), "sysctl:kernel.nonexistent_key".to_string()]);
        assert_eq!(r.schema, REPORT_SCHEMA);
        assert_eq!(r.pid, std::process::id() as i32);
        assert_eq!(r.rlimits.len(), 16);
        assert!(r.namespaces.contains_key("mnt"));
        assert!(!r.mounts.is_empty());
        assert!(r.paths["/"].exists);
        assert_eq!(r.sysctl_errors["kernel.nonexistent_key"], "ENOENT");
        assert_eq!(r.stdio.targets.len(), 3);
        assert!(r.fds.iter().all(|f| f.fd > 2));
    }
}
