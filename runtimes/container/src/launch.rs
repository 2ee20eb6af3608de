//! The runc-compatible operations on top of the setup modules: create (the
//! init is cloned into its namespaces, prepares the container and blocks on
//! `exec.fifo`), start (opens the fifo so the init execs), kill, delete.
//!
//! Parent (host side) and init (container side) talk over a SEQPACKET
//! socket pair: one tagged message per step, so a failure inside the init
//! comes back to `create` as an error naming what failed.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::state::{Record, Status, Store};
use crate::{cgroups, config, hooks, namespaces, process, rootfs, seccomp, state};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Namespaces(#[from] namespaces::Error),
    #[error(transparent)]
    Cgroups(#[from] cgroups::Error),
    #[error(transparent)]
    Hooks(#[from] hooks::Error),
    #[error("container init: {0}")]
    Init(String),
    #[error("{what}: {source}")]
    Os { what: String, source: std::io::Error },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Os { what, source }
}

fn last_os(what: impl Into<String>) -> Error {
    Error::Os {
        what: what.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// What `create` needs besides the bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Extra fds (3..3+N) the container inherits.
    pub preserve_fds: u32,
    pub no_pivot: bool,
    /// A supervisor's filter, installed after everything else (see
    /// [`Mediation`]); `None` for an ordinary container.
    pub mediation: Option<Mediation>,
}

/// How a sandboxing runtime puts a supervisor between the container and the
/// kernel: `filter` (whose rules return `SECCOMP_RET_USER_NOTIF`) is the last
/// thing the init installs before it execs the program, on top of the
/// config's own filter, and its listener fd goes to the supervisor listening
/// on `socket`, as an OCI seccomp agent's message (config-linux.md, the
/// container process state). The runtime connects the socket before it
/// clones the init (which may be in a user namespace the socket refuses),
/// so sending the fd needs no mediated call. The init
/// sets no_new_privs first: a process without CAP_SYS_ADMIN may not load a
/// filter otherwise, and a sandboxed program must not gain privileges.
#[derive(Debug, Clone)]
pub struct Mediation {
    pub filter: seccomp::Filter,
    pub socket: PathBuf,
}

const GO: u8 = b'G';
const HOOKS: u8 = b'H';
const READY: u8 = b'R';
const ERROR: u8 = b'E';

fn send(sock: &UnixStream, tag: u8, payload: &str) -> std::io::Result<()> {
    let mut m = Vec::with_capacity(1 + payload.len());
    m.push(tag);
    m.extend_from_slice(payload.as_bytes());
    (&*sock).write_all(&m)
}

fn recv(sock: &UnixStream) -> std::io::Result<(u8, String)> {
    let mut buf = vec![0u8; 64 * 1024];
    let n = (&*sock).read(&mut buf)?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
    }
    Ok((buf[0], String::from_utf8_lossy(&buf[1..n]).into_owned()))
}

/// A SEQPACKET pair: one message per read, so steps never run together.
fn seqpacket_pair() -> Result<(UnixStream, UnixStream)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array we own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(last_os("socketpair for the container init"));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (UnixStream::from_raw_fd(fds[0]), UnixStream::from_raw_fd(fds[1])) })
}

/// The state a hook sees on stdin.
fn hook_state(id: &str, status: Status, pid: i32, bundle: &Path, spec: &Spec) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    })
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Usage("fifo path".into()))?;
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(last_os(format!("mkfifo {}", path.display())));
    }
    Ok(())
}

/// Undoes a failed create: whatever was made goes, the id is free again.
struct Rollback<'a> {
    store: &'a Store,
    id: String,
    pid: Option<i32>,
    cgroup_dirs: Vec<PathBuf>,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            // SAFETY: signals a process we cloned; harmless if it is gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let mut st = 0;
            // SAFETY: waits for our own child; `st` is a valid out pointer.
            unsafe { libc::waitpid(pid, &mut st, 0) };
        }
        remove_dirs(&self.cgroup_dirs);
        let _ = self.store.remove(&self.id);
    }
}

/// What `create` has made outside the state directory so far, written
/// (`intent.json`) before it makes it: a `create` killed half-way leaves a
/// directory without `state.json`, and `delete --force` undoes the rest
/// from this (runtime.md: delete MUST remove what create made).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Intent {
    /// The `create` process and its start time: while it lives the
    /// container is being created, not abandoned.
    creator: i32,
    creator_start: u64,
    cgroup_paths: Vec<PathBuf>,
    /// The init, once cloned, and its start time.
    pid: i32,
    pid_start: u64,
}

const INTENT: &str = "intent.json";

