//! The agent's requests, served by running the native runtime's command
//! line inside the guest (`/init native --root /run/oci VERB ...`), with the
//! processes' stdio relayed as data frames.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::reaper;
use crate::proto::{self, Event, ExitStatus, Frame, Kind, Request};
use crate::vm::initramfs::GUEST_BUNDLE;

/// The native runtime's state inside the guest.
const STATE_ROOT: &str = "/run/oci";
/// The agent's own scratch files (logs, pid files, process.json).
const WORK: &str = "/run/agent";
/// How long an ended process's output may still drain before `Exited` is
/// sent anyway (a daemonised child can hold the pipe open for ever).
const DRAIN: Duration = Duration::from_secs(2);

type Out = Arc<Mutex<File>>;

fn send(out: &Out, ev: &Event) {
    let mut f = out.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = proto::write_message(&mut *f, ev) {
        eprintln!("virtualized agent: sending {ev:?}: {e}");
    }
}

fn send_data(out: &Out, kind: Kind, stream: u32, bytes: &[u8]) -> bool {
    let mut f = out.lock().unwrap_or_else(|p| p.into_inner());
    proto::write_data(&mut *f, kind, stream, bytes).is_ok()
}

/// A process's (or a connection's) input side, by stream.
#[derive(Default)]
struct Input {
    stdin: Option<File>,
    tty: Option<Arc<File>>,
    /// A forwarded connection: end of input half-closes it.
    sock: Option<std::net::TcpStream>,
    /// The process, as the guest numbers it.
    pid: i32,
}

/// Reads an archive's data frames on [`proto::BUNDLE_STREAM`] up to the
/// empty one that closes it.
fn read_archive(input: &mut File) -> Result<Vec<u8>, String> {
    let mut archive = Vec::new();
    loop {
        match proto::read_frame(input) {
            Ok(Some(Frame::Data {
                kind: Kind::Stdin,
                stream: proto::BUNDLE_STREAM,
                bytes,
            })) => {
                if bytes.is_empty() {
                    break;
                }
                archive.extend(bytes);
            }
            Ok(Some(other)) => return Err(format!("bundle: {other:?} inside the archive's frames")),
            Ok(None) => return Err("bundle: the channel closed inside the archive".into()),
            Err(e) => return Err(format!("bundle: {e}")),
        }
    }
    Ok(archive)
}

/// Serves [`Request::Bundle`]: reads the archive's frames, unpacks it
/// under `/`, sets the clock and seeds the random pool.
fn bundle(input: &mut File, realtime_ns: u64, entropy: &[u8]) -> Result<(), String> {
    let archive = read_archive(input)?;
    if Path::new(GUEST_BUNDLE).join("config.json").exists() {
        return Err(format!("bundle: this guest already holds one at {GUEST_BUNDLE}"));
    }
    super::setup::set_realtime(realtime_ns)?;
    super::setup::add_entropy(entropy)?;
    super::setup::unpack(&archive, Path::new("/"))
}

/// Serves [`Request::Member`]: unpacks the further container's bundle at
/// [`proto::member_bundle`], refusing an archive that reaches elsewhere.
fn member(input: &mut File, id: &str) -> Result<(), String> {
    let archive = read_archive(input)?;
    container::state::check_id(id).map_err(|e| format!("member: {e}"))?;
    let dir = proto::member_bundle(id);
    if Path::new(&dir).exists() {
        return Err(format!(
            "member: {dir} exists: container {id:?} is in this guest already"
        ));
    }
    let prefix = dir.trim_start_matches('/');
    for e in crate::vm::cpio::parse(&archive)? {
        // The directory's parents come first in the archive.
        let inside = e.name == prefix
            || e.name.starts_with(&format!("{prefix}/"))
            || prefix.starts_with(&format!("{}/", e.name));
        if !inside {
            return Err(format!("member: the archive of {id:?} holds {}, outside {dir}", e.name));
        }
    }
    if let Err(e) = super::setup::unpack(&archive, Path::new("/")) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(())
}

