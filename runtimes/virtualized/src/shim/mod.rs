//! The per-container host process that owns the VM: started by `create`, it
//! boots QEMU, relays the container's stdio, serves the command line's
//! requests and, when the container's process ends, ends with its status.
//!
//! Its pid is the container's pid in `state`: it is the host process that
//! stands for the container (as conmon and containerd's shim expect of a
//! runc pid). Until `create` commits (writes "commit" on the sync socket
//! passed as fd 3), a `create` that goes away takes everything with it: the
//! VM, the sockets and the state directory.

pub mod control;
pub mod hooks;
pub mod member;
pub mod pty;
pub mod sizing;
pub mod state;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::Parser;
use container::state::Status;
use serde::{Deserialize, Serialize};

use crate::proto::{self, Event, ExitStatus, Frame, Kind, Request};
use crate::vm::{self, Vm, VmConfig};
use state::{Record, Store};

/// The fd on which `create` passes the sync socket.
pub const SYNC_FD: i32 = 3;

/// What `create` writes back once the state and pid file are in place.
pub const COMMIT: &str = "commit";

/// How long one request to the agent may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the end waits for a request in flight to be answered.
pub(crate) const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);

/// What the shim tells `create` on the sync socket: one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "sync", rename_all = "snake_case")]
pub enum Sync {
    Created { pid: i32 },
    Error { message: String },
}

#[derive(Parser)]
#[command(
    name = "virtualized shim",
    about = "the host process of one container's VM (started by create)"
)]
pub struct Args {
    #[arg(long)]
    pub root: PathBuf,
    #[arg(long)]
    pub id: String,
    /// The bundle, absolute.
    #[arg(long)]
    pub bundle: PathBuf,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// A further container of this pod: its VM is the one that runs the
    /// pod's first container (whose id this is), and this shim asks that
    /// one's shim to add it there.
    #[arg(long)]
    pub sandbox: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] container::config::Error),
    #[error(transparent)]
    Vm(#[from] vm::Error),
    #[error(transparent)]
    Proto(#[from] proto::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error("{what}: {source}")]
    Os { what: String, source: io::Error },
    #[error("agent: {0}")]
    Agent(String),
    #[error(transparent)]
    Hook(#[from] container::hooks::Error),
    #[error("create went away before it committed the container")]
    Abandoned,
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn os(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Os { what, source }
}

/// Set when `create` went away (or a terminating signal came) before the
/// commit: every stage checks it, and QEMU has been killed.
static ABORT: AtomicBool = AtomicBool::new(false);
/// Set once `create` committed: signals are the container's from then on.
static COMMITTED: AtomicBool = AtomicBool::new(false);
/// The write end of the signal self-pipe.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Signals the shim passes on to the container's process.
const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
    libc::SIGALRM,
];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::SeqCst);
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; `b` lives across the call. The
    // errno it may change is saved and restored around it.
    unsafe {
        let saved = *libc::__errno_location();
        libc::write(fd, (&b as *const u8).cast(), 1);
        *libc::__errno_location() = saved;
    }
}

/// Handlers, not a blocked mask: a mask would be inherited by QEMU, a
/// handler is reset by its exec.
fn install_signals() -> Result<File> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::Os {
            what: "signal pipe".into(),
            source: io::Error::last_os_error(),
        });
    }
    SIGNAL_PIPE.store(fds[1], Ordering::SeqCst);
    for &sig in FORWARDED {
        // SAFETY: sigaction is plain data; the handler only writes to a pipe
        // (async-signal-safe) and lives for the program; SA_RESTART keeps
        // the other threads' blocking reads going.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int) = on_signal;
            sa.sa_sigaction = handler as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    // A reader gone from stdout must not kill the shim (and the container's
    // status with it).
    // SAFETY: setting a disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: fds[0] was just made by pipe2 and is owned here alone.
    Ok(unsafe { File::from_raw_fd(fds[0]) })
}

/// SIGKILLs the shim's children (QEMU): `create` went away.
fn kill_children() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for pid in text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill(2) with a pid of our own child; no memory involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn abort() {
    if !COMMITTED.load(Ordering::SeqCst) {
        ABORT.store(true, Ordering::SeqCst);
        kill_children();
    }
}

pub(crate) fn check_abort() -> Result<()> {
    if ABORT.load(Ordering::SeqCst) {
        return Err(Error::Abandoned);
    }
    Ok(())
}

