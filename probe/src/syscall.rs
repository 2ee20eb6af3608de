//! `probe syscall NAME [ARG...]`: one raw system call, reported as
//! `{"syscall": NAME, "ret": N, "errno": NAME|null}`. The call goes through
//! `syscall(2)` with the kernel's number so that no libc wrapper caches or
//! emulates it; a seccomp kill therefore kills the probe before it prints.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::io::AsRawFd;

use serde_json::{json, Value};

use crate::errno::errno_name;
use crate::parse::{parse_i64, parse_mode};
use crate::sys;

/// How each argument of a call is given on the command line:
/// `n` a number (decimal, 0x hex, 0o octal, negative allowed);
/// `o` a mode, always octal;
/// `s` a C string (`NULL` passes a null pointer);
/// `f` a descriptor: a number, or a path opened read-only;
/// `l` not taken from the command line: the byte length of the previous string.
pub const CALLS: &[(&str, libc::c_long, &str)] = &[
    ("getpid", libc::SYS_getpid, ""),
    ("getppid", libc::SYS_getppid, ""),
    ("gettid", libc::SYS_gettid, ""),
    ("getuid", libc::SYS_getuid, ""),
    ("geteuid", libc::SYS_geteuid, ""),
    ("getgid", libc::SYS_getgid, ""),
    ("getegid", libc::SYS_getegid, ""),
    ("getpgrp", libc::SYS_getpgrp, ""),
    ("getsid", libc::SYS_getsid, "n"),
    ("setsid", libc::SYS_setsid, ""),
    ("sync", libc::SYS_sync, ""),
    ("vhangup", libc::SYS_vhangup, ""),
    ("umask", libc::SYS_umask, "o"),
    ("personality", libc::SYS_personality, "n"),
    ("unshare", libc::SYS_unshare, "n"),
    ("setns", libc::SYS_setns, "fn"),
    ("setuid", libc::SYS_setuid, "n"),
    ("setgid", libc::SYS_setgid, "n"),
    ("setresuid", libc::SYS_setresuid, "nnn"),
    ("setresgid", libc::SYS_setresgid, "nnn"),
    ("mkdir", libc::SYS_mkdir, "so"),
    ("rmdir", libc::SYS_rmdir, "s"),
    ("chmod", libc::SYS_chmod, "so"),
    ("chown", libc::SYS_chown, "snn"),
    ("lchown", libc::SYS_lchown, "snn"),
    ("chdir", libc::SYS_chdir, "s"),
    ("chroot", libc::SYS_chroot, "s"),
    ("open", libc::SYS_open, "sno"),
    ("creat", libc::SYS_creat, "so"),
    ("access", libc::SYS_access, "sn"),
    ("truncate", libc::SYS_truncate, "sn"),
    ("unlink", libc::SYS_unlink, "s"),
    ("rename", libc::SYS_rename, "ss"),
    ("link", libc::SYS_link, "ss"),
    ("symlink", libc::SYS_symlink, "ss"),
    ("mknod", libc::SYS_mknod, "son"),
    ("mount", libc::SYS_mount, "sssns"),
    ("umount2", libc::SYS_umount2, "sn"),
    ("pivot_root", libc::SYS_pivot_root, "ss"),
    ("swapon", libc::SYS_swapon, "sn"),
    ("swapoff", libc::SYS_swapoff, "s"),
    ("acct", libc::SYS_acct, "s"),
    ("sethostname", libc::SYS_sethostname, "sl"),
    ("setdomainname", libc::SYS_setdomainname, "sl"),
    ("kill", libc::SYS_kill, "nn"),
    ("tkill", libc::SYS_tkill, "nn"),
    ("getpriority", libc::SYS_getpriority, "nn"),
    ("setpriority", libc::SYS_setpriority, "nnn"),
    ("ioprio_set", libc::SYS_ioprio_set, "nnn"),
    ("socket", libc::SYS_socket, "nnn"),
    ("close", libc::SYS_close, "n"),
    ("ptrace", libc::SYS_ptrace, "nnnn"),
    ("prctl", libc::SYS_prctl, "nnnnn"),
    ("seccomp", libc::SYS_seccomp, "nnn"),
    ("keyctl", libc::SYS_keyctl, "nnnnn"),
    ("add_key", libc::SYS_add_key, "ssnnn"),
    ("bpf", libc::SYS_bpf, "nnn"),
    ("perf_event_open", libc::SYS_perf_event_open, "nnnnn"),
    ("userfaultfd", libc::SYS_userfaultfd, "n"),
    ("io_uring_setup", libc::SYS_io_uring_setup, "nn"),
    ("pidfd_open", libc::SYS_pidfd_open, "nn"),
    ("kcmp", libc::SYS_kcmp, "nnnnn"),
    ("process_vm_readv", libc::SYS_process_vm_readv, "nnnnnn"),
    ("open_by_handle_at", libc::SYS_open_by_handle_at, "nnn"),
    ("fanotify_init", libc::SYS_fanotify_init, "nn"),
    ("memfd_create", libc::SYS_memfd_create, "sn"),
    ("delete_module", libc::SYS_delete_module, "sn"),
    ("kexec_load", libc::SYS_kexec_load, "nnnn"),
    ("iopl", libc::SYS_iopl, "n"),
    ("ioperm", libc::SYS_ioperm, "nnn"),
    ("syslog", libc::SYS_syslog, "nnn"),
    ("settimeofday", libc::SYS_settimeofday, "nn"),
    ("clock_settime", libc::SYS_clock_settime, "nn"),
    ("mlock", libc::SYS_mlock, "nn"),
    ("prlimit64", libc::SYS_prlimit64, "nnnn"),
    ("quotactl", libc::SYS_quotactl, "nsnn"),
];