/// The file under `/proc/PID/ns` of an OCI namespace type.
fn ns_file(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "network" => "net",
        "ipc" => "ipc",
        "uts" => "uts",
        "pid" => "pid",
        "mount" => "mnt",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => return None,
    })
}

/// Points every namespace the config names by path at the pod's first
/// container's (`/proc/PID/ns/...` of its process): the paths were the
/// host's, where the pod's namespaces are not.
fn join_pod_namespaces(config: &mut serde_json::Value, sandbox_pid: i32) {
    let Some(list) = config.pointer_mut("/linux/namespaces").and_then(|n| n.as_array_mut()) else {
        return;
    };
    for ns in list {
        let has_path = ns.get("path").and_then(|p| p.as_str()).is_some_and(|p| !p.is_empty());
        let file = ns.get("type").and_then(|t| t.as_str()).and_then(ns_file);
        if let (true, Some(file)) = (has_path, file) {
            ns["path"] = serde_json::Value::from(format!("/proc/{sandbox_pid}/ns/{file}"));
        }
    }
}

/// Connects to 127.0.0.1:`port` in the network namespace of `pid`, from a
/// thread of its own that enters it (the socket stays in that namespace).
fn connect_in_netns(pid: i32, port: u16) -> Result<std::net::TcpStream, String> {
    let ns = File::open(format!("/proc/{pid}/ns/net")).map_err(|e| format!("connect: /proc/{pid}/ns/net: {e}"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on this thread alone, with a namespace fd we own.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("connect: setns: {}", std::io::Error::last_os_error()));
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to port {port}: {e}"))
    })
    .join()
    .map_err(|_| "connect: the thread panicked".to_string())?
}

/// One container in the guest.
struct Slot {
    bundle: String,
    pid: i32,
    init_stream: u32,
    /// The process's gate: opened by the reply to its Start or Kill.
    init_gate: Option<Arc<Gate>>,
}

pub struct Agent {
    out: Out,
    exe: PathBuf,
    /// The guest's first container (the pod's, in a pod's VM): the one a
    /// request that names none means.
    first: Option<String>,
    containers: HashMap<String, Slot>,
    inputs: HashMap<u32, Input>,
    seq: u32,
    /// Gates to open once the reply being served is sent.
    gates: Vec<Arc<Gate>>,
    /// The gate of the container `create` just launched, for its slot.
    pending_init_gate: Option<Arc<Gate>>,
}

/// What [`Agent::launch`] starts.
#[derive(Clone, Copy)]
enum Launch<'a> {
    /// The container, from the bundle at this guest path.
    Create(&'a str),
    /// A further process (an OCI `process` object) in it.
    Exec(&'a serde_json::Value),
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors into a valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both are new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Relays `src` to the host as `kind` frames on `stream` until EOF, then
/// closes the stream and says so on `done`.
fn relay(src: File, out: Out, kind: Kind, stream: u32, done: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut src = src;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if !send_data(&out, kind, stream, &buf[..n]) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: a terminal's last slave closed.
                Err(_) => break,
            }
        }
        send_data(&out, kind, stream, &[]);
        let _ = done.send(());
    });
}

