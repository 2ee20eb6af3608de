//! Seccomp (config-linux.md, Seccomp and The Container Process State): the
//! filter a runtime installs from `linux.seccomp`, judged from inside by the
//! probe's raw system calls, from the host by the kernel's audit records, and
//! as the seccomp agent at `listenerPath` that answers `SCMP_ACT_NOTIFY`.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall, Spec,
};
use serde_json::Value;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Need, Verdict};
use crate::ctx::{tail, Ctx, Finished};
use crate::runtime::{CreateOpts, ExitStatus};

/// Every case needs kernel seccomp and a runtime that does not deny it.
const NEEDS: &[Need] = &[Need::Seccomp, Need::Feature("/linux/seccomp/enabled")];
const NEEDS_NOTIFY: &[Need] = &[
    Need::Seccomp,
    Need::SeccompNotify,
    Need::Feature("/linux/seccomp/enabled"),
];

pub const CASES: &[Case] = &[
    Case {
        id: "seccomp::errno_ret",
        clauses: &["config-linux.seccomp.errno-ret", "config-linux.seccomp.action"],
        needs: NEEDS,
        summary: "a rule with SCMP_ACT_ERRNO and errnoRet 38 makes getcwd fail with ENOSYS",
        run: errno_ret,
    },
    Case {
        id: "seccomp::errno_default_eperm",
        clauses: &["config-linux.seccomp.errno-ret-eperm", "config-linux.seccomp.action"],
        needs: NEEDS,
        summary: "a rule with SCMP_ACT_ERRNO and no errnoRet makes getcwd fail with EPERM",
        run: errno_default_eperm,
    },
    Case {
        id: "seccomp::kill",
        clauses: &["config-linux.seccomp.action"],
        needs: NEEDS,
        summary: "SCMP_ACT_KILL on getppid kills the process with SIGSYS before it prints",
        run: kill_thread,
    },
    Case {
        id: "seccomp::kill_process",
        clauses: &["config-linux.seccomp.action"],
        needs: NEEDS,
        summary: "SCMP_ACT_KILL_PROCESS on getppid kills the process with SIGSYS before it prints",
        run: kill_process,
    },
    Case {
        id: "seccomp::args_eq",
        clauses: &["config-linux.seccomp.args", "config-linux.seccomp.action"],
        needs: NEEDS,
        summary: "a personality rule with args[0] == 0xffffffff (SCMP_CMP_EQ) denies only that argument",
        run: args_eq,
    },
    Case {
        id: "seccomp::args_masked_eq",
        clauses: &["config-linux.seccomp.args"],
        needs: NEEDS,
        summary: "a umask rule with SCMP_CMP_MASKED_EQ (value mask, valueTwo datum) denies only matching masks",
        run: args_masked_eq,
    },
    Case {
        id: "seccomp::default_errno_ret",
        clauses: &["config-linux.seccomp.default-errno-ret", "config-linux.seccomp.default-action"],
        needs: NEEDS,
        summary: "defaultAction SCMP_ACT_ERRNO with defaultErrnoRet 38 and an allow list: getcwd fails with ENOSYS",
        run: default_errno_ret,
    },
    Case {
        id: "seccomp::default_errno_eperm",
        clauses: &["config-linux.seccomp.default-errno-eperm", "config-linux.seccomp.default-action"],
        needs: NEEDS,
        summary: "defaultAction SCMP_ACT_ERRNO without defaultErrnoRet: an unlisted getcwd fails with EPERM",
        run: default_errno_eperm,
    },
    Case {
        id: "seccomp::filter_mode",
        clauses: &["config-linux.seccomp.default-action", "runtime.lifecycle.create-environment"],
        needs: NEEDS,
        summary: "the process runs in seccomp filter mode (2) with linux.seccomp and unfiltered (0) without",
        run: filter_mode,
    },
    Case {
        id: "seccomp::log_action",
        clauses: &["config-linux.seccomp.action"],
        needs: &[
            Need::Seccomp,
            Need::Feature("/linux/seccomp/enabled"),
            Need::HostPath("/dev/kmsg"),
            Need::Unchanged("host-kernel"),
        ],
        summary: "SCMP_ACT_LOG on sync lets the call succeed and the kernel logs it (audit type 1326)",
        run: log_action,
    },
    Case {
        id: "seccomp::flag_log",
        clauses: &["config-linux.seccomp.flags"],
        needs: &[
            Need::Seccomp,
            Need::Feature("/linux/seccomp/enabled"),
            Need::HostPath("/dev/kmsg"),
            Need::Unchanged("host-kernel"),
        ],
        summary: "flags [SECCOMP_FILTER_FLAG_LOG] reach seccomp(2): an SCMP_ACT_ERRNO hit is logged by the kernel",
        run: flag_log,
    },
    Case {
        id: "seccomp::notify_listener",
        clauses: &[
            "config-linux.seccomp.listener-path",
            "config-linux.seccomp.listener-seccomp-fd",
            "config-linux.seccomp.listener-metadata",
            "config-linux.seccomp.listener-one-state",
            "config-linux.seccomp.listener-close",
            "config-linux.seccomp-state.json",
            "config-linux.seccomp-state.scm-rights",
            "config-linux.seccomp-state.fields",
            "config-linux.seccomp-state.fds-index",
            "config-linux.seccomp.action",
        ],
        needs: &[
            Need::Seccomp,
            Need::SeccompNotify,
            Need::Feature("/linux/seccomp/enabled"),
            Need::Unchanged("host-files"),
        ],
        summary: "SCMP_ACT_NOTIFY on mkdir: the state and seccompFd reach listenerPath and the agent's EXDEV reaches the probe",
        run: notify_listener,
    },
    Case {
        id: "seccomp::listener_unreachable",
        clauses: &["config-linux.seccomp.listener-send-error", "runtime.create.apply-error-no-container"],
        needs: NEEDS_NOTIFY,
        summary: "SCMP_ACT_NOTIFY with a listenerPath where nothing listens makes create fail and leaves nothing",
        run: listener_unreachable,
    },
    Case {
        id: "seccomp::errno_ret_unsupported",
        clauses: &["config-linux.seccomp.errno-ret-unsupported"],
        needs: NEEDS,
        summary: "errnoRet on an SCMP_ACT_ALLOW rule (an action without errno) is an error",
        run: errno_ret_unsupported,
    },
    Case {
        id: "seccomp::default_errno_ret_unsupported",
        clauses: &["config-linux.seccomp.default-errno-unsupported"],
        needs: NEEDS,
        summary: "defaultErrnoRet with defaultAction SCMP_ACT_ALLOW (an action without errno) is an error",
        run: default_errno_ret_unsupported,
    },
];

