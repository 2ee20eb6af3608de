//! The compiler is proven by running its programs through a small classic-BPF
//! interpreter (what the kernel does with `seccomp_data`); a few tests then
//! install filters in forked children to show the kernel agrees.

use super::*;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

// ---- the interpreter -------------------------------------------------------

/// One system call as the filter sees it.
#[derive(Clone, Copy, Debug)]
struct Call {
    arch: u32,
    nr: u32,
    args: [u64; 6],
}

fn seccomp_data(c: &Call) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..4].copy_from_slice(&c.nr.to_ne_bytes());
    d[4..8].copy_from_slice(&c.arch.to_ne_bytes());
    d[8..16].copy_from_slice(&0x7f00_dead_beefu64.to_ne_bytes());
    for (i, a) in c.args.iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    d
}

/// Checks what the kernel's classic-BPF verifier checks for the opcodes we
/// emit: size, jumps inside the program, aligned loads inside seccomp_data,
/// a final return.
fn verify(prog: &[libc::sock_filter]) {
    assert!(!prog.is_empty() && prog.len() <= 4096, "length {}", prog.len());
    for (pc, i) in prog.iter().enumerate() {
        let after = pc + 1;
        match i.code {
            0x20 => assert!(i.k % 4 == 0 && i.k < 64, "load at {pc}: {}", i.k),
            0x54 | 0x06 => {}
            0x05 => assert!(after + (i.k as usize) < prog.len(), "ja at {pc} out of range"),
            0x15 | 0x25 | 0x35 => {
                assert!(after + (i.jt as usize) < prog.len(), "jt at {pc} out of range");
                assert!(after + (i.jf as usize) < prog.len(), "jf at {pc} out of range");
            }
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
    }
    assert_eq!(prog[prog.len() - 1].code, 0x06, "the last instruction must return");
}

/// Runs the program like the kernel does and returns its verdict.
fn run(prog: &[libc::sock_filter], c: &Call) -> u32 {
    let d = seccomp_data(c);
    let mut a: u32 = 0;
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let i = prog[pc];
        pc += 1;
        match i.code {
            0x20 => {
                let k = i.k as usize;
                a = u32::from_ne_bytes(d[k..k + 4].try_into().unwrap());
            }
            0x54 => a &= i.k,
            0x05 => pc += i.k as usize,
            0x15 => pc += if a == i.k { i.jt } else { i.jf } as usize,
            0x25 => pc += if a > i.k { i.jt } else { i.jf } as usize,
            0x35 => pc += if a >= i.k { i.jt } else { i.jf } as usize,
            0x06 => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
    panic!("the program loops (impossible with forward jumps)")
}

// ---- helpers ---------------------------------------------------------------

const ALLOW: u32 = RET_ALLOW;
const KILL_PROCESS: u32 = RET_KILL_PROCESS;

fn errno(e: i32) -> u32 {
    RET_ERRNO | e as u32
}

fn config(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid LinuxSeccomp")
}

fn compile(v: serde_json::Value) -> Filter {
    let f = Filter::compile(&config(v)).expect("compiles");
    verify(f.instructions());
    f
}

fn compile_err(v: serde_json::Value) -> String {
    match Filter::compile(&config(v)) {
        Ok(_) => panic!("compiled"),
        Err(e) => e.to_string(),
    }
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.number(name).unwrap_or_else(|| panic!("{name} on {abi:?}"))
}

fn audit(abi: Abi) -> u32 {
    match abi {
        Abi::I386 => AUDIT_ARCH_I386,
        _ => AUDIT_ARCH_X86_64,
    }
}

/// The verdict of `f` for `name` on `abi` with `args`.
fn verdict(f: &Filter, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    run(
        f.instructions(),
        &Call {
            arch: audit(abi),
            nr: nr(abi, name),
            args,
        },
    )
}

fn on64(f: &Filter, name: &str) -> u32 {
    verdict(f, Abi::X86_64, name, [0; 6])
}

fn with_arg0(f: &Filter, name: &str, a0: u64) -> u32 {
    verdict(f, Abi::X86_64, name, [a0, 0, 0, 0, 0, 0])
}

// ---- actions and errno -----------------------------------------------------

#[test]
fn errno_ret_on_one_call() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    }));
    assert_eq!(on64(&f, "getcwd"), errno(38));
    assert_eq!(on64(&f, "getpid"), ALLOW);
    assert_eq!(on64(&f, "chmod"), ALLOW);
    assert!(!f.needs_listener());
}