/// Reads `create`'s answer; its end closing first is the sign to give up.
fn watch_create(sync: UnixStream, store: Store, id: String) -> mpsc::Receiver<bool> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let ok = BufReader::new(sync).read_line(&mut line).is_ok() && line.trim_end() == COMMIT;
        if ok {
            COMMITTED.store(true, Ordering::SeqCst);
            let _ = tx.send(true);
            return;
        }
        abort();
        let _ = tx.send(false);
        // The main thread tears down once its current stage returns (QEMU
        // is dead, so it cannot wait long); should it not, this does.
        std::thread::sleep(Duration::from_secs(20));
        kill_children();
        let _ = store.remove(&id);
        // SAFETY: _exit ends the process without running destructors that
        // other threads may be using.
        unsafe { libc::_exit(1) };
    });
    rx
}

/// The shim's entry point (`virtualized shim ARGS`, fd 3 the sync socket).
pub fn main(args: &[String]) -> ! {
    let a = Args::parse_from(std::iter::once("virtualized shim".to_string()).chain(args.iter().cloned()));
    // Its own session: the signals and hangups of create's process group
    // (a timeout kills that whole group) are not the container's.
    // SAFETY: setsid has no preconditions; failing (already a leader) is fine.
    unsafe { libc::setsid() };
    // SAFETY: fd 3 is the sync socket `create` passed; nothing else in this
    // process owns it.
    let sync = unsafe { UnixStream::from_raw_fd(SYNC_FD) };
    // SAFETY: F_SETFD on an fd we own; QEMU must not inherit it.
    unsafe { libc::fcntl(SYNC_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let store = Store::new(&a.root);
    let signals = match install_signals() {
        Ok(s) => s,
        Err(e) => fail(&a, &store, &sync, None, e),
    };
    let watch = match sync.try_clone() {
        Ok(s) => watch_create(s, store.clone(), a.id.clone()),
        Err(e) => fail(&a, &store, &sync, None, os("sync socket")(e)),
    };
    let signal_target: Arc<OnceLock<SignalTarget>> = Arc::new(OnceLock::new());
    spawn_signal_relay(signals, signal_target.clone());
    if let Some(sandbox) = a.sandbox.clone() {
        match member::prepare(&a, &sandbox, &store, &sync, &watch) {
            Ok(p) => {
                drop(sync);
                member::supervise(&a, &store, p, &signal_target)
            }
            Err(e) => fail(&a, &store, &sync, None, e),
        }
    }
    let mut vm = None;
    match prepare(&a, &store, &sync, &watch, &mut vm) {
        Ok(p) => {
            drop(sync);
            let vm = vm.expect("prepare booted the VM");
            supervise(&a, &store, vm, p, &signal_target)
        }
        Err(e) => fail(&a, &store, &sync, vm, e),
    }
}

/// Reports `e` to `create` (unless it is gone), undoes everything, exits.
pub(crate) fn fail(a: &Args, store: &Store, sync: &UnixStream, vm: Option<Vm>, e: Error) -> ! {
    if let Some(mut vm) = vm {
        vm.kill();
    }
    let _ = store.remove(&a.id);
    if !matches!(e, Error::Abandoned) {
        let msg = Sync::Error { message: e.to_string() };
        if let Ok(mut line) = serde_json::to_vec(&msg) {
            line.push(b'\n');
            let _ = (&*sync).write_all(&line);
        }
    }
    std::process::exit(1)
}

/// What `prepare` hands to `supervise`.
struct Prepared {
    listener: UnixListener,
    /// The pty slave, with a terminal.
    tty: Option<File>,
    record: Record,
}

fn prepare(
    a: &Args,
    store: &Store,
    sync: &UnixStream,
    watch: &mpsc::Receiver<bool>,
    vm_slot: &mut Option<Vm>,
) -> Result<Prepared> {
    let spec = container::config::load(&a.bundle)?;
    let (memory_mib, cpus) = sizing::size(&spec, sizing::host_cpus());
    let process = spec.process().clone().unwrap_or_default();
    let (terminal, size) = terminal_of(&process);
    let vm_dir = store.vm_dir(&a.id);
    std::fs::create_dir_all(&vm_dir).map_err(os(format!("vm directory {}", vm_dir.display())))?;
    check_abort()?;
    let cfg = VmConfig {
        id: a.id.clone(),
        dir: vm_dir,
        bundle: a.bundle.clone(),
        memory_mib,
        cpus,
        kernel: None,
        accel: vm::Accel::Auto,
    };
    let booted = Vm::boot(&cfg);
    check_abort()?;
    let vm = vm_slot.insert(booted?);
    let tty = host_terminal(a, terminal, size)?;
    let mut record = new_record(a, &spec);
    record.qemu_pid = vm.qemu_pid();
    record.qemu_start = container::state::start_time(vm.qemu_pid()).unwrap_or(0);
    record.boot = serde_json::to_value(vm.boot_times()).unwrap_or_default();
    // The runtime environment is the VM, up; the container is not made yet
    // (runtime.md, Lifecycle, steps 2-4). The guest's config does not hold
    // these kinds, so they run once.
    let spec_hooks = spec.hooks().clone().unwrap_or_default();
    hooks::create(&spec_hooks, &record.oci_as(Status::Creating))?;
    check_abort()?;
    let mut chan = vm.channel().try_clone().map_err(os("agent channel"))?;
    let req = Request::Create {
        id: a.id.clone(),
        terminal,
        size,
        stream: proto::INIT_STREAM,
        sandbox: None,
    };
    proto::write_message(&mut chan, &req)?;
    let out = Output::new(tty.as_ref());
    let created = loop {
        let frame = proto::read_frame(&mut chan);
        check_abort()?;
        match frame? {
            Some(Frame::Control(p)) => match proto::decode::<Event>(&p)? {
                Event::Created { pid } => break pid,
                Event::Error { message } => return Err(Error::Agent(message)),
                Event::Ready(_) => {}
                other => return Err(Error::Agent(format!("unexpected answer to create: {other:?}"))),
            },
            Some(Frame::Data { kind, stream, bytes }) if stream == proto::INIT_STREAM => out.write(kind, &bytes),
            Some(Frame::Data { .. }) => {}
            None => return Err(Error::Agent("the channel closed during create".into())),
        }
    };
    let (dir_fd, short) = control::short_path(&store.dir(&a.id)).map_err(os("state directory"))?;
    let listener = UnixListener::bind(&short).map_err(os(format!("binding {}", store.socket(&a.id).display())))?;
    drop(dir_fd);
    record.created = container::time::now_rfc3339();
    record.status = Status::Created;
    store.save(&record)?;
    let _ = created;
    let mut line = serde_json::to_vec(&Sync::Created { pid: record.pid }).unwrap_or_default();
    line.push(b'\n');
    (&*sync).write_all(&line).map_err(os("telling create"))?;
    match watch.recv() {
        Ok(true) => Ok(Prepared { listener, tty, record }),
        _ => Err(Error::Abandoned),
    }
}

/// Whether the process wants a terminal, and its initial size (rows,
/// columns).
pub(crate) fn terminal_of(process: &oci_spec::runtime::Process) -> (bool, Option<(u16, u16)>) {
    let size = process
        .console_size()
        .as_ref()
        .map(|s| (s.height() as u16, s.width() as u16));
    (process.terminal() == Some(true), size)
}

/// With a terminal and a console socket: a host pty whose master goes to
/// the socket; the slave is the container's side.
pub(crate) fn host_terminal(a: &Args, terminal: bool, size: Option<(u16, u16)>) -> Result<Option<File>> {
    match (terminal, &a.console_socket) {
        (true, Some(sock)) => {
            let (master, slave) = pty::open(size).map_err(os("host pty"))?;
            pty::send_master(sock, &master).map_err(os("console"))?;
            Ok(Some(slave))
        }
        _ => Ok(None),
    }
}

/// The record of a container this shim is creating: its pid is the
/// shim's; no VM, boot or sandbox yet.
pub(crate) fn new_record(a: &Args, spec: &oci_spec::runtime::Spec) -> Record {
    let me = std::process::id() as i32;
    let rootfs = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
    Record {
        id: a.id.clone(),
        pid: me,
        pid_start: container::state::start_time(me).unwrap_or(0),
        qemu_pid: 0,
        qemu_start: 0,
        bundle: a.bundle.clone(),
        rootfs: if rootfs.is_absolute() {
            rootfs
        } else {
            a.bundle.join(rootfs)
        },
        created: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        status: Status::Creating,
        exit: None,
        boot: serde_json::Value::Null,
        sandbox: None,
    }
}

/// Where stream 0's output goes: the terminal, or fds 1 and 2.
pub(crate) struct Output {
    out: ManuallyDrop<File>,
    err: ManuallyDrop<File>,
}

impl Output {
    pub(crate) fn new(tty: Option<&File>) -> Output {
        let (o, e) = match tty {
            Some(t) => (t.as_raw_fd(), t.as_raw_fd()),
            None => (1, 2),
        };
        // SAFETY: fds 1 and 2 (or the tty, which outlives the relay) stay
        // open for the life of the shim; ManuallyDrop never closes them.
        unsafe {
            Output {
                out: ManuallyDrop::new(File::from_raw_fd(o)),
                err: ManuallyDrop::new(File::from_raw_fd(e)),
            }
        }
    }

    fn write(&self, kind: Kind, bytes: &[u8]) {
        let mut f: &File = if kind == Kind::Stderr { &self.err } else { &self.out };
        // A reader that went away loses the output, not the container.
        let _ = f.write_all(bytes);
    }
}

/// An exec's (or a further container's) host end: the caller's stdio.
struct ExecIo {
    stdout: File,
    stderr: File,
    done: mpsc::Sender<ExitStatus>,
}

/// What the relay threads share once the container is committed.
struct Shared {
    store: Store,
    writer: Mutex<UnixStream>,
    /// Replies to requests; holding the lock is holding the one request in
    /// flight (every request gets exactly one reply, in order).
    replies: Mutex<mpsc::Receiver<Event>>,
    record: Mutex<Record>,
    execs: Mutex<HashMap<u32, ExecIo>>,
    next_stream: AtomicU32,
}

impl Shared {
    fn request(&self, req: &Request) -> std::result::Result<Event, String> {
        let rx = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            proto::write_message(&mut *w, req).map_err(|e| e.to_string())?;
        }
        rx.recv_timeout(REQUEST_TIMEOUT).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!("the agent did not answer within {REQUEST_TIMEOUT:?}"),
            mpsc::RecvTimeoutError::Disconnected => "the VM is gone".to_string(),
        })
    }

    /// Sends a further container's bundle (packed for its place in the
    /// guest) and waits for the agent's reply, as one request.
    fn send_member(&self, id: &str, archive: &[u8]) -> std::result::Result<Event, String> {
        let rx = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let req = Request::Member { id: id.to_string() };
            proto::write_message(&mut *w, &req).map_err(|e| e.to_string())?;
            proto::write_data(&mut *w, Kind::Stdin, proto::BUNDLE_STREAM, archive).map_err(|e| e.to_string())?;
            proto::write_data(&mut *w, Kind::Stdin, proto::BUNDLE_STREAM, &[]).map_err(|e| e.to_string())?;
        }
        rx.recv_timeout(REQUEST_TIMEOUT).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!("the agent did not answer within {REQUEST_TIMEOUT:?}"),
            mpsc::RecvTimeoutError::Disconnected => "the VM is gone".to_string(),
        })
    }

    fn send_data(&self, stream: u32, bytes: &[u8]) -> proto::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        proto::write_data(&mut *w, Kind::Stdin, stream, bytes)
    }
}