const ENOSYS: u32 = libc::ENOSYS as u32;

/// The architecture the probe runs as: the filter must cover it.
fn native_arch() -> Arch {
    #[cfg(target_arch = "aarch64")]
    {
        Arch::ScmpArchAarch64
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        Arch::ScmpArchX86_64
    }
}

fn rule(names: &[&str], action: LinuxSeccompAction, errno: Option<u32>) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.iter().map(|n| n.to_string()).collect());
    r.set_action(action);
    r.set_errno_ret(errno);
    r
}

fn arg(index: usize, value: u64, value_two: Option<u64>, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    let mut b = LinuxSeccompArgBuilder::default().index(index).value(value).op(op);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    // Every field is set, so building cannot fail.
    b.build().unwrap_or_default()
}

fn filter(default: LinuxSeccompAction, rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut s = LinuxSeccomp::default();
    s.set_default_action(default);
    s.set_architectures(Some(vec![native_arch()]));
    s.set_syscalls(Some(rules));
    s
}

/// The default spec with `seccomp` and `args`.
fn spec_with(ctx: &Ctx, seccomp: LinuxSeccomp, args: &[&str]) -> Spec {
    let mut spec = ctx.spec();
    spec.linux_mut_or_default().set_seccomp(Some(seccomp));
    spec.set_args(args);
    spec
}