#[test]
fn errno_and_trace_default_to_eperm() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getppid"], "action": "SCMP_ACT_TRACE"},
            {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}
        ]
    }));
    assert_eq!(on64(&f, "getcwd"), errno(libc::EPERM));
    assert_eq!(on64(&f, "chmod"), errno(libc::EPERM));
    assert_eq!(on64(&f, "getppid"), RET_TRACE | 1);
    assert_eq!(on64(&f, "getpid"), RET_TRACE | 7);
}

#[test]
fn default_errno_ret_applies_to_the_default_action() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": ["getpid", "write"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(on64(&f, "getcwd"), errno(38));
    assert_eq!(on64(&f, "getpid"), ALLOW);
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(on64(&f, "getcwd"), errno(libc::EPERM));
}

#[test]
fn actions_map_to_kernel_values() {
    let cases = [
        ("SCMP_ACT_KILL", 0),
        ("SCMP_ACT_KILL_THREAD", 0),
        ("SCMP_ACT_KILL_PROCESS", 0x8000_0000),
        ("SCMP_ACT_TRAP", 0x0003_0000),
        ("SCMP_ACT_ERRNO", 0x0005_0001),
        ("SCMP_ACT_TRACE", 0x7ff0_0001),
        ("SCMP_ACT_LOG", 0x7ffc_0000),
        ("SCMP_ACT_NOTIFY", 0x7fc0_0000),
    ];
    for (action, want) in cases {
        let f = compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["getppid"], "action": action}]
        }));
        assert_eq!(on64(&f, "getppid"), want, "{action}");
        assert_eq!(on64(&f, "getpid"), ALLOW, "{action}");
        assert_eq!(f.needs_listener(), action == "SCMP_ACT_NOTIFY");
    }
    for (action, want) in cases.iter().filter(|(a, _)| *a != "SCMP_ACT_NOTIFY") {
        let f = compile(json!({
            "defaultAction": action,
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
        }));
        assert_eq!(on64(&f, "getppid"), *want, "default {action}");
        assert_eq!(on64(&f, "getpid"), ALLOW, "default {action}");
    }
}

#[test]
fn no_syscalls_means_the_default_for_everything() {
    let f = compile(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}));
    assert_eq!(on64(&f, "read"), errno(1));
    let f = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}));
    assert_eq!(on64(&f, "read"), ALLOW);
}

#[test]
fn rules_with_the_default_action_cost_nothing() {
    let small = compile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let same = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "write", "openat"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(small.instructions().len(), same.instructions().len());
}

// ---- architectures ---------------------------------------------------------

#[test]
fn unlisted_abis_are_killed() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
    }));
    // i386 getcwd (183) through int $0x80 must not escape the rule.
    let i386 = Call {
        arch: AUDIT_ARCH_I386,
        nr: 183,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &i386), KILL_PROCESS);
    // An x32 call on x86_64.
    let x32 = Call {
        arch: AUDIT_ARCH_X86_64,
        nr: X32_SYSCALL_BIT | 79,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &x32), KILL_PROCESS);
    // Some other architecture (aarch64).
    let other = Call {
        arch: 0xc000_00b7,
        nr: 17,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &other), KILL_PROCESS);
    // A call a tracer skipped (nr -1) is not x32: default action.
    let skipped = Call {
        arch: AUDIT_ARCH_X86_64,
        nr: u32::MAX,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &skipped), ALLOW);
    // SCMP_ARCH_NATIVE is x86_64.
    let n = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NATIVE"]}));
    assert_eq!(run(n.instructions(), &i386), KILL_PROCESS);
    assert_eq!(on64(&n, "getcwd"), ALLOW);
}