/// `delete --force` of a container whose state directory has no state file:
/// what a `create` or `delete` killed half-way left. Kills the init and what
/// is in its cgroups, removes them and the directory. `Ok(false)` when there
/// is no such directory; an error while its creator still runs.
pub fn delete_abandoned(store: &Store, id: &str) -> Result<bool> {
    if !store.has_dir(id) {
        return Ok(false);
    }
    let intent: Intent = store.load_file(id, INTENT).unwrap_or_default();
    if intent.creator > 0 && state::start_time(intent.creator) == Some(intent.creator_start) {
        return Err(Error::Init(format!(
            "container {id:?} is being created (by pid {}): cannot delete it yet",
            intent.creator
        )));
    }
    let mut pids = pids_in(&intent.cgroup_paths);
    if intent.pid > 0 && state::start_time(intent.pid) == Some(intent.pid_start) {
        pids.push(intent.pid);
    }
    for &pid in &pids {
        // SAFETY: plain kill(2) on the container's processes (its cgroups'
        // members, and the init identified by pid and start time).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    remove_dirs(&intent.cgroup_paths);
    store.remove(id)?;
    Ok(true)
}

/// `create`: returns the record of a container whose init waits for start,
/// and warnings for the caller to log (config.md: what cannot be applied is
/// logged, not silently dropped).
pub fn create(store: &Store, opts: &CreateOptions) -> Result<(Record, Vec<String>)> {
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(os(format!("bundle {}", opts.bundle.display())))?;
    state::check_id(&opts.id)?;
    let spec = config::load(&bundle)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let process = spec.process().clone().unwrap_or_default();
    if process.terminal() == Some(true) && opts.console_socket.is_none() {
        return Err(Error::Usage(
            "process.terminal is true but no --console-socket was given".into(),
        ));
    }
    let filter = match linux.seccomp() {
        Some(s) => Some(seccomp::Filter::compile(s).map_err(|e| Error::Init(e.to_string()))?),
        None => None,
    };
    store.claim(&opts.id)?;
    let mut rb = Rollback {
        store,
        id: opts.id.clone(),
        pid: None,
        cgroup_dirs: Vec::new(),
        armed: true,
    };
    let plan = namespaces::plan(&linux)?;
    let own_text = std::fs::read_to_string("/proc/self/cgroup").map_err(os("reading /proc/self/cgroup"))?;
    let own = cgroups::ProcCgroup::parse(&own_text);
    let cg_path = linux.cgroups_path().as_ref().map(|p| p.display().to_string());
    let cg = cgroups::Manager::new(cgroups::Layout::detect()?, cg_path.as_deref(), &opts.id, &own)?;
    let me = std::process::id() as i32;
    let mut intent = Intent {
        creator: me,
        creator_start: state::start_time(me).unwrap_or(0),
        cgroup_paths: cg.paths(),
        ..Intent::default()
    };
    store.save_file(&opts.id, INTENT, &intent)?;
    cg.create()?;
    rb.cgroup_dirs = cgroup_dirs(&cg);
    intent.cgroup_paths = rb.cgroup_dirs.clone();
    store.save_file(&opts.id, INTENT, &intent)?;
    let fifo = store.fifo(&opts.id);
    mkfifo(&fifo)?;
    // In a user namespace the init is "root" only inside it: the fifo must
    // belong to the host ids its root maps to, or it cannot open it.
    if plan.creates(LinuxNamespaceType::User) {
        let host = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
            maps.iter()
                .flatten()
                .find(|m| m.container_id() == 0)
                .map(|m| m.host_id())
        };
        std::os::unix::fs::chown(&fifo, host(linux.uid_mappings()), host(linux.gid_mappings()))
            .map_err(os(format!("chown {}", fifo.display())))?;
    }
    let (parent_sock, child_sock) = seqpacket_pair()?;

    // Namespaces that apply to children must be entered before the clone.
    for j in plan
        .joins
        .iter()
        .filter(|j| matches!(j.typ, LinuxNamespaceType::User | LinuxNamespaceType::Pid))
    {
        namespaces::enter(j)?;
    }
    // CLONE_NEWTIME shares its bit with clone(2)'s exit signal, and the
    // offsets must be written before any process lives in the namespace:
    // so it is unshared here, for the children. A cgroup namespace is made
    // by the init itself once it sits in its cgroup, so that cgroup is the
    // namespace's root.
    if plan.creates(LinuxNamespaceType::Time) {
        enter_new_time_namespace(&linux)?;
    }
    // Connected here, as the runtime: the init may be in a user namespace
    // whose root the supervisor's 0600 socket would refuse.
    let supervisor = match &opts.mediation {
        Some(m) => Some(seccomp::connect_listener(&m.socket).map_err(|e| Error::Init(e.to_string()))?),
        None => None,
    };
    let clone_ns = plan.new_flags & !(namespaces::flag(LinuxNamespaceType::Time) | libc::CLONE_NEWCGROUP);
    let flags = clone_ns as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and a null stack behaves like fork:
    // the child gets a copy of this single-threaded process and continues
    // from here; it only runs `init` and then execs or exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) } as i32;
    if pid < 0 {
        return Err(last_os("clone of the container init"));
    }
    if pid == 0 {
        drop(parent_sock);
        // Not dumpable while runtime code runs in the container's
        // namespaces: no container process may open /proc/PID/exe of it and
        // write to the runtime's binary (CVE-2019-5736). execve of the
        // user's program makes it dumpable again.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        let confinement = Confinement {
            filter: filter.as_ref(),
            supervisor: supervisor.as_ref(),
        };
        let code = match init(&spec, &plan, &bundle, opts, &fifo, &child_sock, confinement) {
            Ok(never) => match never {},
            Err(e) => {
                let msg = e.to_string();
                if send(&child_sock, ERROR, &msg).is_err() {
                    eprintln!("container init: {msg}");
                }
                1
            }
        };
        // SAFETY: _exit ends the cloned child without running the parent's
        // atexit handlers or destructors twice.
        unsafe { libc::_exit(code) };
    }
    drop(child_sock);
    // Only the init holds the supervisor's connection: its end is the
    // supervisor's sign that the container is gone.
    drop(supervisor);
    rb.pid = Some(pid);
    intent.pid = pid;
    intent.pid_start = state::start_time(pid).unwrap_or(0);
    store.save_file(&opts.id, INTENT, &intent)?;
    cg.add_process(pid)?;
    if plan.creates(LinuxNamespaceType::User) {
        namespaces::write_mappings(
            pid,
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )?;
    }
    // The init cannot see its own host pid from inside a pid namespace; the
    // seccomp listener's state wants it.
    send(&parent_sock, GO, &pid.to_string()).map_err(os("signalling the container init"))?;
    let hooks_cfg = spec.hooks().clone().unwrap_or_default();
    loop {
        let (tag, payload) =
            recv(&parent_sock).map_err(|_| Error::Init("exited during setup without saying why".into()))?;
        match tag {
            HOOKS => {
                // Limits go on once the init has made its device nodes (a
                // device cgroup would refuse the mknod), as runc does.
                if let Some(r) = linux.resources() {
                    cg.apply(r)?;
                }
                let st = hook_state(&opts.id, Status::Creating, pid, &bundle, &spec);
                let r = hooks::run_all("prestart", hooks_cfg.prestart().as_deref().unwrap_or_default(), &st).and_then(
                    |_| {
                        hooks::run_all(
                            "createRuntime",
                            hooks_cfg.create_runtime().as_deref().unwrap_or_default(),
                            &st,
                        )
                    },
                );
                match r {
                    Ok(()) => send(&parent_sock, GO, "").map_err(os("signalling the container init"))?,
                    Err(e) => return Err(e.into()),
                }
            }
            READY => break,
            ERROR => return Err(Error::Init(payload)),
            other => return Err(Error::Init(format!("unexpected message {other}"))),
        }
    }
    let record = Record {
        id: opts.id.clone(),
        pid,
        pid_start: state::start_time(pid).ok_or_else(|| Error::Init("exited before it was started".into()))?,
        bundle: bundle.clone(),
        rootfs: rootfs_path(&spec, &bundle),
        created: crate::time::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        cgroup_paths: cgroup_dirs(&cg),
        cgroups_path: cg_path.clone(),
        creator_cgroup: own_text.clone(),
        started: false,
        paused: false,
    };
    store.save(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    rb.armed = false;
    let warnings = filter.map(|f| f.skipped().to_vec()).unwrap_or_default();
    Ok((record, warnings))
}