/// Why no call was made.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The command line does not describe a call (exit 2).
    Usage(String),
    /// A well-formed argument could not be prepared, like a path to open for
    /// `f` that does not exist (exit 1).
    Setup(String),
}

/// The arguments, ready: register values plus what they point into.
struct Prepared {
    args: [libc::c_long; 6],
    _strings: Vec<CString>,
    _files: Vec<File>,
}

fn usage(msg: String) -> Failure {
    Failure::Usage(msg)
}

fn prepare(name: &str, signature: &str, argv: &[String]) -> Result<Prepared, Failure> {
    let mut args = [0 as libc::c_long; 6];
    let mut strings: Vec<CString> = Vec::new();
    let mut files = Vec::new();
    let mut given = argv.iter();
    let mut last_len: usize = 0;
    for (slot, kind) in signature.chars().enumerate() {
        if kind == 'l' {
            args[slot] = last_len as libc::c_long;
            continue;
        }
        let text = given.next();
        args[slot] = match (kind, text) {
            // Trailing numbers may be left out; they are zero.
            ('n', None) => 0,
            (_, None) => return Err(usage(format!("syscall {name}: missing argument {}", slot + 1))),
            ('n', Some(t)) => {
                parse_i64(t).ok_or_else(|| usage(format!("syscall {name}: bad number `{t}`")))? as libc::c_long
            }
            ('o', Some(t)) => {
                libc::c_long::from(parse_mode(t).ok_or_else(|| usage(format!("syscall {name}: bad octal mode `{t}`")))?)
            }
            ('s', Some(t)) if t == "NULL" => 0,
            ('s', Some(t)) => {
                let c = CString::new(t.as_bytes())
                    .map_err(|_| usage(format!("syscall {name}: argument contains a nul byte")))?;
                last_len = t.len();
                let ptr = c.as_ptr() as libc::c_long;
                strings.push(c);
                ptr
            }
            ('f', Some(t)) => match parse_i64(t) {
                Some(fd) => fd as libc::c_long,
                None => {
                    let file = File::open(t).map_err(|e| {
                        Failure::Setup(format!("syscall {name}: open {t}: {}", crate::errno::io_error_name(&e)))
                    })?;
                    let fd = file.as_raw_fd();
                    files.push(file);
                    libc::c_long::from(fd)
                }
            },
            (other, Some(_)) => return Err(usage(format!("syscall {name}: bad signature letter `{other}`"))),
        };
    }
    if let Some(extra) = given.next() {
        return Err(usage(format!("syscall {name}: unexpected argument `{extra}`")));
    }
    Ok(Prepared {
        args,
        _strings: strings,
        _files: files,
    })
}

fn result(name: &str, ret: i64, errno: Option<i32>, data: Option<Value>) -> Value {
    let mut out = json!({
        "syscall": name,
        "ret": ret,
        "errno": errno.map(errno_name),
    });
    if let Some(data) = data {
        out["data"] = data;
    }
    out
}