/// Holds an `Exited` back until the reply that let the process run (Start,
/// Kill or Exec) is on the wire: the host reads the reply to its request
/// first.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
    fn wait(&self) {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Sends `Exited` for `pid` on `stream` once it is reaped, its output
/// drained (`outputs` relays, or [`DRAIN`]) and `gate` open.
fn watch(pid: i32, stream: u32, outputs: usize, done: mpsc::Receiver<()>, gate: Arc<Gate>, out: Out) {
    std::thread::spawn(move || {
        let status = reaper::wait(pid, None).unwrap_or(ExitStatus::Code(-1));
        gate.wait();
        let until = std::time::Instant::now() + DRAIN;
        for _ in 0..outputs {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if done.recv_timeout(left).is_err() {
                break;
            }
        }
        send(&out, &Event::Exited { stream, status });
    });
}

fn set_winsize(tty: &File, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one valid winsize.
    unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

impl Agent {
    pub fn new(out: File, exe: PathBuf) -> Agent {
        let _ = std::fs::create_dir_all(WORK);
        Agent {
            out: Arc::new(Mutex::new(out)),
            exe,
            first: None,
            containers: HashMap::new(),
            inputs: HashMap::new(),
            seq: 0,
            gates: Vec::new(),
            pending_init_gate: None,
        }
    }

    pub fn send(&self, ev: &Event) {
        send(&self.out, ev)
    }

    /// Serves frames from `input` until the host closes the channel.
    pub fn serve(&mut self, mut input: File) -> Result<(), String> {
        loop {
            match proto::read_frame(&mut input) {
                Ok(None) => return Err("the host closed the agent channel".into()),
                Err(e) => return Err(e.to_string()),
                Ok(Some(Frame::Control(p))) => match proto::decode::<Request>(&p) {
                    Ok(Request::Shutdown) => return Ok(()),
                    Ok(Request::Bundle { realtime_ns, entropy }) => {
                        let ev = match bundle(&mut input, realtime_ns, &entropy) {
                            Ok(()) => Event::Ok,
                            Err(message) => Event::Error { message },
                        };
                        self.send(&ev);
                    }
                    Ok(Request::Member { id }) => {
                        let ev = match member(&mut input, &id) {
                            Ok(()) => Event::Ok,
                            Err(message) => Event::Error { message },
                        };
                        self.send(&ev);
                    }
                    Ok(req) => {
                        let ev = self.handle(req).unwrap_or_else(|message| Event::Error { message });
                        self.send(&ev);
                        for g in self.gates.drain(..) {
                            g.open();
                        }
                    }
                    Err(e) => self.send(&Event::Error { message: e.to_string() }),
                },
                Ok(Some(Frame::Data {
                    kind: Kind::Stdin,
                    stream,
                    bytes,
                })) => self.stdin(stream, &bytes),
                Ok(Some(Frame::Data { .. })) => {}
            }
        }
    }

    fn stdin(&mut self, stream: u32, bytes: &[u8]) {
        if stream == proto::BUNDLE_STREAM {
            return;
        }
        let Some(inp) = self.inputs.get_mut(&stream) else {
            return;
        };
        if let Some(sock) = &inp.sock {
            let r = if bytes.is_empty() {
                sock.shutdown(std::net::Shutdown::Write)
            } else {
                (&*sock).write_all(bytes)
            };
            if r.is_err() {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
            return;
        }
        if let Some(tty) = &inp.tty {
            if !bytes.is_empty() {
                let _ = (&**tty).write_all(bytes);
            }
            return;
        }
        if bytes.is_empty() {
            inp.stdin = None;
        } else if let Some(w) = inp.stdin.as_mut() {
            if w.write_all(bytes).is_err() {
                inp.stdin = None;
            }
        }
    }

    fn handle(&mut self, req: Request) -> Result<Event, String> {
        match req {
            Request::Create {
                id,
                terminal,
                size,
                stream,
                sandbox,
            } => self.create(id, terminal, size, stream, sandbox),
            Request::Start { container } => {
                let id = self.container(container.as_deref())?;
                self.open_init_gate(&id);
                self.native(&["start", &id], None)?;
                Ok(Event::Ok)
            }
            Request::Kill { signal, all, container } => {
                let id = self.container(container.as_deref())?;
                self.open_init_gate(&id);
                let sig = signal.to_string();
                let mut args = vec!["kill"];
                if all {
                    args.push("--all");
                }
                args.extend([id.as_str(), sig.as_str()]);
                self.native(&args, None)?;
                Ok(Event::Ok)
            }
            Request::Exec {
                stream,
                process,
                container,
            } => {
                let id = self.container(container.as_deref())?;
                if self.stream_taken(stream) {
                    return Err(format!("exec: stream {stream} is taken"));
                }
                let terminal = process.get("terminal").and_then(|t| t.as_bool()).unwrap_or(false);
                let size = process
                    .pointer("/consoleSize")
                    .and_then(|s| Some((s.get("height")?.as_u64()? as u16, s.get("width")?.as_u64()? as u16)));
                self.launch(&id, stream, terminal, size, Launch::Exec(&process))?;
                Ok(Event::Ok)
            }
            Request::Connect {
                stream,
                port,
                container,
            } => {
                let id = self.container(container.as_deref())?;
                if self.stream_taken(stream) {
                    return Err(format!("connect: stream {stream} is taken"));
                }
                let pid = self.containers.get(&id).map(|c| c.pid).unwrap_or_default();
                let sock = connect_in_netns(pid, port)?;
                let reader = sock.try_clone().map_err(|e| format!("connect: {e}"))?;
                let (done_tx, done_rx) = mpsc::channel();
                relay(
                    File::from(OwnedFd::from(reader)),
                    self.out.clone(),
                    Kind::Stdout,
                    stream,
                    done_tx,
                );
                self.inputs.insert(
                    stream,
                    Input {
                        sock: Some(sock),
                        ..Default::default()
                    },
                );
                // Its end is said once the reply is on the wire.
                let gate = Arc::new(Gate::default());
                self.gates.push(gate.clone());
                let out = self.out.clone();
                std::thread::spawn(move || {
                    let _ = done_rx.recv();
                    gate.wait();
                    send(
                        &out,
                        &Event::Exited {
                            stream,
                            status: ExitStatus::Code(0),
                        },
                    );
                });
                Ok(Event::Ok)
            }
            Request::Signal { stream, signal } => {
                // A forwarded connection's "process" ends by closing.
                if let Some(sock) = self.inputs.get(&stream).and_then(|i| i.sock.as_ref()) {
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                    return Ok(Event::Ok);
                }
                let pid = self
                    .inputs
                    .get(&stream)
                    .map(|i| i.pid)
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("signal: no process on stream {stream}"))?;
                // SAFETY: kill(2) with a pid and a signal number. The pid is
                // reaped only by this agent, after its Exited: until then it
                // names this process.
                if unsafe { libc::kill(pid, signal) } != 0 {
                    return Err(format!("signal {signal} to {pid}: {}", std::io::Error::last_os_error()));
                }
                Ok(Event::Ok)
            }
            Request::Resize { stream, rows, cols } => {
                let tty = self
                    .inputs
                    .get(&stream)
                    .and_then(|i| i.tty.clone())
                    .ok_or_else(|| format!("resize: stream {stream} has no terminal"))?;
                set_winsize(&tty, rows, cols);
                Ok(Event::Ok)
            }
            Request::Delete { container } => self.delete(&container),
            Request::Shutdown => Ok(Event::Ok),
            Request::Bundle { .. } | Request::Member { .. } => Err("bundle: served by the frame loop".into()),
        }
    }

    fn stream_taken(&self, stream: u32) -> bool {
        stream == proto::INIT_STREAM
            || stream == proto::BUNDLE_STREAM
            || self.inputs.contains_key(&stream)
            || self.containers.values().any(|c| c.init_stream == stream)
    }

    fn create(
        &mut self,
        id: String,
        terminal: bool,
        size: Option<(u16, u16)>,
        stream: u32,
        sandbox: Option<String>,
    ) -> Result<Event, String> {
        let bundle = match &sandbox {
            None => {
                if self.first.is_some() {
                    return Err("create: this guest already holds a container".into());
                }
                if stream != proto::INIT_STREAM {
                    return Err(format!(
                        "create: the guest's first container runs on stream 0, not {stream}"
                    ));
                }
                GUEST_BUNDLE.to_string()
            }
            Some(sb) => {
                let pod = self
                    .containers
                    .get(sb)
                    .filter(|_| self.first.as_deref() == Some(sb.as_str()))
                    .ok_or_else(|| format!("create {id:?}: sandbox {sb:?} is not this guest's first container"))?;
                if self.containers.contains_key(&id) {
                    return Err(format!("create: container {id:?} is in this guest already"));
                }
                if self.stream_taken(stream) {
                    return Err(format!("create {id:?}: stream {stream} is taken"));
                }
                let bundle = proto::member_bundle(&id);
                let path = Path::new(&bundle).join("config.json");
                let text = std::fs::read(&path).map_err(|e| format!("create {id:?}: {}: {e}", path.display()))?;
                let mut config: serde_json::Value =
                    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                join_pod_namespaces(&mut config, pod.pid);
                std::fs::write(&path, config.to_string()).map_err(|e| format!("writing {}: {e}", path.display()))?;
                bundle
            }
        };
        let pid = self.launch(&id, stream, terminal, size, Launch::Create(&bundle))?;
        if sandbox.is_none() {
            self.first = Some(id.clone());
        }
        let gate = self.pending_init_gate.take();
        self.containers.insert(
            id,
            Slot {
                bundle,
                pid,
                init_stream: stream,
                init_gate: gate,
            },
        );
        Ok(Event::Created { pid })
    }

    /// Removes a further container whose process ended.
    fn delete(&mut self, id: &str) -> Result<Event, String> {
        if self.first.as_deref() == Some(id) {
            return Err(format!(
                "delete: {id:?} is the guest's first container; it goes with the VM"
            ));
        }
        let slot = self
            .containers
            .get(id)
            .ok_or_else(|| format!("delete: no container {id:?} in this guest"))?;
        let (bundle, stream) = (slot.bundle.clone(), slot.init_stream);
        self.native(&["delete", "--force", id], None)?;
        self.containers.remove(id);
        self.inputs.remove(&stream);
        std::fs::remove_dir_all(&bundle).map_err(|e| format!("delete: removing {bundle}: {e}"))?;
        Ok(Event::Ok)
    }

    /// The container a request names, or the guest's first.
    fn container(&self, named: Option<&str>) -> Result<String, String> {
        match named {
            None => self
                .first
                .clone()
                .ok_or_else(|| "no container was created in this guest".into()),
            Some(id) if self.containers.contains_key(id) => Ok(id.to_string()),
            Some(id) => Err(format!("no container {id:?} in this guest")),
        }
    }

    /// The reply being served lets the container's process run (or end):
    /// its `Exited` may follow the reply.
    fn open_init_gate(&mut self, id: &str) {
        if let Some(g) = self.containers.get_mut(id).and_then(|c| c.init_gate.take()) {
            self.gates.push(g);
        }
    }

    fn scratch(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        Path::new(WORK).join(format!("{}-{what}", self.seq))
    }

    /// Runs `/init native --root /run/oci ARGS` and waits for it; its
    /// failure is the log's text. `stdio` (stdin, stdout, stderr) default to
    /// none.
    fn native(&mut self, args: &[&str], stdio: Option<[Stdio; 3]>) -> Result<(), String> {
        let log = self.scratch("log");
        let mut cmd = Command::new(&self.exe);
        cmd.arg("native")
            .arg("--root")
            .arg(STATE_ROOT)
            .arg("--log")
            .arg(&log)
            .args(args);
        let [i, o, e] = stdio.unwrap_or_else(|| [Stdio::null(), Stdio::null(), Stdio::null()]);
        cmd.stdin(i).stdout(o).stderr(e);
        let child = cmd
            .spawn()
            .map_err(|e| format!("running {} native: {e}", self.exe.display()))?;
        let pid = child.id() as i32;
        // The child's ends of the pipes must close here, or the relays
        // never see EOF.
        drop(cmd);
        let status = reaper::wait(pid, None).unwrap_or(ExitStatus::Code(-1));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        if status != ExitStatus::Code(0) {
            let text = text.trim();
            return Err(if text.is_empty() {
                format!("native {}: {status:?}", args[0])
            } else {
                text.to_string()
            });
        }
        Ok(())
    }

    /// Creates the container from a bundle or execs a process in it,
    /// detached, with its stdio on `stream`; returns the process's pid and
    /// arranges its `Exited`.
    fn launch(
        &mut self,
        id: &str,
        stream: u32,
        terminal: bool,
        size: Option<(u16, u16)>,
        what: Launch<'_>,
    ) -> Result<i32, String> {
        let pid_file = self.scratch("pid");
        let pid_s = pid_file.to_string_lossy().into_owned();
        let console = self.scratch("console.sock");
        let console_s = console.to_string_lossy().into_owned();
        let listener = if terminal {
            let l = UnixListener::bind(&console).map_err(|e| format!("binding {console_s}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| format!("{console_s}: {e}"))?;
            Some(l)
        } else {
            None
        };
        let proc_file = self.scratch("process.json");
        let proc_s = proc_file.to_string_lossy().into_owned();
        let mut args: Vec<&str> = match what {
            Launch::Create(bundle) => vec!["create", "--bundle", bundle, "--pid-file", &pid_s],
            Launch::Exec(p) => {
                std::fs::write(&proc_file, p.to_string()).map_err(|e| format!("writing {proc_s}: {e}"))?;
                vec!["exec", "--detach", "--process", &proc_s, "--pid-file", &pid_s]
            }
        };
        if terminal {
            args.extend(["--console-socket", &console_s]);
        }
        args.push(id);

        let (done_tx, done_rx) = mpsc::channel();
        let mut input = Input::default();
        let outputs;
        let result = if terminal {
            let r = self.native(&args, None);
            if r.is_ok() {
                let master = receive_master(listener.as_ref().expect("made when terminal"))?;
                if let Some((rows, cols)) = size {
                    set_winsize(&master, rows, cols);
                }
                let master = Arc::new(master);
                let reader = master.try_clone().map_err(|e| format!("console: {e}"))?;
                relay(reader, self.out.clone(), Kind::Stdout, stream, done_tx.clone());
                input.tty = Some(master);
            }
            outputs = 1;
            r
        } else {
            let (in_r, in_w) = pipe()?;
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let r = self.native(&args, Some([in_r.into(), out_w.into(), err_w.into()]));
            if r.is_ok() {
                relay(out_r.into(), self.out.clone(), Kind::Stdout, stream, done_tx.clone());
                relay(err_r.into(), self.out.clone(), Kind::Stderr, stream, done_tx.clone());
                input.stdin = Some(in_w.into());
            }
            outputs = 2;
            r
        };
        let _ = std::fs::remove_file(&console);
        let _ = std::fs::remove_file(&proc_file);
        result?;
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("reading {pid_s}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{pid_s}: {e}"))?;
        let _ = std::fs::remove_file(&pid_file);
        input.pid = pid;
        self.inputs.insert(stream, input);
        let gate = Arc::new(Gate::default());
        match what {
            Launch::Create(_) => self.pending_init_gate = Some(gate.clone()),
            Launch::Exec(_) => self.gates.push(gate.clone()),
        }
        watch(pid, stream, outputs, done_rx, gate, self.out.clone());
        Ok(pid)
    }
}

fn receive_master(l: &UnixListener) -> Result<File, String> {
    let (conn, _) = l
        .accept()
        .map_err(|e| format!("the runtime did not send the terminal over --console-socket: {e}"))?;
    conn.set_nonblocking(false)
        .map_err(|e| format!("console socket: {e}"))?;
    let (_, fds) = container::unix::recv_with_fds(&conn).map_err(|e| format!("receiving the terminal: {e}"))?;
    fds.into_iter()
        .next()
        .map(File::from)
        .ok_or_else(|| "the console socket carried no descriptor".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_named_by_path_become_the_sandbox_process_ones() {
        let mut cfg = serde_json::json!({"linux": {"namespaces": [
            {"type": "network", "path": "/proc/4242/ns/net"},
            {"type": "uts", "path": "/var/run/netns/x"},
            {"type": "pid"},
            {"type": "mount", "path": ""},
        ]}});
        join_pod_namespaces(&mut cfg, 7);
        let ns = &cfg["linux"]["namespaces"];
        assert_eq!(ns[0]["path"], "/proc/7/ns/net");
        assert_eq!(ns[1]["path"], "/proc/7/ns/uts");
        // A new namespace stays new.
        assert!(ns[2].get("path").is_none());
        assert_eq!(ns[3]["path"], "");
    }
}