/// unshare(CLONE_NEWTIME) for the children to come, with the configured
/// offsets (config-linux.md, timeOffsets).
fn enter_new_time_namespace(linux: &oci_spec::runtime::Linux) -> Result<()> {
    // SAFETY: unshare with a flag; affects this process's future children.
    if unsafe { libc::unshare(namespaces::flag(LinuxNamespaceType::Time)) } != 0 {
        return Err(last_os("unshare of a time namespace"));
    }
    let mut text = String::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", &text).map_err(os(format!(
            "linux.timeOffsets: writing {text:?} to /proc/self/timens_offsets"
        )))?;
    }
    Ok(())
}

fn rootfs_path(spec: &Spec, bundle: &Path) -> PathBuf {
    let p = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| "rootfs".into());
    if p.is_absolute() {
        p
    } else {
        bundle.join(p)
    }
}

/// The pid file is written atomically: a reader never sees it half done.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("pid-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(os(format!("writing --pid-file {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(os(format!("writing --pid-file {}", path.display())))
}

enum Never {}

/// The container's init, in the new namespaces: prepares everything, waits
/// for `start` on the fifo, then becomes the user's program.
fn init(
    spec: &Spec,
    plan: &namespaces::Plan,
    bundle: &Path,
    opts: &CreateOptions,
    fifo: &Path,
    sock: &UnixStream,
    confinement: Confinement<'_>,
) -> Result<Never> {
    let Confinement { filter, supervisor } = confinement;
    let (tag, host_pid) = recv(sock).map_err(os("waiting for the runtime"))?;
    if tag != GO {
        return Err(Error::Init("aborted by the runtime".into()));
    }
    let host_pid: i32 = host_pid.parse().unwrap_or(0);
    if plan.creates(LinuxNamespaceType::Cgroup) {
        // SAFETY: unshare with a flag; the init is in its cgroup by now.
        if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
            return Err(last_os("unshare of a cgroup namespace"));
        }
    }
    if plan.creates(LinuxNamespaceType::User) {
        // SAFETY: plain integer syscalls; root is mapped by now.
        unsafe {
            libc::setresgid(0, 0, 0);
            libc::setresuid(0, 0, 0);
        }
    }
    for j in plan
        .joins
        .iter()
        .filter(|j| !matches!(j.typ, LinuxNamespaceType::User | LinuxNamespaceType::Pid))
    {
        namespaces::enter(j)?;
    }
    if plan.creates(LinuxNamespaceType::Network) {
        namespaces::loopback_up()?;
    }
    let process = spec.process().clone().unwrap_or_default();
    let sys = crate::syscall::LinuxSyscall;
    let rootfs = rootfs_path(spec, bundle);
    let cfg = rootfs::RootfsConfig::new(spec, &rootfs, bundle);
    rootfs::prepare(&cfg, &sys).map_err(|e| Error::Init(e.to_string()))?;
    // The console socket is a host path: connect before pivot_root hides it.
    let console = match &opts.console_socket {
        Some(p) if process.terminal() == Some(true) => {
            Some(UnixStream::connect(p).map_err(os(format!("--console-socket {}", p.display())))?)
        }
        _ => None,
    };
    let listener = match spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().clone())
    {
        Some(p) if filter.is_some_and(|f| f.needs_listener()) => Some((
            seccomp::connect_listener(&p).map_err(|e| Error::Init(e.to_string()))?,
            p,
        )),
        _ => None,
    };
    send(sock, HOOKS, "").map_err(os("asking for hooks"))?;
    let (tag, _) = recv(sock).map_err(os("waiting for prestart hooks"))?;
    if tag != GO {
        return Err(Error::Init("aborted by the runtime".into()));
    }
    let hooks_cfg = spec.hooks().clone().unwrap_or_default();
    // SAFETY: getpid has no preconditions.
    let my_pid = unsafe { libc::getpid() };
    let st = hook_state(&opts.id, Status::Creating, my_pid, bundle, spec);
    hooks::run_all(
        "createContainer",
        hooks_cfg.create_container().as_deref().unwrap_or_default(),
        &st,
    )?;
    // Keep the fifo reachable past pivot_root.
    let fifo_fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(fifo)
        .map_err(os(format!("opening {}", fifo.display())))?
        .into();
    rootfs::pivot(&rootfs, opts.no_pivot, &sys).map_err(|e| Error::Init(e.to_string()))?;
    if let Some(sock) = &console {
        let slave = setup_terminal(sock, &process)?;
        rootfs::setup_console(Path::new(&slave), &sys).map_err(|e| Error::Init(e.to_string()))?;
    }
    // runc's behaviour, which clients rely on: a cwd missing from the image
    // is created (before the root may turn read-only).
    if !process.cwd().exists() {
        let _ = std::fs::create_dir_all(process.cwd());
    }
    rootfs::finalize(spec, &sys).map_err(|e| Error::Init(e.to_string()))?;
    process::apply_oom_score_adj(&process).map_err(|e| Error::Init(e.to_string()))?;
    process::apply_rlimits(&process).map_err(|e| Error::Init(e.to_string()))?;
    // A program that cannot be found is a create error, not a start-time
    // surprise (runtime.md: the environment must be created as configured).
    let env = process.env().clone().unwrap_or_default();
    let prog = process
        .args()
        .as_ref()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default();
    let path = process::resolve(&prog, &env).map_err(|e| Error::Init(e.to_string()))?;
    if !path.is_file() {
        return Err(Error::Init(format!(
            "process.args[0]: {prog:?} not found in the container"
        )));
    }
    send(sock, READY, "").map_err(os("reporting ready"))?;
    // Blocks until `start` opens the fifo for reading. The write end stays
    // open (close-on-exec) until the program runs: `start` sees end of file
    // once it did, or the reason if the init failed first.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", fifo_fd.as_raw_fd()))
        .map_err(os("waiting for start on exec.fifo"))?;
    drop(fifo_fd);
    let _ = f.write_all(&[0]);
    let r = exec_program(
        spec,
        opts,
        bundle,
        &process,
        filter,
        Agents {
            listener: listener.as_ref(),
            supervisor,
        },
        (my_pid, host_pid),
    );
    if let Err(e) = &r {
        let _ = f.write_all(e.to_string().as_bytes());
    }
    r
}