/// Performs the call named by `argv[0]` and returns the JSON to print.
pub fn run(argv: &[String]) -> Result<Value, Failure> {
    let Some((name, rest)) = argv.split_first() else {
        return Err(usage("syscall: missing syscall name".to_string()));
    };
    match name.as_str() {
        "getcwd" => {
            if !rest.is_empty() {
                return Err(usage("syscall getcwd: takes no arguments".to_string()));
            }
            let mut buf = vec![0u8; 4096];
            let args = [buf.as_mut_ptr() as libc::c_long, buf.len() as libc::c_long, 0, 0, 0, 0];
            let (ret, errno) = sys::raw_syscall(libc::SYS_getcwd, args);
            let data = errno.is_none().then(|| {
                let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
                Value::String(String::from_utf8_lossy(&buf[..end]).into_owned())
            });
            Ok(result(name, ret, errno, data))
        }
        "uname" => {
            if !rest.is_empty() {
                return Err(usage("syscall uname: takes no arguments".to_string()));
            }
            // struct new_utsname: six fields of 65 chars.
            let mut buf = [0 as libc::c_char; 6 * 65];
            let args = [buf.as_mut_ptr() as libc::c_long, 0, 0, 0, 0, 0];
            let (ret, errno) = sys::raw_syscall(libc::SYS_uname, args);
            let data = errno.is_none().then(|| {
                let field = |i: usize| Value::String(sys::c_chars(&buf[i * 65..(i + 1) * 65]));
                json!({
                    "sysname": field(0),
                    "nodename": field(1),
                    "release": field(2),
                    "version": field(3),
                    "machine": field(4),
                    "domainname": field(5),
                })
            });
            Ok(result(name, ret, errno, data))
        }
        "raw" => {
            let (nr, numbers) = rest
                .split_first()
                .ok_or_else(|| usage("syscall raw: missing syscall number".to_string()))?;
            let nr = parse_i64(nr).ok_or_else(|| usage(format!("syscall raw: bad syscall number `{nr}`")))?;
            if numbers.len() > 6 {
                return Err(usage("syscall raw: at most six arguments".to_string()));
            }
            let prepared = prepare("raw", &"n".repeat(numbers.len()), numbers)?;
            let (ret, errno) = sys::raw_syscall(nr as libc::c_long, prepared.args);
            Ok(result(name, ret, errno, None))
        }
        _ => {
            let Some((_, nr, signature)) = CALLS.iter().find(|(n, _, _)| n == name) else {
                return Err(usage(format!("syscall: unknown syscall `{name}`")));
            };
            let prepared = prepare(name, signature, rest)?;
            let (ret, errno) = sys::raw_syscall(*nr, prepared.args);
            Ok(result(name, ret, errno, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn getpid_matches_the_process() {
        let out = run(&args(&["getpid"])).unwrap();
        assert_eq!(out["syscall"], "getpid");
        assert_eq!(out["ret"], i64::from(std::process::id()));
        assert!(out["errno"].is_null());
    }

    #[test]
    fn failures_carry_the_errno() {
        let out = run(&args(&["chdir", "/nonexistent/dir"])).unwrap();
        assert_eq!(out["ret"], -1);
        assert_eq!(out["errno"], "ENOENT");
        let out = run(&args(&["close", "-1"])).unwrap();
        assert_eq!(out["errno"], "EBADF");
    }

    #[test]
    fn getcwd_and_uname_return_data() {
        let out = run(&args(&["getcwd"])).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(out["data"], cwd.to_str().unwrap());
        let out = run(&args(&["uname"])).unwrap();
        assert_eq!(out["data"]["sysname"], "Linux");
    }

    #[test]
    fn mkdir_uses_octal_modes() {
        let dir = std::env::temp_dir().join(format!("probe-syscall-{}", std::process::id()));
        let path = dir.to_str().unwrap().to_string();
        let out = run(&args(&["mkdir", &path, "0700"])).unwrap();
        assert!(out["errno"].is_null(), "{out}");
        let out = run(&args(&["mkdir", &path, "0700"])).unwrap();
        assert_eq!(out["errno"], "EEXIST");
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn raw_numbers() {
        let out = run(&args(&["raw", &libc::SYS_getppid.to_string()])).unwrap();
        assert_eq!(out["ret"], i64::from(sys::getppid()));
    }

    #[test]
    fn argument_errors() {
        assert!(matches!(run(&args(&[])), Err(Failure::Usage(_))));
        assert!(matches!(run(&args(&["nosuchcall"])), Err(Failure::Usage(_))));
        assert!(matches!(run(&args(&["kill", "x", "0"])), Err(Failure::Usage(_))));
        assert!(matches!(run(&args(&["chdir"])), Err(Failure::Usage(_))));
        assert!(matches!(run(&args(&["getpid", "1"])), Err(Failure::Usage(_))));
        assert!(matches!(run(&args(&["mkdir", "/x", "9"])), Err(Failure::Usage(_))));
        assert!(matches!(
            run(&args(&["setns", "/nonexistent", "0"])),
            Err(Failure::Setup(_))
        ));
    }

    #[test]
    fn table_signatures_fit_six_registers() {
        for (name, _, sig) in CALLS {
            assert!(sig.len() <= 6, "{name}");
            assert!(sig.chars().all(|c| "nosfl".contains(c)), "{name}");
        }
    }
}
