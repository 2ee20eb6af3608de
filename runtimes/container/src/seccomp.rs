//! `linux.seccomp` (config-linux.md, Seccomp): the config compiled to a
//! classic BPF program in pure Rust and installed with seccomp(2), plus the
//! hand-off of the `SCMP_ACT_NOTIFY` listener fd to the seccomp agent
//! (config-linux.md, The Container Process State).
//!
//! No libseccomp: the runtimes are static binaries that also run inside VM
//! guests, and the part of libseccomp an OCI runtime needs is small.
//!
//! # The program
//!
//! ```text
//! ld arch
//! jeq AUDIT_ARCH_X86_64 -> x86_64 section   (when SCMP_ARCH_X86_64 or _X32 is listed)
//! jeq AUDIT_ARCH_I386   -> i386 section     (when SCMP_ARCH_X86 is listed)
//! ret KILL_PROCESS                            (an architecture not listed)
//! x86_64 section: ld nr; nr >= 0x40000000 (x32 bit, and not -1) -> x32 rules, else x86_64 rules
//! rules: a binary search over the syscall numbers down to short `jeq` runs,
//!        each returning its action directly or jumping to an argument block
//! argument block: the syscall's rules in config order, each a chain of
//!        argument comparisons (ANDed) ending in `ret action`; the first rule
//!        whose comparisons all hold decides, none -> the default action
//! ```
//!
//! # Decisions
//!
//! * **Architectures.** Without `architectures` the filter covers the native
//!   ABI (x86_64) only, like libseccomp. A call made through an ABI that is not
//!   listed (i386 via `int $0x80`, x32 via the `0x40000000` bit) is answered
//!   with `SECCOMP_RET_KILL_PROCESS`, whatever the default action: the rules
//!   were written in terms of one ABI's numbers and another ABI's numbers
//!   would slip past deny rules. libseccomp does the same (with KILL_THREAD);
//!   killing the whole process leaves no half-dead thread group. Listing an
//!   architecture this runtime cannot filter (anything but x86, x86_64, x32)
//!   is an error, as config.md requires for unsupported values.
//! * **Unknown syscall names** are an error (config.md, "Runtimes MUST
//!   generate an error when invalid or unsupported values are encountered"):
//!   silently dropping a deny rule would leave the container less confined
//!   than asked. Names that exist on some Linux architecture but not on the
//!   listed ones (`socketcall` on x86_64, `arm_fadvise64_64`) are accepted and
//!   skipped for the ABIs that lack them, since no process can make them there.
//! * **Several rules for one syscall**: an unconditional rule decides (the
//!   first one listed); otherwise the conditional rules are tried in config
//!   order and the first whose arguments all match decides. This is
//!   libseccomp's behaviour where it is defined.
//! * **Arguments** are compared as unsigned 64-bit values on x86_64 and x32
//!   (both 32-bit halves of `seccomp_data.args[i]`); on i386 only the low 32
//!   bits are meaningful (the kernel does not promise clean high halves for
//!   `int $0x80`), so values are compared by their low 32 bits, and a
//!   sign-extended `0xffffffffffffffff` means `0xffffffff` there.
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo`; `valueTwo` is ignored
//!   by the other operators (docker's profile sets it to 0 everywhere).
//! * **errnoRet / defaultErrnoRet** only with `SCMP_ACT_ERRNO` and
//!   `SCMP_ACT_TRACE` (the spec says the runtime MUST fail otherwise); both
//!   default to EPERM; the value must fit the 16-bit action data.
//! * **SCMP_ACT_NOTIFY** needs `listenerPath` (without an agent every such
//!   call would just fail) and cannot be the default action (the runtime's own
//!   calls between install and exec would wait for an agent that has not got
//!   the fd yet; libseccomp refuses it too).
//! * **Flags** are passed to seccomp(2). `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
//!   is only meaningful (and only accepted by the kernel) together with a
//!   listener, so it is dropped when no rule notifies; `_TSYNC` is passed on
//!   (with `_TSYNC_ESRCH` when a listener is requested, which the kernel
//!   requires for the combination).

mod bpf;
mod syscalls;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};