#[test]
fn i386_has_its_own_numbers() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socketcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}
        ]
    }));
    assert_eq!(nr(Abi::I386, "getcwd"), 183);
    assert_eq!(verdict(&f, Abi::I386, "getcwd", [0; 6]), errno(38));
    assert_eq!(verdict(&f, Abi::X86_64, "getcwd", [0; 6]), errno(38));
    // 79 is getcwd on x86_64 but settimeofday on i386.
    assert_eq!(verdict(&f, Abi::I386, "settimeofday", [0; 6]), ALLOW);
    assert_eq!(nr(Abi::I386, "socketcall"), 102);
    assert_eq!(verdict(&f, Abi::I386, "socketcall", [0; 6]), errno(5));
    // 102 is getuid on x86_64: socketcall does not exist there.
    assert_eq!(verdict(&f, Abi::X86_64, "getuid", [0; 6]), ALLOW);
    // x32 is still not listed.
    let x32 = Call {
        arch: AUDIT_ARCH_X86_64,
        nr: X32_SYSCALL_BIT | 79,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &x32), KILL_PROCESS);
}

#[test]
fn x32_calls_carry_the_x32_bit() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["rt_sigaction", "getcwd"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(nr(Abi::X32, "rt_sigaction"), X32_SYSCALL_BIT | 512);
    assert_eq!(verdict(&f, Abi::X32, "rt_sigaction", [0; 6]), errno(1));
    assert_eq!(verdict(&f, Abi::X32, "getcwd", [0; 6]), errno(1));
    assert_eq!(verdict(&f, Abi::X86_64, "rt_sigaction", [0; 6]), errno(1));
    // 13 | x32 bit is not rt_sigaction in x32.
    let stale = Call {
        arch: AUDIT_ARCH_X86_64,
        nr: X32_SYSCALL_BIT | 13,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &stale), ALLOW);
    let i386 = Call {
        arch: AUDIT_ARCH_I386,
        nr: 183,
        args: [0; 6],
    };
    assert_eq!(run(f.instructions(), &i386), KILL_PROCESS);

    // Only x32: the 64-bit ABI is the one killed.
    let only = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X32"]}));
    assert_eq!(on64(&only, "read"), KILL_PROCESS);
    assert_eq!(verdict(&only, Abi::X32, "read", [0; 6]), ALLOW);
}

// ---- arguments -------------------------------------------------------------

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0x8000_0000_0000_0000,
    0xffff_ffff_0000_0000,
    0xffff_ffff_ffff_fffe,
    u64::MAX,
];

fn reference(op: &str, arg: u64, value: u64, two: u64) -> bool {
    match op {
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_MASKED_EQ" => arg & value == two,
        _ => unreachable!(),
    }
}

const OPS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
    "SCMP_CMP_MASKED_EQ",
];

#[test]
fn operators_compare_all_64_bits() {
    for (n, op) in OPS.iter().enumerate() {
        for (m, &value) in INTERESTING.iter().enumerate() {
            let index = (n + m) % 6;
            let two = value & 0xffff_0000_ffff_0001;
            let f = compile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 38,
                    "args": [{"index": index, "value": value, "valueTwo": two, "op": op}]
                }]
            }));
            for &arg in INTERESTING {
                let mut args = [0x5555_5555_5555_5555; 6];
                args[index] = arg;
                let want = if reference(op, arg, value, two) {
                    errno(38)
                } else {
                    ALLOW
                };
                assert_eq!(
                    verdict(&f, Abi::X86_64, "personality", args),
                    want,
                    "args[{index}]={arg:#x} {op} {value:#x} (two {two:#x})"
                );
                assert_eq!(
                    verdict(&f, Abi::X86_64, "getpid", args),
                    ALLOW,
                    "args do not matter to other calls"
                );
            }
        }
    }
}