/// How the container's time in the VM ended.
enum Outcome {
    Exited(ExitStatus),
    Lost(String),
}

fn supervise(a: &Args, store: &Store, mut vm: Vm, p: Prepared, signal_target: &OnceLock<SignalTarget>) -> ! {
    let fatal = |what: &str, e: io::Error| -> ! {
        eprintln!("virtualized shim: {}: {what}: {e}", a.id);
        std::process::exit(1)
    };
    let reader = vm.channel().try_clone().unwrap_or_else(|e| fatal("agent channel", e));
    let writer = vm.channel().try_clone().unwrap_or_else(|e| fatal("agent channel", e));
    let (reply_tx, reply_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        store: store.clone(),
        writer: Mutex::new(writer),
        replies: Mutex::new(reply_rx),
        record: Mutex::new(p.record),
        execs: Mutex::new(HashMap::new()),
        next_stream: AtomicU32::new(1),
    });
    {
        let shared = shared.clone();
        let _ = signal_target.set(Box::new(move |signal| {
            let _ = shared.request(&Request::Kill {
                signal,
                all: false,
                container: None,
            });
        }));
    }
    let (outcome_tx, outcome_rx) = mpsc::channel();
    let out = Output::new(p.tty.as_ref());
    {
        let shared = shared.clone();
        std::thread::spawn(move || relay_from_guest(reader, out, &shared, reply_tx, outcome_tx));
    }
    let stdin: File = match &p.tty {
        Some(t) => t.try_clone().unwrap_or_else(|e| fatal("pty", e)),
        // SAFETY: fd 0 is the container's stdin, inherited from create and
        // used by this relay alone.
        None => unsafe { File::from_raw_fd(0) },
    };
    {
        let shared = shared.clone();
        std::thread::spawn(move || relay_to_guest(stdin, proto::INIT_STREAM, &shared));
    }
    {
        let shared = shared.clone();
        std::thread::spawn(move || {
            for conn in p.listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
    }
    let outcome = outcome_rx
        .recv()
        .unwrap_or_else(|_| Outcome::Lost("the relay stopped".into()));
    let status = match outcome {
        Outcome::Exited(s) => s,
        Outcome::Lost(reason) => {
            eprintln!("virtualized shim: {}: lost the VM: {reason}", a.id);
            ExitStatus::Signal(libc::SIGKILL)
        }
    };
    {
        let mut r = shared.record.lock().unwrap_or_else(|p| p.into_inner());
        r.status = Status::Stopped;
        r.exit = Some(status);
        let _ = store.save(&r);
    }
    // A request in flight (the kill that ended the process, say) gets its
    // reply, which the agent may send just after `Exited`, before the VM
    // goes; and none starts after this.
    let t = std::time::Instant::now();
    let _in_flight = loop {
        if let Ok(g) = shared.replies.try_lock() {
            break Some(g);
        }
        if t.elapsed() > IN_FLIGHT_GRACE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    vm.kill();
    let _ = std::fs::remove_dir_all(store.vm_dir(&a.id));
    let _ = std::fs::remove_file(store.socket(&a.id));
    exit_with(status)
}

fn relay_from_guest(
    mut chan: UnixStream,
    out: Output,
    shared: &Shared,
    replies: mpsc::Sender<Event>,
    outcome: mpsc::Sender<Outcome>,
) {
    loop {
        let frame = match proto::read_frame(&mut chan) {
            Ok(Some(f)) => f,
            Ok(None) => {
                let _ = outcome.send(Outcome::Lost("the agent's channel closed".into()));
                return;
            }
            Err(e) => {
                let _ = outcome.send(Outcome::Lost(e.to_string()));
                return;
            }
        };
        match frame {
            Frame::Control(p) => match proto::decode::<Event>(&p) {
                Ok(Event::Exited { stream, status }) if stream == proto::INIT_STREAM => {
                    let _ = outcome.send(Outcome::Exited(status));
                }
                Ok(Event::Exited { stream, status }) => {
                    let io = shared.execs.lock().unwrap_or_else(|p| p.into_inner()).remove(&stream);
                    if let Some(io) = io {
                        let _ = io.done.send(status);
                    }
                }
                Ok(Event::Ready(_)) => {}
                Ok(ev) => {
                    let _ = replies.send(ev);
                }
                Err(e) => eprintln!("virtualized shim: {e}"),
            },
            Frame::Data { kind, stream, bytes } if stream == proto::INIT_STREAM => {
                if !bytes.is_empty() {
                    out.write(kind, &bytes);
                }
            }
            Frame::Data { kind, stream, bytes } => {
                let execs = shared.execs.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(io) = execs.get(&stream) {
                    let mut f = if kind == Kind::Stderr { &io.stderr } else { &io.stdout };
                    let _ = f.write_all(&bytes);
                }
            }
        }
    }
}

/// How often a stdin relay that waits for input looks whether its process
/// ended.
const STDIN_POLL_MS: i32 = 100;

/// A process's host stdin (or its terminal) to its stream in the guest,
/// until end of file, or until `ended`: a caller's pipe or terminal may stay
/// open after the process is gone, and the relay must not hold it (a
/// terminal's master sees its end only once every slave is closed).
fn relay_stdin_until(mut from: File, stream: u32, shared: &Shared, ended: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while !ended.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd we own, for a bounded time.
        let r = unsafe { libc::poll(&mut pfd, 1, STDIN_POLL_MS) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if r == 0 {
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if shared.send_data(stream, &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = shared.send_data(stream, &[]);
}

/// Host stdin (or the pty) to the guest's stream, until end of file.
fn relay_to_guest(from: File, stream: u32, shared: &Shared) {
    relay_stdin_until(from, stream, shared, &AtomicBool::new(false))
}

fn answer(ev: std::result::Result<Event, String>) -> control::Reply {
    match ev {
        Ok(Event::Ok) | Ok(Event::Created { .. }) => control::Reply::Ok,
        Ok(Event::Error { message }) => control::Reply::Error { message },
        Ok(other) => control::Reply::Error {
            message: format!("agent: unexpected answer {other:?}"),
        },
        Err(message) => control::Reply::Error { message },
    }
}

/// One request from the command line (or from the shim of a further
/// container of the pod).
fn serve(conn: UnixStream, shared: &Arc<Shared>) {
    let (req, fds) = match control::read_request(&conn) {
        Ok(r) => r,
        Err(e) => {
            let _ = control::write_reply(&conn, &control::Reply::Error { message: e.to_string() });
            return;
        }
    };
    let (req, container) = match req {
        control::Request::For { container, request } => (*request, Some(container)),
        req => (req, None),
    };
    let reply = match (req, container) {
        (
            control::Request::Join {
                id,
                bundle,
                terminal,
                size,
            },
            None,
        ) => {
            return join(conn, shared, id, &bundle, terminal, size, fds);
        }
        (control::Request::Join { .. }, Some(c)) | (control::Request::For { container: c, .. }, _) => {
            control::Reply::Error {
                message: format!("a request for container {c:?} cannot be a join or hold another"),
            }
        }
        (control::Request::Start, None) => start(shared),
        (control::Request::Start, container @ Some(_)) => answer(shared.request(&Request::Start { container })),
        (control::Request::Kill { signal, all }, container @ Some(_)) => {
            answer(shared.request(&Request::Kill { signal, all, container }))
        }
        (control::Request::Exec { process, detach }, container) => {
            return exec(&conn, shared, process, detach, fds, container)
        }
        (control::Request::Connect { port }, container) => {
            let make = move |stream| Request::Connect {
                stream,
                port,
                container,
            };
            return run_stream(&conn, shared, "connect", false, false, fds, make);
        }
        (control::Request::Kill { signal, all }, None) => {
            let r = shared.request(&Request::Kill {
                signal,
                all,
                container: None,
            });
            let ended = shared.record.lock().unwrap_or_else(|p| p.into_inner()).status == Status::Stopped;
            match r {
                // The process ended while the signal was on its way (by it,
                // likely): the VM went before the agent's answer could come.
                Err(_) if ended => control::Reply::Ok,
                r => answer(r),
            }
        }
    };
    let _ = control::write_reply(&conn, &reply);
}

/// Adds a further container of the pod to the VM: packs its bundle, has the
/// agent unpack and create it on a stream of its own, whose output goes to
/// the fds that came with the request; replies `Ok`, then `Exited` when its
/// process ends, and then removes it from the guest. The caller (that
/// container's shim) hanging up first kills it.
fn join(
    conn: UnixStream,
    shared: &Arc<Shared>,
    id: String,
    bundle: &Path,
    terminal: bool,
    size: Option<(u16, u16)>,
    fds: Vec<OwnedFd>,
) {
    let reply = |r: &control::Reply| {
        let _ = control::write_reply(&conn, r);
    };
    let fail = |message: String| {
        let _ = control::write_reply(&conn, &control::Reply::Error { message });
    };
    let Ok([stdin, stdout, stderr]) = <[OwnedFd; 3]>::try_from(fds) else {
        return fail("join: the container's stdin, stdout and stderr must come with the request".into());
    };
    let dir = proto::member_bundle(&id);
    let mut w = crate::vm::cpio::Writer::new(Vec::new());
    let packed = vm::initramfs::write_bundle_in(&mut w, bundle, bundle, vm::initramfs::DEFAULT_BUNDLE_CAP, &dir)
        .map_err(|e| e.to_string())
        .and_then(|()| w.finish().map_err(|e| format!("packing {}: {e}", bundle.display())));
    let archive = match packed {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    if let control::Reply::Error { message } = answer(shared.send_member(&id, &archive)) {
        return fail(message);
    }
    drop(archive);
    let stream = shared.next_stream.fetch_add(1, Ordering::SeqCst);
    let (done_tx, done_rx) = mpsc::channel();
    shared.execs.lock().unwrap_or_else(|p| p.into_inner()).insert(
        stream,
        ExecIo {
            stdout: File::from(stdout),
            stderr: File::from(stderr),
            done: done_tx,
        },
    );
    let sandbox = shared.record.lock().unwrap_or_else(|p| p.into_inner()).id.clone();
    let created = answer(shared.request(&Request::Create {
        id: id.clone(),
        terminal,
        size,
        stream,
        sandbox: Some(sandbox),
    }));
    if created != control::Reply::Ok {
        shared.execs.lock().unwrap_or_else(|p| p.into_inner()).remove(&stream);
        let _ = shared.request(&Request::Delete { container: id.clone() });
        return reply(&created);
    }
    reply(&control::Reply::Ok);
    let ended = Arc::new(AtomicBool::new(false));
    {
        let stdin = File::from(stdin);
        let (shared, ended) = (shared.clone(), ended.clone());
        std::thread::spawn(move || relay_stdin_until(stdin, stream, &shared, &ended));
    }
    if let Ok(mut c) = conn.try_clone() {
        // The caller says nothing more: its end closing first means it is
        // gone (killed, or its create abandoned), and the container goes
        // with it.
        let (shared, ended, container) = (shared.clone(), ended.clone(), id.clone());
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            if matches!(c.read(&mut b), Ok(0)) && !ended.load(Ordering::SeqCst) {
                let _ = shared.request(&Request::Kill {
                    signal: libc::SIGKILL,
                    all: true,
                    container: Some(container),
                });
            }
        });
    }
    if let Ok(status) = done_rx.recv() {
        ended.store(true, Ordering::SeqCst);
        reply(&control::Reply::Exited { status });
    }
    let _ = shared.request(&Request::Delete { container: id });
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

fn start(shared: &Shared) -> control::Reply {
    {
        let r = shared.record.lock().unwrap_or_else(|p| p.into_inner());
        if !r.status.can_start() {
            let e = container::state::Error::Illegal {
                id: r.id.clone(),
                status: r.status,
                op: "start",
            };
            return control::Reply::Error { message: e.to_string() };
        }
    }
    let reply = answer(shared.request(&Request::Start { container: None }));
    if reply == control::Reply::Ok {
        let mut r = shared.record.lock().unwrap_or_else(|p| p.into_inner());
        // The process may have ended already: stopped stays stopped.
        if r.status == Status::Created {
            r.status = Status::Running;
            if let Err(e) = shared.store.save(&r) {
                return control::Reply::Error { message: e.to_string() };
            }
        }
    }
    reply
}

fn exec(
    conn: &UnixStream,
    shared: &Arc<Shared>,
    process: serde_json::Value,
    detach: bool,
    fds: Vec<OwnedFd>,
    container: Option<String>,
) {
    let wants_tty = process.get("terminal").and_then(|t| t.as_bool()) == Some(true);
    let make = move |stream| Request::Exec {
        stream,
        process,
        container,
    };
    run_stream(conn, shared, "exec", wants_tty, detach, fds, make)
}

/// A request that runs something on a stream of its own (an exec, a
/// forwarded connection) with the caller's stdin, stdout and stderr (the
/// fds of the request): replies `Ok` once it runs, then, unless detached,
/// `Exited` when it ends. The caller hanging up first ends it.
fn run_stream(
    conn: &UnixStream,
    shared: &Arc<Shared>,
    what: &str,
    wants_tty: bool,
    detach: bool,
    fds: Vec<OwnedFd>,
    make: impl FnOnce(u32) -> Request,
) {
    let reply = |r: &control::Reply| {
        let _ = control::write_reply(conn, r);
    };
    let Ok([stdin, stdout, stderr]) = <[OwnedFd; 3]>::try_from(fds) else {
        reply(&control::Reply::Error {
            message: format!("{what}: the caller's stdin, stdout and stderr must come with the request"),
        });
        return;
    };
    let stream = shared.next_stream.fetch_add(1, Ordering::SeqCst);
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = File::from(stdout);
    // With a terminal, its size is followed from the host's end.
    let terminal = if wants_tty && pty::size(&stdout).is_ok() {
        stdout.try_clone().ok()
    } else {
        None
    };
    shared.execs.lock().unwrap_or_else(|p| p.into_inner()).insert(
        stream,
        ExecIo {
            stdout,
            stderr: File::from(stderr),
            done: done_tx,
        },
    );
    let r = answer(shared.request(&make(stream)));
    if r != control::Reply::Ok {
        shared.execs.lock().unwrap_or_else(|p| p.into_inner()).remove(&stream);
        reply(&r);
        return;
    }
    reply(&r);
    let stdin = File::from(stdin);
    if detach {
        std::thread::spawn({
            let shared = shared.clone();
            move || relay_to_guest(stdin, stream, &shared)
        });
        return;
    }
    let ended = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| relay_stdin_until(stdin, stream, shared, &ended));
        if let Some(tty) = terminal {
            let ended = &ended;
            s.spawn(move || follow_size(&tty, stream, shared, ended));
        }
        // The caller (`exec`, the host process that stands for this one)
        // says nothing more: its end closing first means it was killed,
        // and the process in the guest goes with it.
        if let Ok(mut c) = conn.try_clone() {
            let ended = &ended;
            s.spawn(move || {
                let mut b = [0u8; 1];
                if matches!(c.read(&mut b), Ok(0)) && !ended.load(Ordering::SeqCst) {
                    let _ = shared.request(&Request::Signal {
                        stream,
                        signal: libc::SIGKILL,
                    });
                }
            });
        }
        if let Ok(status) = done_rx.recv() {
            ended.store(true, Ordering::SeqCst);
            reply(&control::Reply::Exited { status });
        }
        ended.store(true, Ordering::SeqCst);
        let _ = conn.shutdown(std::net::Shutdown::Read);
    });
}

/// How often a terminal's size is looked at: the host's end is resized by
/// whoever holds the master, and nothing tells the slave's holder.
const SIZE_POLL: Duration = Duration::from_millis(100);

/// Passes the host terminal's size changes on to the guest's, until
/// `ended`.
fn follow_size(tty: &File, stream: u32, shared: &Shared, ended: &AtomicBool) {
    let mut last = pty::size(tty).ok();
    while !ended.load(Ordering::SeqCst) {
        std::thread::sleep(SIZE_POLL);
        let now = pty::size(tty).ok();
        if now != last {
            if let Some((rows, cols)) = now.filter(|&(r, c)| r > 0 && c > 0) {
                let _ = shared.request(&Request::Resize { stream, rows, cols });
            }
            last = now;
        }
    }
}

/// Where a signal to the shim goes once the container is committed.
pub(crate) type SignalTarget = Box<dyn Fn(i32) + Send + std::marker::Sync>;

fn spawn_signal_relay(mut pipe: File, target: Arc<OnceLock<SignalTarget>>) {
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while let Ok(1) = pipe.read(&mut b) {
            let sig = i32::from(b[0]);
            match target.get() {
                Some(deliver) => deliver(sig),
                // Before the commit the container is not there yet: a
                // terminating signal ends the attempt.
                None => abort(),
            }
        }
    });
}