/// A list in the runtime's features document, if it has one there.
fn feature_list(ctx: &Ctx, pointer: &str) -> Option<Vec<String>> {
    let v = ctx.shared.features.as_ref()?.pointer(pointer)?.as_array()?.clone();
    Some(v.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
}

/// Skips when the runtime's features say it lacks `name` in `pointer`
/// (features.md: the lists are what the runtime supports).
fn need_listed(ctx: &Ctx, pointer: &str, name: &str) -> Result<(), Verdict> {
    match feature_list(ctx, pointer) {
        Some(list) if !list.iter().any(|a| a == name) => {
            Err(skip(format!("the runtime's features do not list {name} in {pointer}")))
        }
        _ => Ok(()),
    }
}

fn need_action(ctx: &Ctx, action: &str) -> Result<(), Verdict> {
    need_listed(ctx, "/linux/seccomp/actions", action)
}

/// What `probe syscall` printed.
#[derive(Debug)]
struct CallResult {
    ret: i64,
    errno: Option<String>,
}

/// The last JSON line of the probe's output as a syscall result.
fn parse_call(stdout: &str) -> Option<CallResult> {
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{'))?;
    let v: Value = serde_json::from_str(line).ok()?;
    Some(CallResult {
        ret: v.get("ret")?.as_i64()?,
        errno: v.get("errno").and_then(Value::as_str).map(str::to_string),
    })
}

fn describe(f: &Finished) -> String {
    format!(
        "status {}, stdout {:?}, stderr {:?}",
        f.status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
        tail(&f.stdout, 200),
        tail(&f.stderr, 200)
    )
}

/// Runs `probe syscall ARGS` under `seccomp` and returns its result.
fn run_call(ctx: &mut Ctx, seccomp: LinuxSeccomp, call: &[&str], clause: &str) -> Result<CallResult, Verdict> {
    let mut args = vec!["/probe", "syscall"];
    args.extend_from_slice(call);
    let spec = spec_with(ctx, seccomp, &args);
    let f = ctx.run_to_end(&spec)?;
    parse_call(&f.stdout).ok_or_else(|| {
        fail(
            clause,
            format!("the probe to print the result of {}", call.join(" ")),
            describe(&f),
        )
    })
}

fn expect_errno(r: &CallResult, clause: &str, call: &str, want: Option<&str>) -> CaseResult {
    check(
        r.errno.as_deref() == want,
        clause,
        format!("{call} errno {}", want.unwrap_or("none (success)")),
        format!(
            "{call} returned {} with errno {}",
            r.ret,
            r.errno.as_deref().unwrap_or("none")
        ),
    )
}

fn errno_ret(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    // config-linux.md: errnoRet is the errno return code to use.
    let s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["getcwd"], LinuxSeccompAction::ScmpActErrno, Some(ENOSYS))],
    );
    let r = run_call(ctx, s, &["getcwd"], "config-linux.seccomp.errno-ret")?;
    expect_errno(&r, "config-linux.seccomp.errno-ret", "getcwd", Some("ENOSYS"))
}

fn errno_default_eperm(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    // config-linux.md: errnoRet ... The default is EPERM.
    let s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["getcwd"], LinuxSeccompAction::ScmpActErrno, None)],
    );
    let r = run_call(ctx, s, &["getcwd"], "config-linux.seccomp.errno-ret-eperm")?;
    expect_errno(&r, "config-linux.seccomp.errno-ret-eperm", "getcwd", Some("EPERM"))
}