use bpf::{Asm, Label, Target, BPF_JEQ, BPF_JGE, BPF_JGT};

/// Why a seccomp config could not be compiled, installed or handed over.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of `linux.seccomp` has a value this runtime refuses.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The filter does not fit the kernel's limit.
    #[error("linux.seccomp: the filter needs {0} instructions, more than the kernel's limit of 4096")]
    TooLarge(usize),
    /// A system call failed.
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A bug in the code generator, never caused by the config.
    #[error("linux.seccomp: internal error compiling the filter: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

// Return values of a filter (<linux/seccomp.h>).
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_DATA: u32 = 0x0000_ffff;

// seccomp(2) flags.
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

// <linux/audit.h>
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// What the kernel answers for a call made through an ABI the config does
/// not list (see the module docs).
const BAD_ARCH_ACTION: u32 = RET_KILL_PROCESS;

/// Syscalls of other Linux architectures: accepted by name, never present on
/// the x86 ABIs, so skipped (a profile shared between hosts may name them).
const FOREIGN_SYSCALLS: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "atomic_barrier",
    "atomic_cmpxchg_32",
    "breakpoint",
    "cachectl",
    "cacheflush",
    "get_tls",
    "getdomainname",
    "getpagesize",
    "getxgid",
    "getxpid",
    "getxuid",
    "kern_features",
    "memory_ordering",
    "multiplexer",
    "pciconfig_iobase",
    "pciconfig_read",
    "pciconfig_write",
    "perfctr",
    "recv",
    "riscv_flush_icache",
    "riscv_hwprobe",
    "rtas",
    "s390_guarded_storage",
    "s390_pci_mmio_read",
    "s390_pci_mmio_write",
    "s390_runtime_instr",
    "s390_sthyi",
    "send",
    "set_tls",
    "spu_create",
    "spu_run",
    "subpage_prot",
    "swapcontext",
    "switch_endian",
    "sync_file_range2",
    "sys_debug_setcontext",
    "sysmips",
    "usr26",
    "usr32",
    "utrap_install",
];

/// A Linux system call ABI the filter covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Abi {
    X86_64,
    I386,
    X32,
}

impl Abi {
    /// The number of `name` in this ABI, as seen in `seccomp_data.nr`.
    fn number(self, name: &str) -> Option<u32> {
        let table = match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::I386 => syscalls::I386,
            Abi::X32 => syscalls::X32,
        };
        let i = table.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        let nr = table[i].1;
        Some(if self == Abi::X32 { nr | X32_SYSCALL_BIT } else { nr })
    }

    /// Whether syscall arguments are 64 bits wide.
    fn wide(self) -> bool {
        self != Abi::I386
    }
}

/// One argument comparison of a rule.
#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// One `syscalls[]` entry as it applies to one syscall number.
#[derive(Clone, Debug)]
struct Rule {
    action: u32,
    conds: Vec<Cond>,
}

/// A compiled `linux.seccomp`: the BPF program and how to install it.
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: u32,
    listener: bool,
    /// Warnings: syscall names no known architecture has, left out.
    skipped: Vec<String>,
}

/// The spelling of an oci-spec enum value in config.json, for messages.
fn spelling<T: serde::Serialize + std::fmt::Debug>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{v:?}"))
}