#[test]
fn operators_on_i386_compare_the_low_word() {
    for op in OPS {
        for &value in INTERESTING {
            let two = value & 0xf0f0_f0f0;
            let f = compile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86"],
                "syscalls": [{
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]
                }]
            }));
            for &arg in INTERESTING {
                // Garbage in the high half must not matter.
                let args = [0, arg | 0xdead_beef_0000_0000, 0, 0, 0, 0];
                let want = reference(op, arg & 0xffff_ffff, value & 0xffff_ffff, two & 0xffff_ffff);
                let want = if want { errno(1) } else { ALLOW };
                assert_eq!(
                    verdict(&f, Abi::I386, "personality", args),
                    want,
                    "i386 args[1]={arg:#x} {op} {value:#x}"
                );
            }
        }
    }
}

#[test]
fn args_in_a_rule_are_anded_and_rules_are_ored() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 2, "value": 2, "op": "SCMP_CMP_EQ"}
            ]},
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [
                {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}
            ]},
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [
                {"index": 0, "value": 10, "op": "SCMP_CMP_GE"},
                {"index": 0, "value": 20, "op": "SCMP_CMP_LE"}
            ]}
        ]
    }));
    let v = |a0, a2| verdict(&f, Abi::X86_64, "openat", [a0, 0, a2, 0, 0, 0]);
    assert_eq!(v(1, 2), errno(1));
    assert_eq!(v(1, 3), ALLOW);
    assert_eq!(v(0, 2), ALLOW);
    assert_eq!(v(3, 0), errno(2));
    assert_eq!(v(3, 2), errno(2));
    assert_eq!(v(9, 0), ALLOW);
    assert_eq!(v(10, 0), errno(3));
    assert_eq!(v(20, 0), errno(3));
    assert_eq!(v(21, 0), ALLOW);
    assert_eq!(on64(&f, "open"), ALLOW);
}

#[test]
fn first_matching_conditional_rule_wins() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_LE"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4, "op": "SCMP_CMP_GE"}]}
        ]
    }));
    assert_eq!(with_arg0(&f, "personality", 2), RET_LOG);
    assert_eq!(with_arg0(&f, "personality", 6), RET_LOG);
    assert_eq!(with_arg0(&f, "personality", 9), ALLOW);
    // Same args, rules with the same action twice: still fine.
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    assert_eq!(verdict(&f, Abi::X86_64, "kill", [1, 9, 0, 0, 0, 0]), errno(1));
    assert_eq!(verdict(&f, Abi::X86_64, "kill", [1, 15, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn an_unconditional_rule_decides() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["umask"], "action": "SCMP_ACT_LOG"},
            {"names": ["umask"], "action": "SCMP_ACT_TRAP"}
        ]
    }));
    assert_eq!(with_arg0(&f, "umask", 0), RET_LOG);
    assert_eq!(with_arg0(&f, "umask", 0o22), RET_LOG);
}

#[test]
fn conditional_rules_with_the_default_action_are_dropped() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["umask"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    assert_eq!(
        f.instructions().len(),
        compile(json!({"defaultAction": "SCMP_ACT_ALLOW"})).instructions().len()
    );
    assert_eq!(with_arg0(&f, "umask", 1), ALLOW);
}

// ---- big programs ----------------------------------------------------------

/// The unconditional allow list of Docker's default profile (moby
/// profiles/seccomp/default.json), as it stands for amd64 without extra
/// capabilities, written out by hand.
const DOCKER_ALLOWED: &str = "
    accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
    eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
    fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
    fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
    ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
    getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
    getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
    get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
    inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
    io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
    listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
    mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
    mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
    munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause
    pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64
    prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
    pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
    sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
    sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
    sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
    sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
    setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
    setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
    sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat
    sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
    uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
    waitpid write writev
    arch_prctl modify_ldt
";

fn docker_like(default_errno: u32) -> serde_json::Value {
    let names: Vec<&str> = DOCKER_ALLOWED.split_whitespace().collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": default_errno,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_GT"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131072, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131080, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295u64, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })
}