/// A kill action on getppid: the probe dies by SIGSYS inside the call, so it
/// never prints the result.
fn killed_on_getppid(ctx: &mut Ctx, action: LinuxSeccompAction, name: &str) -> CaseResult {
    need_action(ctx, name)?;
    let clause = "config-linux.seccomp.action";
    let s = filter(LinuxSeccompAction::ScmpActAllow, vec![rule(&["getppid"], action, None)]);
    let spec = spec_with(ctx, s, &["/probe", "syscall", "getppid"]);
    let f = ctx.run_to_end(&spec)?;
    check(
        parse_call(&f.stdout).is_none(),
        clause,
        format!("{name} to stop the process inside getppid"),
        format!("the call returned: {}", describe(&f)),
    )?;
    match f.status {
        // Without the exit status, not printing is what can be observed.
        None => Ok(()),
        // A runtime whose container pid is a stand-in (a sandbox) reports
        // the signal the shell way, as exit 128 + SIGSYS.
        Some(st) => check(
            st == ExitStatus::Signal(libc::SIGSYS) || st == ExitStatus::Code(128 + libc::SIGSYS),
            clause,
            format!("the process killed by SIGSYS (signal {})", libc::SIGSYS),
            describe(&f),
        ),
    }
}

fn kill_thread(ctx: &mut Ctx) -> CaseResult {
    killed_on_getppid(ctx, LinuxSeccompAction::ScmpActKill, "SCMP_ACT_KILL")
}

fn kill_process(ctx: &mut Ctx) -> CaseResult {
    killed_on_getppid(ctx, LinuxSeccompAction::ScmpActKillProcess, "SCMP_ACT_KILL_PROCESS")
}

fn args_eq(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    need_listed(ctx, "/linux/seccomp/operators", "SCMP_CMP_EQ")?;
    let clause = "config-linux.seccomp.args";
    let mut r = rule(&["personality"], LinuxSeccompAction::ScmpActErrno, Some(ENOSYS));
    r.set_args(Some(vec![arg(0, 0xffff_ffff, None, LinuxSeccompOperator::ScmpCmpEq)]));
    let s = filter(LinuxSeccompAction::ScmpActAllow, vec![r]);
    // personality(0xffffffff) only queries: it never fails by itself.
    let hit = run_call(ctx, s.clone(), &["personality", "0xffffffff"], clause)?;
    expect_errno(&hit, clause, "personality(0xffffffff)", Some("ENOSYS"))?;
    let miss = run_call(ctx, s, &["personality", "0"], clause)?;
    expect_errno(&miss, clause, "personality(0) (argument does not match)", None)
}

fn args_masked_eq(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    need_listed(ctx, "/linux/seccomp/operators", "SCMP_CMP_MASKED_EQ")?;
    let clause = "config-linux.seccomp.args";
    // libseccomp's SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo.
    let mut r = rule(&["umask"], LinuxSeccompAction::ScmpActErrno, Some(ENOSYS));
    r.set_args(Some(vec![arg(
        0,
        0o7,
        Some(0o7),
        LinuxSeccompOperator::ScmpCmpMaskedEq,
    )]));
    let s = filter(LinuxSeccompAction::ScmpActAllow, vec![r]);
    let hit = run_call(ctx, s.clone(), &["umask", "0077"], clause)?;
    expect_errno(&hit, clause, "umask(0077) (0077 & 07 == 07)", Some("ENOSYS"))?;
    let miss = run_call(ctx, s, &["umask", "0022"], clause)?;
    expect_errno(&miss, clause, "umask(0022) (0022 & 07 != 07)", None)
}