/// The filter return value for `action` with the errno (or trace data)
/// `errno`, which only ERRNO and TRACE accept; `field` names `errno`.
fn action_value(action: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<u32> {
    use LinuxSeccompAction as A;
    let data = |e: Option<u32>| -> Result<u32> {
        let e = e.unwrap_or(libc::EPERM as u32);
        if e > RET_DATA {
            return Err(invalid(
                field,
                format!("{e} does not fit the 16 bits of seccomp action data"),
            ));
        }
        Ok(e)
    };
    let without = |ret: u32| -> Result<u32> {
        match errno {
            Some(_) => Err(invalid(
                field,
                format!(
                    "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, got {}",
                    spelling(&action)
                ),
            )),
            None => Ok(ret),
        }
    };
    match action {
        A::ScmpActKill | A::ScmpActKillThread => without(RET_KILL_THREAD),
        A::ScmpActKillProcess => without(RET_KILL_PROCESS),
        A::ScmpActTrap => without(RET_TRAP),
        A::ScmpActErrno => Ok(RET_ERRNO | data(errno)?),
        A::ScmpActTrace => Ok(RET_TRACE | data(errno)?),
        A::ScmpActAllow => without(RET_ALLOW),
        A::ScmpActLog => without(RET_LOG),
        A::ScmpActNotify => without(RET_USER_NOTIF),
    }
}

/// The ABIs `architectures` asks for; none listed means the native one.
fn abis(seccomp: &LinuxSeccomp) -> Result<Vec<Abi>> {
    let mut out = Vec::new();
    for (i, arch) in seccomp
        .architectures()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let abi = match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                return Err(invalid(
                    format!("linux.seccomp.architectures[{i}]"),
                    format!(
                        "unsupported architecture \"{}\" (this runtime filters SCMP_ARCH_X86_64, SCMP_ARCH_X86 and SCMP_ARCH_X32)",
                        spelling(other)
                    ),
                ))
            }
        };
        if !out.contains(&abi) {
            out.push(abi);
        }
    }
    if out.is_empty() {
        out.push(Abi::X86_64);
    }
    Ok(out)
}

impl Filter {
    /// Compiles `linux.seccomp`. Errors name the offending field and value,
    /// e.g. `linux.seccomp.syscalls[2].names[0]: unknown syscall "foo"`.
    pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter> {
        // The syscall tables are x86's: on another host every call would
        // come from an unlisted architecture and be killed.
        if !cfg!(target_arch = "x86_64") {
            return Err(invalid(
                "linux.seccomp",
                format!(
                    "seccomp filters are only supported on x86_64 hosts, this is {}",
                    std::env::consts::ARCH
                ),
            ));
        }
        if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
            return Err(invalid(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY cannot be the default action (the runtime's own calls before exec would wait for the agent)",
            ));
        }
        let default = action_value(
            seccomp.default_action(),
            seccomp.default_errno_ret(),
            "linux.seccomp.defaultErrnoRet",
        )?;
        let abis = abis(seccomp)?;
        if seccomp.listener_metadata().is_some() && seccomp.listener_path().is_none() {
            return Err(invalid(
                "linux.seccomp.listenerMetadata",
                "must not be set without linux.seccomp.listenerPath",
            ));
        }

        let mut rules: BTreeMap<Abi, BTreeMap<u32, Vec<Rule>>> = BTreeMap::new();
        let mut listener = false;
        let mut skipped = Vec::new();
        for (i, sc) in seccomp.syscalls().as_deref().unwrap_or_default().iter().enumerate() {
            let at = format!("linux.seccomp.syscalls[{i}]");
            let action = action_value(sc.action(), sc.errno_ret(), &format!("{at}.errnoRet"))?;
            listener |= sc.action() == LinuxSeccompAction::ScmpActNotify;
            if sc.names().is_empty() {
                return Err(invalid(format!("{at}.names"), "must contain at least one entry"));
            }
            let mut conds = Vec::new();
            for (j, a) in sc.args().as_deref().unwrap_or_default().iter().enumerate() {
                if a.index() > 5 {
                    return Err(invalid(
                        format!("{at}.args[{j}].index"),
                        format!("must be 0 to 5, got {}", a.index()),
                    ));
                }
                conds.push(Cond {
                    index: a.index() as u32,
                    op: a.op(),
                    value: a.value(),
                    value_two: a.value_two().unwrap_or(0),
                });
            }
            for (j, name) in sc.names().iter().enumerate() {
                let known = [Abi::X86_64, Abi::I386, Abi::X32]
                    .iter()
                    .any(|abi| abi.number(name).is_some())
                    || FOREIGN_SYSCALLS.contains(&name.as_str());
                if !known {
                    // Real profiles (podman's, docker's) name calls that a
                    // given architecture or this table lacks; libseccomp and
                    // runc skip those, and refusing them would refuse every
                    // podman container. Skipped names are reported.
                    skipped.push(format!("{at}.names[{j}]: unknown syscall {name:?} skipped"));
                    continue;
                }
                for &abi in &abis {
                    if let Some(nr) = abi.number(name) {
                        rules.entry(abi).or_default().entry(nr).or_default().push(Rule {
                            action,
                            conds: conds.clone(),
                        });
                    }
                }
            }
        }
        if listener && seccomp.listener_path().is_none() {
            return Err(invalid(
                "linux.seccomp.listenerPath",
                "required when a rule uses SCMP_ACT_NOTIFY (the notify fd must go to an agent)",
            ));
        }

        let mut flags = 0;
        for flag in seccomp.flags().as_deref().unwrap_or_default() {
            flags |= match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if listener => FLAG_WAIT_KILLABLE_RECV,
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
            };
        }
        if listener {
            flags |= FLAG_NEW_LISTENER;
            if flags & FLAG_TSYNC != 0 {
                flags |= FLAG_TSYNC_ESRCH;
            }
        }