#[test]
fn docker_like_profile() {
    let f = compile(docker_like(1));
    eprintln!("docker-like profile: {} instructions", f.instructions().len());
    let names: Vec<&str> = DOCKER_ALLOWED.split_whitespace().collect();
    assert!(names.len() >= 300, "{} names", names.len());
    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
        let mut present = 0;
        for name in &names {
            if abi.number(name).is_some() {
                present += 1;
                assert_eq!(verdict(&f, abi, name, [0; 6]), ALLOW, "{name} on {abi:?}");
            }
        }
        assert!(present > 250, "{present} on {abi:?}");
        for denied in [
            "mount",
            "umount2",
            "reboot",
            "kexec_load",
            "init_module",
            "bpf",
            "unshare",
            "setns",
        ] {
            assert_eq!(verdict(&f, abi, denied, [0; 6]), errno(1), "{denied} on {abi:?}");
        }
        assert_eq!(verdict(&f, abi, "clone3", [0; 6]), errno(38), "clone3 on {abi:?}");
        assert_eq!(verdict(&f, abi, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&f, abi, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&f, abi, "personality", [5, 0, 0, 0, 0, 0]), errno(1));
        // clone with CLONE_NEWNS (0x20000) is denied, a thread clone is not.
        assert_eq!(verdict(&f, abi, "clone", [0x20000 | 0x11, 0, 0, 0, 0, 0]), errno(1));
        assert_eq!(verdict(&f, abi, "clone", [0x3d0f00, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&f, abi, "socket", [40, 0, 0, 0, 0, 0]), errno(1), "AF_VSOCK");
        assert_eq!(verdict(&f, abi, "socket", [2, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&f, abi, "ptrace", [0, 0, 0, 0, 0, 0]), errno(1));
    }
    // On x86_64 a 64-bit personality value beyond 32 bits does not match.
    assert_eq!(
        verdict(&f, Abi::X86_64, "personality", [0x1_0000_0008, 0, 0, 0, 0, 0]),
        errno(1)
    );
    // On i386 only the low word counts.
    assert_eq!(
        verdict(&f, Abi::I386, "personality", [0x1_0000_0008, 0, 0, 0, 0, 0]),
        ALLOW
    );
}

#[test]
fn every_syscall_with_argument_rules_needs_long_jumps() {
    // 200 syscalls, each with a two-argument rule: the argument blocks end
    // up far beyond 8-bit jump reach from the search tree.
    let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).take(200).collect();
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 9, "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 5, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GE"}
        ]}]
    }));
    assert!(f.instructions().len() > 1000);
    assert!(
        f.instructions().iter().any(|i| i.code == 0x05 && i.k > 255),
        "expected widened jumps"
    );
    for name in &names {
        assert_eq!(
            verdict(&f, Abi::X86_64, name, [1, 0, 0, 0, 0, 0x1_0000_0000]),
            errno(9),
            "{name}"
        );
        assert_eq!(
            verdict(&f, Abi::X86_64, name, [1, 0, 0, 0, 0, 0xffff_ffff]),
            ALLOW,
            "{name}"
        );
        assert_eq!(
            verdict(&f, Abi::X86_64, name, [2, 0, 0, 0, 0, u64::MAX]),
            ALLOW,
            "{name}"
        );
    }
    for (name, _) in syscalls::X86_64.iter().skip(200) {
        assert_eq!(
            verdict(&f, Abi::X86_64, name, [1, 0, 0, 0, 0, u64::MAX]),
            ALLOW,
            "{name}"
        );
    }
}

#[test]
fn every_known_syscall_compiles_on_every_abi() {
    let mut names: Vec<&str> = [syscalls::X86_64, syscalls::I386, syscalls::X32]
        .iter()
        .flat_map(|t| t.iter().map(|(n, _)| *n))
        .chain(FOREIGN_SYSCALLS.iter().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    }));
    for (abi, table) in [
        (Abi::X86_64, syscalls::X86_64),
        (Abi::I386, syscalls::I386),
        (Abi::X32, syscalls::X32),
    ] {
        for (name, _) in table {
            assert_eq!(verdict(&f, abi, name, [0; 6]), ALLOW, "{name} on {abi:?}");
        }
        let unknown = Call {
            arch: audit(abi),
            nr: if abi == Abi::X32 { X32_SYSCALL_BIT | 1000 } else { 1000 },
            args: [0; 6],
        };
        assert_eq!(run(f.instructions(), &unknown), KILL_PROCESS);
    }
}