/// Ends the shim as the container's process ended.
pub(crate) fn exit_with(status: ExitStatus) -> ! {
    let _ = io::stdout().flush();
    if let ExitStatus::Signal(sig) = status {
        let stops = [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
        if !stops.contains(&sig) {
            // The guest's crash leaves no core file on the host.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: setrlimit reads the struct we pass; lowering is allowed.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
            // SAFETY: restoring the default disposition and raising the
            // signal ends the process as the container's did; the set is
            // plain data we own.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::raise(sig);
            }
        }
    }
    std::process::exit(status.as_shell_code())
}

/// The shim's command line for `create` to run.
pub fn command_line(
    root: &Path,
    id: &str,
    bundle: &Path,
    console_socket: Option<&Path>,
    sandbox: Option<&str>,
) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec![
        "shim".into(),
        "--root".into(),
        root.into(),
        "--id".into(),
        id.into(),
        "--bundle".into(),
        bundle.into(),
    ];
    if let Some(s) = console_socket {
        v.push("--console-socket".into());
        v.push(s.into());
    }
    if let Some(s) = sandbox {
        v.push("--sandbox".into());
        v.push(s.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_create_builds_is_the_one_the_shim_parses() {
        let argv = command_line(
            Path::new("/r"),
            "c1",
            Path::new("/b"),
            Some(Path::new("/s")),
            Some("pod"),
        );
        let args: Vec<String> = argv.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
        let a = Args::try_parse_from(std::iter::once("shim".to_string()).chain(args)).unwrap();
        assert_eq!((a.root, a.id, a.bundle), ("/r".into(), "c1".into(), "/b".into()));
        assert_eq!(a.console_socket, Some("/s".into()));
        assert_eq!(a.sandbox.as_deref(), Some("pod"));
    }

    #[test]
    fn sync_messages_are_one_line_of_json() {
        let line = serde_json::to_string(&Sync::Error { message: "a\nb".into() }).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(
            serde_json::from_str::<Sync>(&line).unwrap(),
            Sync::Error { message: "a\nb".into() }
        );
    }
}