/// Enough of the system for a runtime's last steps before exec and for the
/// probe (libc start-up, Rust's runtime, `probe syscall`), but not getcwd.
const ALLOWED: &str = "\
    accept accept4 access arch_prctl bind brk capget capset chdir chmod chown clock_getres clock_gettime \
    clock_nanosleep clone clone3 close close_range connect dup dup2 dup3 epoll_create epoll_create1 \
    epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat exit exit_group \
    faccessat faccessat2 fadvise64 fallocate fchdir fchmod fchmodat fchown fchownat fcntl fdatasync \
    fgetxattr flistxattr flock fork fstat fstatfs fsync ftruncate futex getdents getdents64 getegid \
    geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom \
    getresgid getresuid getrlimit get_robust_list getrusage getsid getsockname getsockopt gettid \
    gettimeofday getuid getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch ioctl \
    kill lgetxattr link linkat listen listxattr llistxattr lseek lstat madvise membarrier mincore mkdir \
    mkdirat mlock mmap mprotect mremap msync munlock munmap nanosleep newfstatat open openat openat2 \
    pause pipe pipe2 poll ppoll prctl pread64 preadv preadv2 prlimit64 pselect6 pwrite64 pwritev \
    pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg recvmsg rename renameat \
    renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo \
    rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr \
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_setaffinity \
    sched_yield seccomp select sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid setgroups \
    setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list setsid \
    setsockopt set_tid_address setuid shutdown sigaltstack signalfd signalfd4 socket socketpair splice \
    stat statfs statx symlink symlinkat sync sysinfo tgkill time timer_create timer_delete \
    timer_getoverrun timer_gettime timer_settime timerfd_create timerfd_gettime timerfd_settime times \
    tkill truncate umask uname unlink unlinkat utimensat vfork wait4 waitid write writev";

fn allow_list_filter(default_errno: Option<u32>) -> LinuxSeccomp {
    let mut s = filter(
        LinuxSeccompAction::ScmpActErrno,
        vec![rule(
            &ALLOWED.split_whitespace().collect::<Vec<_>>(),
            LinuxSeccompAction::ScmpActAllow,
            None,
        )],
    );
    s.set_default_errno_ret(default_errno);
    s
}

fn default_errno_ret(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    // config-linux.md: defaultErrnoRet is the errno return code to use.
    let clause = "config-linux.seccomp.default-errno-ret";
    let r = run_call(ctx, allow_list_filter(Some(ENOSYS)), &["getcwd"], clause)?;
    expect_errno(&r, clause, "getcwd (not in the allow list)", Some("ENOSYS"))
}

fn default_errno_eperm(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    // config-linux.md: defaultErrnoRet ... The default is EPERM.
    let clause = "config-linux.seccomp.default-errno-eperm";
    let r = run_call(ctx, allow_list_filter(None), &["getcwd"], clause)?;
    expect_errno(&r, clause, "getcwd (not in the allow list)", Some("EPERM"))
}

fn filter_mode(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    // A rule on a call the report never makes, so the report is complete.
    let s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["kexec_load"], LinuxSeccompAction::ScmpActErrno, None)],
    );
    let with = spec_with(ctx, s, &["/probe", "true"]);
    let r = ctx.report(&with, &[])?;
    check_eq(
        "config-linux.seccomp.default-action",
        "Seccomp mode with linux.seccomp",
        2,
        r.seccomp_mode,
    )?;
    // Without linux.seccomp the runtime must not invent a filter: the
    // environment is built from config.json (runtime.md, Lifecycle step 2).
    let without = ctx.spec();
    let r = ctx.report(&without, &[])?;
    check_eq(
        "runtime.lifecycle.create-environment",
        "Seccomp mode without linux.seccomp",
        0,
        r.seccomp_mode,
    )
}

/// Every audit record of a seccomp event (type 1326) in the kernel log.
fn seccomp_audit_records() -> std::io::Result<Vec<String>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                if rec.contains("type=1326") {
                    out.push(rec.trim_end().to_string());
                }
            }
            // EPIPE: a record was overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn matching(records: &[String], pattern: &[String]) -> usize {
    records
        .iter()
        .filter(|r| pattern.iter().all(|p| r.contains(p.as_str())))
        .count()
}