/// The init's seccomp filter and its connection to a supervisor, if any.
struct Confinement<'a> {
    filter: Option<&'a seccomp::Filter>,
    supervisor: Option<&'a UnixStream>,
}

/// Where the init's notify listeners go: the config's seccomp agent
/// (`listenerPath`, connected) and a sandboxing runtime's supervisor.
struct Agents<'a> {
    listener: Option<&'a (UnixStream, PathBuf)>,
    supervisor: Option<&'a UnixStream>,
}

/// After start: startContainer hooks, the process's identity, seccomp, and
/// the execve that ends the init's own code.
fn exec_program(
    spec: &Spec,
    opts: &CreateOptions,
    bundle: &Path,
    process: &oci_spec::runtime::Process,
    filter: Option<&seccomp::Filter>,
    agents: Agents<'_>,
    (my_pid, host_pid): (i32, i32),
) -> Result<Never> {
    let Agents { listener, supervisor } = agents;
    let hooks_cfg = spec.hooks().clone().unwrap_or_default();
    let st = hook_state(&opts.id, Status::Created, my_pid, bundle, spec);
    hooks::run_all(
        "startContainer",
        hooks_cfg.start_container().as_deref().unwrap_or_default(),
        &st,
    )?;
    become_process(process, filter, &mut |fd| {
        let Some((stream, path)) = listener else {
            return Ok(());
        };
        let meta = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_metadata().clone());
        // config-linux.md: the pid as the runtime sees it.
        let st = hook_state(&opts.id, Status::Created, host_pid, bundle, spec);
        seccomp::send_on(stream, path, &st, meta.as_deref(), host_pid, &fd).map_err(|e| Error::Init(e.to_string()))
    })?;
    close_fds_from(3 + opts.preserve_fds as i32);
    if let (Some(m), Some(stream)) = (&opts.mediation, supervisor) {
        // The process may have no capabilities left: the kernel then takes
        // a filter only under no_new_privs, which a sandbox wants anyway.
        // SAFETY: prctl with integer arguments; no memory is involved.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(last_os("prctl(PR_SET_NO_NEW_PRIVS) for the mediation filter"));
        }
        // From here on the mediated calls wait for the supervisor, which
        // gets the listener right away; execve is the first of them.
        let fd = m
            .filter
            .install()
            .map_err(|e| Error::Init(e.to_string()))?
            .ok_or_else(|| Error::Init("the mediation filter notifies nothing: it has no listener".into()))?;
        let st = hook_state(&opts.id, Status::Created, host_pid, bundle, spec);
        seccomp::send_on(stream, &m.socket, &st, None, host_pid, &fd).map_err(|e| Error::Init(e.to_string()))?;
    }
    Err(Error::Init(process::exec(process).to_string()))
}