#[test]
fn tables_are_sorted_and_consistent() {
    for table in [syscalls::X86_64, syscalls::I386, syscalls::X32] {
        assert!(
            table.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted by name, no duplicates"
        );
        let mut nrs: Vec<u32> = table.iter().map(|(_, n)| *n).collect();
        nrs.sort_unstable();
        assert!(nrs.windows(2).all(|w| w[0] < w[1]), "numbers unique");
    }
    assert_eq!(nr(Abi::X86_64, "read"), 0);
    assert_eq!(nr(Abi::X86_64, "getcwd"), libc::SYS_getcwd as u32);
    assert_eq!(nr(Abi::X86_64, "mkdir"), libc::SYS_mkdir as u32);
    assert_eq!(nr(Abi::X86_64, "statmount"), 457);
    assert_eq!(nr(Abi::I386, "statmount"), 457);
    assert_eq!(nr(Abi::X32, "statmount"), X32_SYSCALL_BIT | 457);
    assert_eq!(nr(Abi::I386, "exit"), 1);
    assert!(Abi::I386.number("map_shadow_stack").is_none());
    assert!(syscalls::X86_64.len() > 360);
}

#[test]
fn too_large_a_program_is_refused() {
    let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).collect();
    let args: Vec<serde_json::Value> = (0..6)
        .map(|i| json!({"index": i, "value": 3, "op": "SCMP_CMP_LT"}))
        .collect();
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "args": args}]
    }));
    assert!(e.starts_with("linux.seccomp: the filter needs "), "{e}");
    assert!(e.contains("4096"), "{e}");
}

// ---- flags -----------------------------------------------------------------

#[test]
fn flags_reach_seccomp() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    }));
    assert_eq!(
        f.flags,
        FLAG_LOG | FLAG_SPEC_ALLOW,
        "WAIT_KILLABLE_RECV needs a listener"
    );
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert_eq!(
        f.flags,
        FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER | FLAG_TSYNC | FLAG_TSYNC_ESRCH
    );
    let f = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}));
    assert_eq!(f.flags, FLAG_TSYNC);
}

// ---- errors ----------------------------------------------------------------

#[test]
fn unknown_names_are_skipped_and_reported() {
    let cfg: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["foo", "getcwd"], "action": "SCMP_ACT_ERRNO"}
        ]
    }))
    .unwrap();
    let f = Filter::compile(&cfg).unwrap();
    assert_eq!(
        f.skipped(),
        ["linux.seccomp.syscalls[2].names[0]: unknown syscall \"foo\" skipped"]
    );
}