/// Runs `probe syscall sync` under `seccomp` and waits for the kernel to log
/// a new seccomp audit record for sync with action code `code`.
fn expect_logged(ctx: &mut Ctx, seccomp: LinuxSeccomp, code: u32, clause: &str) -> Result<CallResult, Verdict> {
    let pattern = vec![
        format!("syscall={} ", libc::SYS_sync),
        format!("code={code:#x}"),
        "exe=\"/probe\"".to_string(),
    ];
    let before = match seccomp_audit_records() {
        Ok(r) => matching(&r, &pattern),
        Err(e) => return Err(skip(format!("the kernel log /dev/kmsg is not readable: {e}"))),
    };
    let r = run_call(ctx, seccomp, &["sync"], clause)?;
    // kauditd prints asynchronously.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = seccomp_audit_records().map(|r| matching(&r, &pattern)).unwrap_or(0);
        if now > before {
            return Ok(r);
        }
        if Instant::now() >= deadline {
            return Err(fail(
                clause,
                format!("a kernel audit record of the sync call with {}", pattern.join(" ")),
                "none in /dev/kmsg (the action or flag did not reach the kernel's filter)",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_action(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_LOG")?;
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap_or_default();
    ctx.require(
        actions.split_whitespace().any(|a| a == "log"),
        "logging of the seccomp log action (kernel.seccomp.actions_logged)",
    )?;
    let clause = "config-linux.seccomp.action";
    let s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["sync"], LinuxSeccompAction::ScmpActLog, None)],
    );
    // SECCOMP_RET_LOG: the call is allowed and logged.
    let r = expect_logged(ctx, s, 0x7ffc_0000, clause)?;
    expect_errno(&r, clause, "sync under SCMP_ACT_LOG", None)
}

fn flag_log(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_ERRNO")?;
    // Only a runtime that says it supports the flag is held to it.
    if ctx.shared.features.is_some() {
        match feature_list(ctx, "/linux/seccomp/supportedFlags") {
            Some(l) if l.iter().any(|f| f == "SECCOMP_FILTER_FLAG_LOG") => {}
            _ => {
                return Err(skip(
                    "the runtime's features do not list SECCOMP_FILTER_FLAG_LOG in /linux/seccomp/supportedFlags",
                ))
            }
        }
    }
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap_or_default();
    ctx.require(
        actions.split_whitespace().any(|a| a == "errno"),
        "logging of the seccomp errno action (kernel.seccomp.actions_logged)",
    )?;
    let clause = "config-linux.seccomp.flags";
    let mut s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["sync"], LinuxSeccompAction::ScmpActErrno, Some(ENOSYS))],
    );
    s.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
    // Without SECCOMP_FILTER_FLAG_LOG the kernel never logs SECCOMP_RET_ERRNO.
    let r = expect_logged(ctx, s, 0x0005_0000, clause)?;
    expect_errno(&r, "config-linux.seccomp.errno-ret", "sync", Some("ENOSYS"))
}

/// What the agent thread got from one connection at listenerPath.
struct Received {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// The runtime closed the connection after the state.
    closed: bool,
}

