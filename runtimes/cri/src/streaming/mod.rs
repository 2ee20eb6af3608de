//! The streaming server behind CRI `Exec`, `Attach` and `PortForward`.
//!
//! Those calls register what was asked under a one-use token that expires
//! (kubelet's default: a minute) and return `http://ADDR/{exec,attach,
//! portforward}/TOKEN`. A client that connects there upgrades to WebSocket
//! (`cri_api::streaming`) and the request runs through a [`Backend`]: the
//! server's own ([`backend::CriBackend`]: the OCI runtime's `exec`, the
//! monitor's attach socket, a socket opened in the pod's network namespace)
//! or, in tests, a fake one.

pub mod attach;
pub mod backend;
pub mod console;
pub mod detached;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cri_api::streaming::{self as ws, channel, ChannelMessage, ChannelSender, Incoming, Status, TerminalSize};

/// How long a registered URL stays valid (kubelet's streaming default).
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// How long output still in flight after a process ended is waited for (a
/// daemon it left behind may hold its pipes open for good).
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardRequest {
    pub pod_id: String,
    /// Empty: the client names them (`?port=N`, as kubelet's server allows).
    pub ports: Vec<u16>,
}

/// How a streamed process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It ran and exited with this code (128 + N for signal N).
    Code(i32),
    /// It could not run, or the session broke: an internal error.
    Failed(String),
}

pub type Resize = Box<dyn Fn(TerminalSize) + Send + Sync>;

/// A running exec or attach session as a backend hands it over.
pub struct Process {
    pub stdin: Option<Box<dyn Write + Send>>,
    pub stdout: Option<Box<dyn Read + Send>>,
    pub stderr: Option<Box<dyn Read + Send>>,
    /// Sets the terminal's size (tty sessions).
    pub resize: Option<Resize>,
    /// Ends the session when the client goes away mid-stream (an exec's
    /// process is killed; an attach detaches).
    pub end: Option<Box<dyn Fn() + Send + Sync>>,
    /// Blocks until the session is over.
    pub wait: Box<dyn FnOnce() -> Exit + Send>,
}

/// What the streaming server runs requests through.
pub trait Backend: Send + Sync + 'static {
    fn exec(&self, req: &ExecRequest) -> crate::Result<Process>;
    fn attach(&self, req: &AttachRequest) -> crate::Result<Process>;
    /// A connection to 127.0.0.1:`port` inside the pod's network namespace.
    fn port_forward(&self, pod_id: &str, port: u16) -> crate::Result<Box<dyn PortConn>>;
}

/// A forwarded port's connection: a TCP socket in the pod's network, or a
/// socket to a runtime process that relays into a pod VM's network.
pub trait PortConn: Read + Write + Send {
    fn try_clone_conn(&self) -> io::Result<Box<dyn PortConn>>;
    fn shutdown_conn(&self, how: Shutdown) -> io::Result<()>;
}