#[test]
fn errors_name_the_field_and_value() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "errnoRet": 38}
            ]}),
            "linux.seccomp.syscalls[1].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, got SCMP_ACT_ALLOW",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "defaultErrnoRet": 1}),
            "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, got SCMP_ACT_KILL_PROCESS",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 38}),
            "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, got SCMP_ACT_ALLOW",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}
            ]}),
            "linux.seccomp.syscalls[0].errnoRet: 70000 does not fit the 16 bits of seccomp action data",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
            "linux.seccomp.syscalls[0].names: must contain at least one entry",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}
                ]}
            ]}),
            "linux.seccomp.syscalls[0].args[1].index: must be 0 to 5, got 6",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]}),
            "linux.seccomp.architectures[1]: unsupported architecture \"SCMP_ARCH_AARCH64\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
            "linux.seccomp.listenerMetadata: must not be set without linux.seccomp.listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY", "errnoRet": 1}
            ], "listenerPath": "/a"}),
            "linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, got SCMP_ACT_NOTIFY",
        ),
    ];
    for (cfg, want) in cases {
        let got = compile_err(cfg);
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn foreign_syscalls_are_accepted_and_skipped() {
    let f = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["arm_fadvise64_64", "s390_sthyi", "getcwd"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(on64(&f, "getcwd"), errno(1));
    assert_eq!(on64(&f, "fadvise64"), ALLOW);
}

#[test]
fn unknown_oci_strings_fail_to_parse() {
    // Unknown action, arch, operator and flag strings never reach compile:
    // the typed config refuses them.
    for bad in [
        json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ALMOST"}]}]}),
    ] {
        assert!(serde_json::from_value::<LinuxSeccomp>(bad).is_err());
    }
}

// ---- the listener hand-off -------------------------------------------------

/// Receives one message with up to one fd, then (with `to_eof`) reads
/// until the sender closes.
fn recv_state(sock: RawFd, to_eof: bool) -> (Vec<u8>, Option<OwnedFd>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all zeroes is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", io::Error::last_os_error());
    let mut fd = None;
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // well-formed cmsg headers; the macros walk only within them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let mut data = buf[..n as usize].to_vec();
    if to_eof {
        loop {
            // SAFETY: reading into a live buffer of its length.
            let m = unsafe { libc::read(sock, buf.as_mut_ptr().cast(), buf.len()) };
            if m <= 0 {
                break;
            }
            data.extend_from_slice(&buf[..m as usize]);
        }
    }
    (data, fd)
}

fn inode(fd: RawFd) -> (u64, u64) {
    // SAFETY: stat is plain data; fstat fills it for a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    (st.st_dev, st.st_ino)
}

#[test]
fn send_to_listener_sends_the_state_and_the_fd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let file: OwnedFd = tempfile::tempfile().unwrap().into();
    let state = json!({"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"});
    send_to_listener(&path, &state, Some("MKNOD=/dev/null"), 42, &file).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (data, fd) = recv_state(conn.as_raw_fd(), true);
    let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(v["ociVersion"], crate::OCI_VERSION);
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["pid"], 42);
    assert_eq!(v["metadata"], "MKNOD=/dev/null");
    assert_eq!(v["state"], state);
    let fd = fd.expect("an fd over SCM_RIGHTS");
    assert_eq!(inode(fd.as_raw_fd()), inode(file.as_raw_fd()));

    // Without metadata the field is absent.
    send_to_listener(&path, &state, None, 42, &file).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (data, _) = recv_state(conn.as_raw_fd(), true);
    let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert!(v.get("metadata").is_none());
}

#[test]
fn send_to_listener_fails_when_nobody_listens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let file: OwnedFd = tempfile::tempfile().unwrap().into();
    let e = send_to_listener(&path, &json!({}), None, 1, &file).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("linux.seccomp.listenerPath "), "{msg}");
    assert!(msg.contains("nobody.sock: connect"), "{msg}");
}

// ---- in the kernel ---------------------------------------------------------

/// Kills and reaps the child if the test fails before waiting for it.
struct Child(libc::pid_t);