fn receive_state(listener: crate::unix::OneShotListener, timeout: Duration) -> Result<Received, String> {
    let stream = listener.accept(timeout).map_err(|e| format!("accept: {e}"))?;
    let (mut data, fds) = crate::unix::recv_with_fds(&stream, timeout).map_err(|e| format!("recvmsg: {e}"))?;
    // The runtime may split the payload over several sendmsg calls; read
    // until it closes the connection, as config-linux.md requires it to.
    let _ = stream.set_read_timeout(Some(timeout.min(Duration::from_secs(1))));
    let mut closed = data.is_empty();
    let mut buf = [0u8; 8192];
    while !closed {
        match (&stream).read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    Ok(Received { data, fds, closed })
}

fn notify_listener(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_NOTIFY")?;
    let sock = ctx.path("agent.sock");
    let listener = crate::unix::OneShotListener::bind(&sock).map_err(|e| {
        fail(
            "harness",
            "a unix socket at listenerPath",
            format!("{}: {e}", sock.display()),
        )
    })?;
    let metadata = "oci-harness-agent-metadata;x=1";
    let mut s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["mkdir"], LinuxSeccompAction::ScmpActNotify, None)],
    );
    s.set_listener_path(Some(sock.clone()));
    s.set_listener_metadata(Some(metadata.to_string()));
    let spec = spec_with(ctx, s, &["/probe", "syscall", "mkdir", "/x", "755"]);
    let b = ctx.bundle(&spec)?;

    // The agent thread takes the connection, hands the state over and then
    // answers every intercepted call with EXDEV, which mkdir on the
    // read-only root never gives by itself (it would be EROFS). Runtimes
    // differ in when they send the state (create, or start when the filter
    // is loaded just before exec), so the thread waits through both.
    let timeout = ctx.shared.timeout;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_agent = seen.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let got = receive_state(listener, timeout);
        let fd = got
            .as_ref()
            .ok()
            .and_then(|r| r.fds.first())
            .and_then(|f| f.try_clone().ok());
        let _ = tx.send(got);
        let Some(fd) = fd else { return };
        while let Ok(n) = crate::seccomp_agent::recv(&fd, timeout) {
            let _ = crate::seccomp_agent::respond(&fd, n.id, 0, libc::EXDEV);
            seen_agent.lock().unwrap_or_else(|p| p.into_inner()).push(n);
        }
    });
    let c = ctx.create(&b)?;
    ctx.start(&c)?;
    // By the time start returns, the filter is loaded and the state sent.
    let got = rx
        .recv_timeout(timeout.min(Duration::from_secs(3)))
        .unwrap_or_else(|_| Err("the agent thread ended without an answer".into()))
        .map_err(|e| {
            fail(
                "config-linux.seccomp.listener-path",
                format!("a connection with the state at {}", sock.display()),
                e,
            )
        })?;

    let text = String::from_utf8_lossy(&got.data).into_owned();
    ctx.note(format!(
        "listener got {} bytes and {} fds: {text}",
        got.data.len(),
        got.fds.len()
    ));
    let state: Value = serde_json::from_str(&text).map_err(|e| {
        fail(
            "config-linux.seccomp-state.json",
            "one JSON container process state",
            format!("{e}: {:?}", tail(&text, 300)),
        )
    })?;
    check(
        got.closed,
        "config-linux.seccomp.listener-close",
        "the runtime to close the connection after the state",
        "it stayed open",
    )?;
    check(
        state
            .get("ociVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty()),
        "config-linux.seccomp-state.fields",
        "ociVersion in the container process state",
        format!("{:?}", state.get("ociVersion")),
    )?;
    let names: Vec<&str> = state
        .get("fds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    check_eq(
        "config-linux.seccomp.listener-seccomp-fd",
        "fds",
        vec!["seccompFd"],
        names.clone(),
    )?;
    check_eq(
        "config-linux.seccomp-state.fds-index",
        "descriptors passed with SCM_RIGHTS",
        names.len(),
        got.fds.len(),
    )?;
    check_eq(
        "config-linux.seccomp-state.fields",
        "pid (as seen by the runtime)",
        c.pid.map(i64::from),
        state.get("pid").and_then(Value::as_i64),
    )?;
    check_eq(
        "config-linux.seccomp.listener-metadata",
        "metadata",
        Some(metadata),
        state.get("metadata").and_then(Value::as_str),
    )?;
    let inner = state.get("state").cloned().unwrap_or(Value::Null);
    check_eq(
        "config-linux.seccomp-state.fields",
        "state.id",
        Some(c.id.as_str()),
        inner.get("id").and_then(Value::as_str),
    )?;
    let status = inner.get("status").and_then(Value::as_str);
    check(
        matches!(status, Some("creating" | "created")),
        "config-linux.seccomp-state.fields",
        "state.status creating or created (the container is being created)",
        format!("{status:?}"),
    )?;

    check(
        !got.fds.is_empty(),
        "config-linux.seccomp-state.scm-rights",
        "the seccomp fd passed with SCM_RIGHTS",
        "no descriptor",
    )?;
    ctx.wait_exit(&c)?;
    let out = c.io.stdout();
    let notes: Vec<i32> = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|n| n.nr)
        .collect();
    ctx.note(format!("agent answered syscalls {notes:?}"));
    check(
        notes.contains(&(libc::SYS_mkdir as i32)),
        "config-linux.seccomp.action",
        "a notification for mkdir on the seccomp fd",
        format!("notifications for syscalls {notes:?}"),
    )?;
    let r = parse_call(&out).ok_or_else(|| {
        fail(
            "config-linux.seccomp.action",
            "the probe to print the mkdir result",
            format!("stdout {:?}, stderr {:?}", tail(&out, 200), tail(&c.io.stderr(), 200)),
        )
    })?;
    expect_errno(
        &r,
        "config-linux.seccomp.action",
        "mkdir answered by the agent",
        Some("EXDEV"),
    )
}