use std::os::unix::fs::OpenOptionsExt;

/// Marks every fd from `first` close-on-exec, so nothing of the runtime's
/// leaks into the container (runtime-linux.md: only stdio and preserved fds).
fn close_fds_from(first: i32) {
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .filter(|&fd| fd >= first)
            .collect();
        for fd in fds {
            // SAFETY: setting FD_CLOEXEC on an fd number only changes its
            // flags; an fd that is already closed yields EBADF, ignored.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// A new pty in the container's devpts: the master goes to the console
/// socket, the slave becomes stdio and the controlling terminal.
fn setup_terminal(sock: &UnixStream, process: &oci_spec::runtime::Process) -> Result<String> {
    // SAFETY: opening /dev/ptmx with a static NUL-terminated path.
    let master = unsafe { libc::open(c"/dev/ptmx".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(last_os("opening /dev/ptmx"));
    }
    // SAFETY: `master` was just opened and is owned here alone.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int that lives across the call.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty number into `n`.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(last_os("getting the pty number"));
    }
    let slave_path = format!("/dev/pts/{n}");
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    use std::os::fd::AsFd;
    crate::unix::send_fd(sock, b"/dev/ptmx", master.as_fd()).map_err(os("sending the pty to --console-socket"))?;
    // SAFETY: setsid has no preconditions; failing (already a leader) is fine.
    unsafe { libc::setsid() };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .map_err(os(format!("opening {slave_path}")))?;
    let sfd = slave.as_raw_fd();
    // SAFETY: TIOCSCTTY on the slave we opened; dup2 onto 0-2 replaces
    // stdio with the terminal, which is the point.
    unsafe {
        libc::ioctl(sfd, libc::TIOCSCTTY, 0);
        libc::dup2(sfd, 0);
        libc::dup2(sfd, 1);
        libc::dup2(sfd, 2);
    }
    Ok(slave_path)
}

/// `start`: lets the init exec the program, then runs poststart hooks.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let mut r = store.load(id)?;
    let status = store.status(&r);
    if !status.can_start() {
        return Err(state::Error::Illegal {
            id: id.into(),
            status,
            op: "start",
        }
        .into());
    }
    let fifo = store.fifo(id);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(os(format!("opening {}", fifo.display())))?;
    // The init has the fifo open for writing (it is blocked in open), so
    // the byte arrives; wait for it briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(1) => break,
            Ok(_) | Err(_) if Instant::now() < deadline && state::start_time(r.pid).is_some() => {
                std::thread::sleep(Duration::from_micros(200))
            }
            // Between that read and the liveness check the init may have
            // taken the signal, run a short program and exited: its byte is
            // then waiting in the fifo.
            _ if matches!(f.read(&mut b), Ok(1)) => break,
            _ => return Err(Error::Init("did not take the start signal".into())),
        }
    }
    // Then end of file: the program was executed (the write end is
    // close-on-exec), unless the init wrote why it could not get there.
    let mut why = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => why.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(100))
            }
            Err(_) => break,
        }
    }
    let _ = std::fs::remove_file(&fifo);
    r.started = true;
    if !why.is_empty() {
        store.save(&r)?;
        return Err(Error::Init(String::from_utf8_lossy(&why).into_owned()));
    }
    store.save(&r)?;
    let spec = config::load(&r.bundle).ok();
    if let Some(spec) = spec {
        let st = hook_state(id, Status::Running, r.pid, &r.bundle, &spec);
        let hooks_cfg = spec.hooks().clone().unwrap_or_default();
        if let Err(e) = hooks::run_all("poststart", hooks_cfg.poststart().as_deref().unwrap_or_default(), &st) {
            // runtime.md: a failing poststart hook stops the container.
            // SAFETY: signals the container's init.
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
            return Err(e.into());
        }
    }
    Ok(())
}