impl PortConn for TcpStream {
    fn try_clone_conn(&self) -> io::Result<Box<dyn PortConn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_conn(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

impl PortConn for std::os::unix::net::UnixStream {
    fn try_clone_conn(&self) -> io::Result<Box<dyn PortConn>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_conn(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

enum Pending {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

struct Shared {
    backend: Arc<dyn Backend>,
    pending: Mutex<HashMap<String, (Pending, Instant)>>,
    ttl: Duration,
    stop: AtomicBool,
}

impl Shared {
    fn take(&self, token: &str) -> Option<Pending> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        p.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
        p.remove(token).map(|(req, _)| req)
    }
}

/// A running streaming server; stops accepting when dropped.
pub struct StreamServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl StreamServer {
    /// Listens on `addr` ("127.0.0.1:0" picks a free port).
    pub fn start(addr: &str, backend: Arc<dyn Backend>) -> io::Result<StreamServer> {
        StreamServer::start_with_ttl(addr, backend, TOKEN_TTL)
    }

    pub fn start_with_ttl(addr: &str, backend: Arc<dyn Backend>, ttl: Duration) -> io::Result<StreamServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            backend,
            pending: Mutex::new(HashMap::new()),
            ttl,
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("cri-streaming".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let s = s.clone();
                    let _ = std::thread::Builder::new()
                        .name("cri-stream".into())
                        .spawn(move || handle(&s, conn));
                }
            })?;
        Ok(StreamServer {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URLs' base: an unspecified bind address is reached on loopback.
    pub fn base_url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{a}")
    }

    fn register(&self, kind: &str, req: Pending) -> String {
        let token = crate::new_id();
        let mut p = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        p.retain(|_, (_, at)| now.duration_since(*at) < self.shared.ttl);
        p.insert(token.clone(), (req, now));
        format!("{}/{kind}/{token}", self.base_url())
    }

    pub fn register_exec(&self, req: ExecRequest) -> String {
        self.register("exec", Pending::Exec(req))
    }

    pub fn register_attach(&self, req: AttachRequest) -> String {
        self.register("attach", Pending::Attach(req))
    }

    pub fn register_portforward(&self, req: PortForwardRequest) -> String {
        self.register("portforward", Pending::PortForward(req))
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn handle(shared: &Shared, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let Ok(raw) = sock.try_clone() else { return };
    let Ok(inc) = Incoming::from_tcp(raw) else { return };
    let path = inc.request.path().trim_start_matches('/').to_string();
    let Some((kind, token)) = path.split_once('/') else {
        let _ = inc.respond(404, "Not Found", "no such streaming endpoint");
        return;
    };
    match (kind, shared.take(token)) {
        ("exec", Some(Pending::Exec(r))) => {
            let opts = Opts {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr && !r.tty,
            };
            serve_stream(inc, &sock, opts, || shared.backend.exec(&r));
        }
        ("attach", Some(Pending::Attach(r))) => {
            let opts = Opts {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr && !r.tty,
            };
            serve_stream(inc, &sock, opts, || shared.backend.attach(&r));
        }
        ("portforward", Some(Pending::PortForward(r))) => serve_port_forward(shared, inc, &sock, r),
        ("exec" | "attach" | "portforward", _) => {
            let _ = inc.respond(404, "Not Found", "unknown or expired streaming token");
        }
        _ => {
            let _ = inc.respond(404, "Not Found", "no such streaming endpoint");
        }
    }
}

struct Opts {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

/// Copies `r` to `channel` until EOF or the client is gone.
fn pump(mut r: Box<dyn Read + Send>, ch: ChannelSender, channel: u8) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if ch.send(channel, &buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pty's master reads EIO once the last slave is closed.
                Err(_) => return,
            }
        }
    })
}

/// Joins `threads`, giving up after `limit`.
fn join_bounded(threads: Vec<JoinHandle<()>>, limit: Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for t in threads {
            let _ = t.join();
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(limit);
}

/// Closes the WebSocket and, once the client answered (or did not in
/// time), the TCP connection.
fn finish(conn_sender: &ws::Sender, sock: &TcpStream, input: JoinHandle<()>) {
    let _ = conn_sender.close(1000, "");
    join_bounded(vec![input], DRAIN);
    let _ = sock.shutdown(Shutdown::Both);
}

fn serve_stream(inc: Incoming, sock: &TcpStream, opts: Opts, start: impl FnOnce() -> crate::Result<Process>) {
    let Ok(conn) = inc.accept(&ws::EXEC_PROTOCOLS) else {
        return;
    };
    let ch = ChannelSender {
        ws: conn.sender.clone(),
    };
    // Kubelet's server opens with an empty message on the lowest channel it
    // will write to: clients take it as "the stream is up".
    let first = if opts.stdout {
        channel::STDOUT
    } else if opts.stderr {
        channel::STDERR
    } else {
        channel::ERROR
    };
    let _ = ch.send(first, &[]);
    let mut proc = match start() {
        Ok(p) => p,
        Err(e) => {
            let _ = ch.send(channel::ERROR, &Status::internal(&e.to_string()).to_json());
            let _ = conn.sender.close(1000, "");
            let _ = sock.shutdown(Shutdown::Both);
            return;
        }
    };
    let mut pumps = Vec::new();
    if let Some(out) = proc.stdout.take().filter(|_| opts.stdout) {
        pumps.push(pump(out, ch.clone(), channel::STDOUT));
    }
    if let Some(err) = proc.stderr.take().filter(|_| opts.stderr) {
        pumps.push(pump(err, ch.clone(), channel::STDERR));
    }
    let finished = Arc::new(AtomicBool::new(false));
    let mut stdin = proc.stdin.take().filter(|_| opts.stdin);
    let resize = proc.resize.take();
    let end = proc.end.take();
    let mut receiver = conn.receiver;
    let done = finished.clone();
    let input = std::thread::spawn(move || loop {
        match ws::next_channel_message(&mut receiver) {
            Ok(ChannelMessage::Data(channel::STDIN, d)) => {
                if let Some(w) = &mut stdin {
                    if w.write_all(&d).and_then(|_| w.flush()).is_err() {
                        stdin = None;
                    }
                }
            }
            Ok(ChannelMessage::Data(channel::RESIZE, d)) => {
                if let (Some(r), Ok(size)) = (&resize, serde_json::from_slice::<TerminalSize>(&d)) {
                    r(size);
                }
            }
            Ok(ChannelMessage::Closed(channel::STDIN)) => stdin = None,
            Ok(ChannelMessage::Data(..)) | Ok(ChannelMessage::Closed(_)) => {}
            Ok(ChannelMessage::End) | Err(_) => {
                drop(stdin.take());
                if !done.load(Ordering::SeqCst) {
                    if let Some(end) = &end {
                        end();
                    }
                }
                return;
            }
        }
    });
    let exit = (proc.wait)();
    finished.store(true, Ordering::SeqCst);
    join_bounded(pumps, DRAIN);
    let status = match exit {
        Exit::Code(c) => Status::exit(c),
        Exit::Failed(m) => Status::internal(&m),
    };
    let _ = ch.send(channel::ERROR, &status.to_json());
    finish(&conn.sender, sock, input);
}

/// The ports of a port-forward: the request's, else the client's `port`
/// query parameters (comma-separated lists allowed).
fn forward_ports(req: &PortForwardRequest, query: &[(String, String)]) -> Result<Vec<u16>, String> {
    if !req.ports.is_empty() {
        return Ok(req.ports.clone());
    }
    let mut ports = Vec::new();
    for (k, v) in query {
        if k != "port" {
            continue;
        }
        for p in v.split(',') {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(format!("unable to parse {p:?} as a port")),
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    Ok(ports)
}

fn serve_port_forward(shared: &Shared, inc: Incoming, sock: &TcpStream, req: PortForwardRequest) {
    let ports = match forward_ports(&req, &inc.request.query()) {
        Ok(p) => p,
        Err(e) => {
            let _ = inc.respond(400, "Bad Request", &e);
            return;
        }
    };
    if ports.len() > 127 {
        let _ = inc.respond(400, "Bad Request", "at most 127 ports per connection");
        return;
    }
    let Ok(conn) = inc.accept(&ws::PORT_FORWARD_PROTOCOLS) else {
        return;
    };
    let ch = ChannelSender {
        ws: conn.sender.clone(),
    };
    for (i, p) in ports.iter().enumerate() {
        let _ = ch.send(2 * i as u8, &p.to_le_bytes());
        let _ = ch.send(2 * i as u8 + 1, &p.to_le_bytes());
    }
    let mut targets: Vec<Option<Box<dyn PortConn>>> = Vec::new();
    let mut pumps = Vec::new();
    for (i, &p) in ports.iter().enumerate() {
        match shared.backend.port_forward(&req.pod_id, p) {
            Ok(s) => {
                if let Ok(r) = s.try_clone_conn() {
                    pumps.push(pump(r, ch.clone(), 2 * i as u8));
                }
                targets.push(Some(s));
            }
            Err(e) => {
                let msg = format!("error forwarding port {p} to pod {}: {e}", req.pod_id);
                let _ = ch.send(2 * i as u8 + 1, msg.as_bytes());
                targets.push(None);
            }
        }
    }
    let writers: Vec<Option<Box<dyn PortConn>>> = targets
        .iter()
        .map(|t| t.as_ref().and_then(|s| s.try_clone_conn().ok()))
        .collect();
    let mut receiver = conn.receiver;
    let input = std::thread::spawn(move || {
        let mut writers = writers;
        loop {
            match ws::next_channel_message(&mut receiver) {
                Ok(ChannelMessage::Data(c, d)) if c % 2 == 0 => {
                    if let Some(Some(w)) = writers.get_mut(c as usize / 2) {
                        if w.write_all(&d).is_err() {
                            let _ = w.shutdown_conn(Shutdown::Both);
                        }
                    }
                }
                Ok(ChannelMessage::Closed(c)) if c % 2 == 0 => {
                    if let Some(Some(w)) = writers.get(c as usize / 2) {
                        let _ = w.shutdown_conn(Shutdown::Write);
                    }
                }
                Ok(ChannelMessage::Data(..)) | Ok(ChannelMessage::Closed(_)) => {}
                Ok(ChannelMessage::End) | Err(_) => {
                    for w in writers.iter().flatten() {
                        let _ = w.shutdown_conn(Shutdown::Both);
                    }
                    return;
                }
            }
        }
    });
    // Every port's connection ended (or the client left, which ends them).
    for p in pumps {
        let _ = p.join();
    }
    drop(targets);
    finish(&conn.sender, sock, input);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_request_or_the_query() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let req = PortForwardRequest {
            pod_id: "p".into(),
            ports: vec![80],
        };
        assert_eq!(forward_ports(&req, &q(&[("port", "9")])).unwrap(), vec![80]);
        let req = PortForwardRequest {
            pod_id: "p".into(),
            ports: vec![],
        };
        assert_eq!(
            forward_ports(&req, &q(&[("port", "9,10"), ("port", "11")])).unwrap(),
            vec![9, 10, 11]
        );
        assert!(forward_ports(&req, &q(&[])).unwrap_err().contains("required"));
        assert!(forward_ports(&req, &q(&[("port", "0")])).is_err());
        assert!(forward_ports(&req, &q(&[("port", "x")])).is_err());
    }
}