fn listener_unreachable(ctx: &mut Ctx) -> CaseResult {
    need_action(ctx, "SCMP_ACT_NOTIFY")?;
    let sock = ctx.path("nobody.sock");
    let mut s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["mkdir"], LinuxSeccompAction::ScmpActNotify, None)],
    );
    s.set_listener_path(Some(sock));
    let spec = spec_with(ctx, s, &["/probe", "true"]);
    let b = ctx.bundle(&spec)?;
    let id = ctx.new_id();
    let (out, _io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    check(
        !out.status.success(),
        "config-linux.seccomp.listener-send-error",
        "create to fail when nothing listens at listenerPath",
        "create succeeded",
    )?;
    crate::cases::create::expect_no_container(ctx, &id)
}

/// A config the spec says the runtime must refuse ("print an error and
/// fail"): create or start must fail, and the program must not have run.
fn expect_refused_config(ctx: &mut Ctx, s: LinuxSeccomp, clause: &str, what: &str) -> CaseResult {
    let spec = spec_with(ctx, s, &["/probe", "echo", "ran"]);
    let b = ctx.bundle(&spec)?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        return crate::cases::create::expect_no_container(ctx, &id);
    }
    let st = ctx.start_raw(&id)?;
    io.wait_eof(Duration::from_millis(500));
    check(
        !st.status.success(),
        clause,
        format!("create or start to fail for {what}"),
        format!("both succeeded; the program printed {:?}", tail(&io.stdout(), 100)),
    )
}

fn errno_ret_unsupported(ctx: &mut Ctx) -> CaseResult {
    // config-linux.md: errnoRet ... When the action doesn't support an
    // errno, the runtime MUST print and error and fail.
    let s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["getcwd"], LinuxSeccompAction::ScmpActAllow, Some(ENOSYS))],
    );
    expect_refused_config(
        ctx,
        s,
        "config-linux.seccomp.errno-ret-unsupported",
        "errnoRet on an SCMP_ACT_ALLOW rule",
    )
}

fn default_errno_ret_unsupported(ctx: &mut Ctx) -> CaseResult {
    // config-linux.md: defaultErrnoRet ... When the action doesn't support
    // an errno, the runtime MUST print and error and fail.
    let mut s = filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["kexec_load"], LinuxSeccompAction::ScmpActErrno, None)],
    );
    s.set_default_errno_ret(Some(ENOSYS));
    expect_refused_config(
        ctx,
        s,
        "config-linux.seccomp.default-errno-unsupported",
        "defaultErrnoRet with defaultAction SCMP_ACT_ALLOW",
    )
}