/// Signal numbers from `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::Usage(format!("signal {s:?} is out of range")));
    }
    let name = s.strip_prefix("SIG").unwrap_or(s).to_ascii_uppercase();
    let table: &[(&str, i32)] = &[
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("CHLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("PWR", libc::SIGPWR),
        ("SYS", libc::SIGSYS),
    ];
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::Usage(format!("unknown signal {s:?}")))
}

/// `kill`: the signal goes to the init (or, with `all`, every process of
/// the container's cgroup).
pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let r = store.load(id)?;
    let status = store.status(&r);
    if !status.can_kill() {
        return Err(state::Error::Illegal {
            id: id.into(),
            status,
            op: "kill",
        }
        .into());
    }
    if all {
        for pid in pids_in(&r.cgroup_paths) {
            // SAFETY: plain kill(2) on a pid of the container's cgroup.
            unsafe { libc::kill(pid, sig) };
        }
        return Ok(());
    }
    // SAFETY: plain kill(2) on the container's init.
    if unsafe { libc::kill(r.pid, sig) } != 0 {
        return Err(last_os(format!("kill {} {signal}", r.pid)));
    }
    Ok(())
}

/// `delete`: removes a stopped container (or, forced, any), runs poststop
/// hooks (failures are warnings), removes the cgroups.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<Vec<String>> {
    let r = store.load(id)?;
    let status = store.status(&r);
    if !status.can_delete() {
        if !force {
            return Err(state::Error::Illegal {
                id: id.into(),
                status,
                op: "delete",
            }
            .into());
        }
        for pid in pids_in(&r.cgroup_paths).into_iter().chain([r.pid]) {
            // SAFETY: plain kill(2) on the container's processes.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while state::start_time(r.pid) == Some(r.pid_start) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut warnings = Vec::new();
    if let Ok(spec) = config::load(&r.bundle) {
        let st = hook_state(id, Status::Stopped, r.pid, &r.bundle, &spec);
        let hooks_cfg = spec.hooks().clone().unwrap_or_default();
        for e in hooks::run_all_warn("poststop", hooks_cfg.poststop().as_deref().unwrap_or_default(), &st) {
            warnings.push(e.to_string());
        }
    }
    remove_dirs(&r.cgroup_paths);
    store.remove(id)?;
    Ok(warnings)
}

/// The container's cgroup directories and the ancestors `create` made.
fn cgroup_dirs(cg: &cgroups::Manager) -> Vec<PathBuf> {
    let mut dirs = cg.paths();
    dirs.extend(cg.created().unwrap_or_default());
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every pid listed in the container's cgroup directories.
fn pids_in(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>())
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

/// Removes cgroup directories deepest first; a killed task keeps its
/// cgroup busy until reaped, so EBUSY is retried briefly.
fn remove_dirs(dirs: &[PathBuf]) {
    let mut dirs = dirs.to_vec();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let deadline = Instant::now() + Duration::from_secs(2);
        while d.exists() && std::fs::remove_dir(&d).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("usr1").unwrap(), 10);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("99").unwrap_err().to_string().contains("99"));
        assert!(parse_signal("NOPE").unwrap_err().to_string().contains("NOPE"));
    }

    #[test]
    fn timestamps() {
        let t = crate::time::now_rfc3339();
        assert!(t.ends_with('Z') && t.len() == 30, "{t}");
    }
}