impl Drop for Child {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: signalling and reaping our own child by pid.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

impl Child {
    /// The wait status, killing the child after `timeout`.
    fn wait(mut self, timeout: Duration) -> libc::c_int {
        let end = Instant::now() + timeout;
        loop {
            let mut st = 0;
            // SAFETY: reaping our own child; `st` is a valid out-pointer.
            let r = unsafe { libc::waitpid(self.0, &mut st, libc::WNOHANG) };
            if r == self.0 {
                self.0 = 0;
                return st;
            }
            assert!(r == 0, "waitpid: {}", io::Error::last_os_error());
            assert!(Instant::now() < end, "the child did not finish in {timeout:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs `f` in a forked child that has set no_new_privs and no core dumps;
/// its return value is the exit code. `f` must not allocate: the test
/// process has other threads, one of which may hold the allocator's lock.
fn fork_child(f: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only makes raw system calls (through `f`) and
    // leaves with _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on our own process, then _exit.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &core);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(100);
            }
            let code = f();
            libc::_exit(code);
        }
    }
    Child(pid)
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn exited(st: libc::c_int) -> Option<i32> {
    libc::WIFEXITED(st).then(|| libc::WEXITSTATUS(st))
}

fn signalled(st: libc::c_int) -> Option<i32> {
    libc::WIFSIGNALED(st).then(|| libc::WTERMSIG(st))
}

const CHILD_TIMEOUT: Duration = Duration::from_secs(20);

fn getcwd_and_getppid_filter() -> Filter {
    compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]
    }))
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_returns_the_errno() {
    let filter = getcwd_and_getppid_filter();
    let child = fork_child(|| {
        if filter.install().is_err() {
            return 101;
        }
        let mut buf = [0u8; 256];
        // SAFETY: getcwd writes at most buf.len() bytes into buf.
        let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        match (r, last_errno()) {
            (-1, 38) => 0,
            (-1, _) => 2,
            _ => 3,
        }
    });
    let st = child.wait(CHILD_TIMEOUT);
    assert_eq!(exited(st), Some(0), "wait status {st:#x}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_kills_with_sigsys() {
    let filter = getcwd_and_getppid_filter();
    let child = fork_child(|| {
        if filter.install().is_err() {
            return 101;
        }
        // SAFETY: getppid has no arguments and no effects.
        unsafe { libc::syscall(libc::SYS_getppid) };
        4
    });
    let st = child.wait(CHILD_TIMEOUT);
    assert_eq!(signalled(st), Some(libc::SIGSYS), "wait status {st:#x}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_accepts_the_docker_like_profile() {
    let filter = compile(docker_like(38));
    let child = fork_child(|| {
        if filter.install().is_err() {
            return 101;
        }
        // SAFETY: getpid has no arguments; syslog(SIZE_BUFFER) reads nothing.
        unsafe {
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 2;
            }
            // syslog is not in the allow list: the default errno 38.
            let r = libc::syscall(libc::SYS_syslog, 10, std::ptr::null_mut::<u8>(), 0);
            if r != -1 || last_errno() != 38 {
                return 3;
            }
            // personality(0xffffffff) only queries and is allowed by args.
            if libc::syscall(libc::SYS_personality, 0xffff_ffffu64) == -1 {
                return 4;
            }
            if libc::syscall(libc::SYS_personality, 5u64) != -1 || last_errno() != 38 {
                return 5;
            }
        }
        0
    });
    let st = child.wait(CHILD_TIMEOUT);
    assert_eq!(exited(st), Some(0), "wait status {st:#x}");
}

/// Waits until `fd` is readable.
fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as libc::c_int) };
    r == 1
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_notifies_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let target = CString::new(dir.path().join("d").as_os_str().as_encoded_bytes()).unwrap();
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/unused/in/this/test",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert!(filter.needs_listener());
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: socketpair just returned these two fds, owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let child = fork_child(|| {
        let fd = match filter.install() {
            Ok(Some(fd)) => fd,
            _ => return 101,
        };
        if send_with_fd(theirs.as_fd(), b"seccompFd", fd.as_fd()).is_err() {
            return 102;
        }
        drop(fd);
        // SAFETY: mkdir with a NUL-terminated path that outlives the call.
        let r = unsafe { libc::syscall(libc::SYS_mkdir, target.as_ptr(), 0o700) };
        match (r, last_errno()) {
            (-1, libc::EXDEV) => 0,
            (0, _) => 2,
            _ => 3,
        }
    });
    drop(theirs);
    assert!(readable(ours.as_raw_fd(), CHILD_TIMEOUT), "no fd from the child");
    let (data, fd) = recv_state(ours.as_raw_fd(), false);
    let Some(fd) = fd else {
        let st = child.wait(CHILD_TIMEOUT);
        panic!("no fd received (payload {data:?}), child status {st:#x}");
    };
    assert_eq!(data, b"seccompFd");
    assert!(readable(fd.as_raw_fd(), CHILD_TIMEOUT), "no notification");
    // SAFETY: all-zero is valid for these uapi structs, and NOTIF_RECV
    // requires a zeroed buffer.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes a seccomp_notif into `req`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", io::Error::last_os_error());
    assert_eq!(req.data.nr, libc::SYS_mkdir as i32);
    assert_eq!(req.data.arch, AUDIT_ARCH_X86_64);
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: -libc::EXDEV,
        flags: 0,
    };
    // SAFETY: the ioctl reads a seccomp_notif_resp from `resp`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", io::Error::last_os_error());
    let st = child.wait(CHILD_TIMEOUT);
    assert_eq!(exited(st), Some(0), "wait status {st:#x}");
    assert!(!dir.path().join("d").exists());
}