        let empty = BTreeMap::new();
        let of = |abi: Abi| rules.get(&abi).unwrap_or(&empty);
        let program = generate(&abis, &of, default)?;
        Ok(Filter {
            program,
            flags,
            listener,
            skipped,
        })
    }

    /// Syscall names that were left out because no known architecture has
    /// them; the runtime logs these as warnings.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The compiled program, for inspection and tests.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.program
    }

    /// Whether a rule uses `SCMP_ACT_NOTIFY`, so that [`Filter::install`]
    /// returns a listener fd to send to `listenerPath`.
    pub fn needs_listener(&self) -> bool {
        self.listener
    }

    /// Installs the filter on the calling thread with
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`, returning the notify listener fd
    /// when [`Filter::needs_listener`]. The caller must have set
    /// `no_new_privs` or hold CAP_SYS_ADMIN (the kernel's rule). Allocates
    /// nothing unless it fails, so it may run in a forked child.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which outlives the call;
        // the kernel copies the program and only reads through the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            let hint = if source.raw_os_error() == Some(libc::EACCES) {
                " (without no_new_privs the caller needs CAP_SYS_ADMIN)"
            } else {
                ""
            };
            return Err(Error::Os {
                what: format!("seccomp(SECCOMP_SET_MODE_FILTER, flags {:#x}){hint}", self.flags),
                source,
            });
        }
        if self.listener {
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful call
            // returns a new fd that nothing else owns.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) }))
        } else {
            Ok(None)
        }
    }
}

/// Sends the container process state (config-linux.md, The Container Process
/// State) with `fd` as `seccompFd` to the agent at `path`: one connection,
/// the JSON and the fd (SCM_RIGHTS) in the first sendmsg, then closed.
pub fn send_to_listener(
    path: &Path,
    state_json: &serde_json::Value,
    metadata: Option<&str>,
    pid: i32,
    fd: &OwnedFd,
) -> Result<()> {
    let stream = connect_listener(path)?;
    send_on(&stream, path, state_json, metadata, pid, fd)
}

/// Connects to `listenerPath`; done before pivot_root, while the host path
/// is still reachable, and a failure is the create error the spec asks for.
pub fn connect_listener(path: &Path) -> Result<UnixStream> {
    crate::unix::with_socket_path(path, |p| UnixStream::connect(p)).map_err(|source| Error::Os {
        what: format!("linux.seccomp.listenerPath {}: connect", path.display()),
        source,
    })
}

/// `send_to_listener` on a stream connected earlier with `connect_listener`.
pub fn send_on(
    stream: &UnixStream,
    path: &Path,
    state_json: &serde_json::Value,
    metadata: Option<&str>,
    pid: i32,
    fd: &OwnedFd,
) -> Result<()> {
    let mut msg = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state_json,
    });
    if let Some(m) = metadata {
        msg["metadata"] = serde_json::Value::from(m);
    }
    let payload = serde_json::to_vec(&msg).map_err(|e| Error::Internal(format!("serializing the state: {e}")))?;
    send_payload(stream, path, &payload, fd)
}

fn send_payload(stream: &UnixStream, path: &Path, payload: &[u8], fd: &OwnedFd) -> Result<()> {
    let os = |step: &str| {
        let what = format!("linux.seccomp.listenerPath {}: {step}", path.display());
        move |source| Error::Os { what, source }
    };
    let sent = send_with_fd(stream.as_fd(), payload, fd.as_fd()).map_err(os("sendmsg"))?;
    (&*stream).write_all(&payload[sent..]).map_err(os("write"))?;
    Ok(())
}

/// One `sendmsg` of `payload` with `fd` attached as SCM_RIGHTS; returns how
/// many payload bytes went. Allocates nothing, so a forked child may use it.
pub(crate) fn send_with_fd(sock: BorrowedFd<'_>, payload: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
    // Room for one cmsghdr carrying one int, aligned like a cmsghdr.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    if space > std::mem::size_of_val(&control) {
        return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all zeroes is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `control`, at least `space` bytes, so the
    // first header and its data (CMSG_LEN(4) <= space) are inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: `msg` and everything it points to (iov, payload, control)
        // live across the call; the kernel only reads them.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Where a syscall number leads.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Ret(u32),
    Block(Label),
}

/// Syscalls per decision-tree leaf: a run of `jeq`s, short enough that the
/// leaf's own `ret`s are in 8-bit reach.
const LEAF: usize = 8;

/// The whole program (layout in the module docs).
fn generate<'a>(
    abis: &[Abi],
    rules: &dyn Fn(Abi) -> &'a BTreeMap<u32, Vec<Rule>>,
    default: u32,
) -> Result<Vec<libc::sock_filter>> {
    let has = |abi| abis.contains(&abi);
    let mut asm = Asm::default();
    let x86_64 = (has(Abi::X86_64) || has(Abi::X32)).then(|| asm.label());
    let i386 = has(Abi::I386).then(|| asm.label());
    asm.load(OFF_ARCH);
    if let Some(l) = x86_64 {
        asm.jump(BPF_JEQ, AUDIT_ARCH_X86_64, Target::To(l), Target::Next);
    }
    if let Some(l) = i386 {
        asm.jump(BPF_JEQ, AUDIT_ARCH_I386, Target::To(l), Target::Next);
    }
    asm.ret(BAD_ARCH_ACTION);
    if let Some(l) = x86_64 {
        asm.bind(l);
        asm.load(OFF_NR);
        let native = asm.label();
        asm.jump(BPF_JGE, X32_SYSCALL_BIT, Target::Next, Target::To(native));
        // nr -1 is what a tracer leaves when it skips a call: not x32.
        asm.jump(BPF_JEQ, u32::MAX, Target::To(native), Target::Next);
        if has(Abi::X32) {
            emit_abi(&mut asm, Abi::X32, rules(Abi::X32), default);
        } else {
            asm.ret(BAD_ARCH_ACTION);
        }
        asm.bind(native);
        if has(Abi::X86_64) {
            emit_abi(&mut asm, Abi::X86_64, rules(Abi::X86_64), default);
        } else {
            asm.ret(BAD_ARCH_ACTION);
        }
    }
    if let Some(l) = i386 {
        asm.bind(l);
        asm.load(OFF_NR);
        emit_abi(&mut asm, Abi::I386, rules(Abi::I386), default);
    }
    let program = asm.finish().map_err(Error::Internal)?;
    if program.len() > bpf::MAX_INSNS {
        return Err(Error::TooLarge(program.len()));
    }
    Ok(program)
}

/// One ABI's rules; the accumulator holds the syscall number.
fn emit_abi(asm: &mut Asm, abi: Abi, rules: &BTreeMap<u32, Vec<Rule>>, default: u32) {
    let mut entries = Vec::new();
    let mut blocks = Vec::new();
    for (&nr, list) in rules {
        let outcome = match list.iter().find(|r| r.conds.is_empty()) {
            Some(r) => Outcome::Ret(r.action),
            None if list.iter().all(|r| r.action == default) => Outcome::Ret(default),
            None => {
                let l = asm.label();
                blocks.push((l, list));
                Outcome::Block(l)
            }
        };
        // A syscall that ends at the default action needs no entry.
        if !matches!(outcome, Outcome::Ret(a) if a == default) {
            entries.push((nr, outcome));
        }
    }
    emit_tree(asm, &entries, default);
    for (l, list) in blocks {
        asm.bind(l);
        for rule in list {
            let fail = asm.label();
            for c in &rule.conds {
                let pass = asm.label();
                emit_cond(asm, abi, c, pass, fail);
                asm.bind(pass);
            }
            asm.ret(rule.action);
            asm.bind(fail);
        }
        asm.ret(default);
    }
}

/// A binary search over `entries` (sorted by number) down to leaves of at
/// most [`LEAF`] `jeq`s followed by the default and the leaf's returns.
fn emit_tree(asm: &mut Asm, entries: &[(u32, Outcome)], default: u32) {
    if entries.len() <= LEAF {
        let mut rets: Vec<(u32, Label)> = Vec::new();
        for &(nr, outcome) in entries {
            let to = match outcome {
                Outcome::Block(l) => l,
                Outcome::Ret(a) => match rets.iter().find(|(b, _)| *b == a) {
                    Some(&(_, l)) => l,
                    None => {
                        let l = asm.label();
                        rets.push((a, l));
                        l
                    }
                },
            };
            asm.jump(BPF_JEQ, nr, Target::To(to), Target::Next);
        }
        asm.ret(default);
        for (a, l) in rets {
            asm.bind(l);
            asm.ret(a);
        }
        return;
    }
    let mid = entries.len() / 2;
    let right = asm.label();
    asm.jump(BPF_JGE, entries[mid].0, Target::To(right), Target::Next);
    emit_tree(asm, &entries[..mid], default);
    asm.bind(right);
    emit_tree(asm, &entries[mid..], default);
}

/// Offsets of the low and high 32-bit words of `args[index]`.
fn arg_words(index: u32) -> (u32, u32) {
    let base = OFF_ARGS + 8 * index;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// Jumps to `pass` when the comparison holds and to `fail` when not.
fn emit_cond(asm: &mut Asm, abi: Abi, c: &Cond, pass: Label, fail: Label) {
    use LinuxSeccompOperator as Op;
    let (lo_off, hi_off) = arg_words(c.index);
    let (p, f, n) = (Target::To(pass), Target::To(fail), Target::Next);
    let (vlo, vhi) = (c.value as u32, (c.value >> 32) as u32);
    let (tlo, thi) = (c.value_two as u32, (c.value_two >> 32) as u32);
    if abi.wide() {
        // Decide on the high words where they differ, else on the low words.
        asm.load(hi_off);
        match c.op {
            Op::ScmpCmpEq => asm.jump(BPF_JEQ, vhi, n, f),
            Op::ScmpCmpNe => asm.jump(BPF_JEQ, vhi, n, p),
            Op::ScmpCmpGt | Op::ScmpCmpGe => {
                asm.jump(BPF_JGT, vhi, p, n);
                asm.jump(BPF_JEQ, vhi, n, f);
            }
            Op::ScmpCmpLt | Op::ScmpCmpLe => {
                asm.jump(BPF_JGT, vhi, f, n);
                asm.jump(BPF_JEQ, vhi, n, p);
            }
            Op::ScmpCmpMaskedEq => {
                asm.and(vhi);
                asm.jump(BPF_JEQ, thi, n, f);
            }
        }
    }
    asm.load(lo_off);
    match c.op {
        Op::ScmpCmpEq => asm.jump(BPF_JEQ, vlo, p, f),
        Op::ScmpCmpNe => asm.jump(BPF_JEQ, vlo, f, p),
        Op::ScmpCmpGt => asm.jump(BPF_JGT, vlo, p, f),
        Op::ScmpCmpGe => asm.jump(BPF_JGE, vlo, p, f),
        Op::ScmpCmpLt => asm.jump(BPF_JGE, vlo, f, p),
        Op::ScmpCmpLe => asm.jump(BPF_JGT, vlo, f, p),
        Op::ScmpCmpMaskedEq => {
            asm.and(vlo);
            asm.jump(BPF_JEQ, tlo, p, f);
        }
    }
}