/// What `exec` runs in a running container.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    /// The process to run (from `--process`, or the container's own with
    /// the command line's overrides).
    pub process: oci_spec::runtime::Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// The container's process config, the base `exec` overrides (runc does the
/// same: env, capabilities, rlimits and the rest carry over).
pub fn container_process(store: &Store, id: &str) -> Result<oci_spec::runtime::Process> {
    let r = store.load(id)?;
    let spec = config::load(&r.bundle)?;
    Ok(spec.process().clone().unwrap_or_default())
}

/// The namespaces of `pid` that differ from ours, user first and mount
/// last, as setns wants them.
fn namespaces_of(pid: i32) -> Result<Vec<(libc::c_int, OwnedFd)>> {
    use std::os::unix::fs::MetadataExt;
    let order = [
        ("user", libc::CLONE_NEWUSER),
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("net", libc::CLONE_NEWNET),
        ("pid", libc::CLONE_NEWPID),
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("time", namespaces::flag(LinuxNamespaceType::Time)),
        ("mnt", libc::CLONE_NEWNS),
    ];
    let mut out = Vec::new();
    for (name, flag) in order {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let (Ok(a), Ok(b)) = (
            std::fs::metadata(&theirs),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) else {
            continue;
        };
        if a.ino() == b.ino() {
            continue;
        }
        let f = std::fs::File::open(&theirs).map_err(os(format!("opening {theirs}")))?;
        out.push((flag, OwnedFd::from(f)));
    }
    Ok(out)
}

/// `exec`: a new process in a running container's namespaces and cgroups.
/// Returns the process's exit code, or 0 once it runs when detached.
pub fn exec(store: &Store, opts: &ExecOptions) -> Result<i32> {
    let r = store.load(&opts.id)?;
    let status = store.status(&r);
    if !status.can_exec() {
        return Err(state::Error::Illegal {
            id: opts.id.clone(),
            status,
            op: "exec",
        }
        .into());
    }
    let spec = config::load(&r.bundle)?;
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::Filter::compile(s).map_err(|e| Error::Init(e.to_string()))?),
        None => None,
    };
    let nss = namespaces_of(r.pid)?;
    let console = match &opts.console_socket {
        Some(p) if opts.process.terminal() == Some(true) => {
            Some(UnixStream::connect(p).map_err(os(format!("--console-socket {}", p.display())))?)
        }
        _ => None,
    };
    // The exec'd process is a grandchild (a pid namespace takes effect for
    // children only); as subreaper the runtime can still wait for it.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (parent_sock, child_sock) = seqpacket_pair()?;
    // SAFETY: fork of this single-threaded process; the child only runs
    // `exec_child` and then execs or exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(last_os("fork for exec"));
    }
    if child == 0 {
        drop(parent_sock);
        // See create: no /proc/PID/exe access to the runtime from inside.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        let e = exec_child(&nss, &child_sock, opts, console.as_ref(), filter.as_ref());
        let _ = send(&child_sock, ERROR, &e.to_string());
        // SAFETY: ends the forked child without the parent's destructors.
        unsafe { libc::_exit(1) };
    }
    drop(child_sock);
    let mut st = 0;
    let (tag, payload) = recv(&parent_sock).map_err(|_| Error::Init("exec: the process exited during setup".into()))?;
    let pid = match tag {
        READY => payload
            .parse::<i32>()
            .map_err(|_| Error::Init("exec: bad pid".into()))?,
        ERROR => {
            // SAFETY: reaps the intermediate child.
            unsafe { libc::waitpid(child, &mut st, 0) };
            return Err(Error::Init(payload));
        }
        other => return Err(Error::Init(format!("exec: unexpected message {other}"))),
    };
    // SAFETY: reaps the intermediate child, which exits after the fork.
    unsafe { libc::waitpid(child, &mut st, 0) };
    for d in &r.cgroup_paths {
        let procs = d.join("cgroup.procs");
        if procs.exists() {
            let _ = std::fs::write(&procs, pid.to_string());
        }
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    send(&parent_sock, GO, "").map_err(os("starting the exec'd process"))?;
    // End of file on the socket: the program was executed (close-on-exec),
    // unless an error came first.
    if let Ok((ERROR, why)) = recv(&parent_sock) {
        // SAFETY: reaps the failed process (our child since we are subreaper).
        unsafe { libc::waitpid(pid, &mut st, 0) };
        return Err(Error::Init(why));
    }
    if opts.detach {
        return Ok(0);
    }
    // SAFETY: waits for the exec'd process, re-parented to us.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    Ok(if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        1
    })
}

/// The intermediate child: joins the namespaces, forks the process that
/// will exec, reports its pid. Returns only on failure.
fn exec_child(
    nss: &[(libc::c_int, OwnedFd)],
    sock: &UnixStream,
    opts: &ExecOptions,
    console: Option<&UnixStream>,
    filter: Option<&seccomp::Filter>,
) -> Error {
    for (flag, fd) in nss {
        // SAFETY: setns with an fd we own and its namespace flag.
        if unsafe { libc::setns(fd.as_raw_fd(), *flag) } != 0 {
            return last_os(format!("joining namespace {flag:#x}"));
        }
    }
    // SAFETY: fork of a single-threaded child; the grandchild execs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return last_os("fork for exec");
    }
    if pid > 0 {
        let _ = send(sock, READY, &pid.to_string());
        // SAFETY: the intermediate child's work is done.
        unsafe { libc::_exit(0) };
    }
    match recv(sock) {
        Ok((GO, _)) => {}
        _ => return Error::Init("exec: aborted by the runtime".into()),
    }
    let p = &opts.process;
    if let Some(c) = console {
        if let Err(e) = setup_terminal(c, p) {
            return e;
        }
    }
    let run = || -> Result<Never> {
        process::apply_rlimits(p).map_err(|e| Error::Init(e.to_string()))?;
        // An exec'd process gets the filter, not the listener: the agent
        // already holds the container's notify fd.
        become_process(p, filter, &mut |_| Ok(()))?;
        close_fds_from(3 + opts.preserve_fds as i32);
        Err(Error::Init(process::exec(p).to_string()))
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// The process's identity and confinement. Without no_new_privs, loading a
/// seccomp filter needs CAP_SYS_ADMIN, so it goes first, while the runtime
/// still holds it (runc's order; the profile then sees the last setup
/// calls). With no_new_privs it goes last, so it filters as little runtime
/// code as possible. `on_listener` gets the notify fd, if any.
fn become_process(
    p: &oci_spec::runtime::Process,
    filter: Option<&seccomp::Filter>,
    on_listener: &mut dyn FnMut(OwnedFd) -> Result<()>,
) -> Result<()> {
    let mut install = || -> Result<()> {
        if let Some(f) = filter {
            if let Some(fd) = f.install().map_err(|e| Error::Init(e.to_string()))? {
                on_listener(fd)?;
            }
        }
        Ok(())
    };
    let nnp = p.no_new_privileges() == Some(true);
    if !nnp {
        install()?;
    }
    let caps = process::cap_sets(p);
    let fail = |e: process::Error| Error::Init(e.to_string());
    process::drop_bounding(&caps).map_err(fail)?;
    process::set_user(p).map_err(fail)?;
    process::set_caps(&caps).map_err(fail)?;
    process::set_no_new_privs(p).map_err(fail)?;
    process::set_umask(p);
    std::env::set_current_dir(p.cwd()).map_err(os(format!("process.cwd {}", p.cwd().display())))?;
    if nnp {
        install()?;
    }
    Ok(())
}

/// The freezer control of a container's cgroups: v1 `freezer.state`, else
/// v2 `cgroup.freeze`.
fn freezer(r: &Record) -> Option<(PathBuf, &'static str, &'static str)> {
    for d in &r.cgroup_paths {
        if d.join("freezer.state").exists() {
            return Some((d.join("freezer.state"), "FROZEN", "THAWED"));
        }
    }
    r.cgroup_paths
        .iter()
        .map(|d| d.join("cgroup.freeze"))
        .find(|p| p.exists())
        .map(|p| (p, "1", "0"))
}

/// `pause` (freeze) and `resume` (thaw) through the cgroup freezer.
pub fn set_paused(store: &Store, id: &str, pause: bool) -> Result<()> {
    let mut r = store.load(id)?;
    let status = store.status(&r);
    let (ok, op) = if pause {
        (status.can_pause(), "pause")
    } else {
        (status.can_resume(), "resume")
    };
    if !ok {
        return Err(state::Error::Illegal {
            id: id.into(),
            status,
            op,
        }
        .into());
    }
    let (file, frozen, thawed) =
        freezer(&r).ok_or_else(|| Error::Usage(format!("container {id:?} has no freezer cgroup")))?;
    let value = if pause { frozen } else { thawed };
    std::fs::write(&file, value).map_err(os(format!("writing {value} to {}", file.display())))?;
    r.paused = pause;
    store.save(&r)?;
    Ok(())
}

/// `ps`: the host pids of the container's processes.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let r = store.load(id)?;
    Ok(pids_in(&r.cgroup_paths))
}

/// `update`: new resource limits for a created, running or paused
/// container, applied to the cgroups `create` resolved.
pub fn update(store: &Store, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let r = store.load(id)?;
    let status = store.status(&r);
    if status == Status::Stopped {
        return Err(state::Error::Illegal {
            id: id.into(),
            status,
            op: "update",
        }
        .into());
    }
    let own = cgroups::ProcCgroup::parse(&r.creator_cgroup);
    let cg = cgroups::Manager::new(cgroups::Layout::detect()?, r.cgroups_path.as_deref(), id, &own)?;
    cg.apply(resources)?;
    Ok(())
}
