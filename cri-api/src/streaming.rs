//! The streams behind CRI `Exec`, `Attach` and `PortForward`: the URL those
//! calls return is a WebSocket (RFC 6455) endpoint that carries one of the
//! Kubernetes channel protocols. Both halves live here: the server half the
//! `cri` streaming server uses, and the client half `harness cri` uses to
//! test any runtime's streaming server.
//!
//! I/O is blocking std: a connection is a reader half (one thread reads,
//! answering pings as it goes) and a [`Sender`] any thread may write through.
//!
//! Channel protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary
//! message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error
//! (a JSON `metav1.Status` once the command ended), 4 resize (JSON
//! `{"Width","Height"}`); v5 adds 255, "close channel N", so a client can end
//! stdin. Port forwarding over WebSocket uses channels 2i (data) and 2i+1
//! (error) for the request's i-th port; the server's first message on each
//! starts with the port as two little-endian bytes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha1::Digest;

/// What RFC 6455 appends to Sec-WebSocket-Key before hashing it.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest message either half accepts (fragments included).
pub const MAX_MESSAGE: usize = 16 << 20;

/// The largest request or response head (request line and headers).
const MAX_HEAD: usize = 16 << 10;

pub mod opcode {
    pub const CONTINUATION: u8 = 0;
    pub const TEXT: u8 = 1;
    pub const BINARY: u8 = 2;
    pub const CLOSE: u8 = 8;
    pub const PING: u8 = 9;
    pub const PONG: u8 = 10;
}

/// Channel numbers of the exec and attach protocols.
pub mod channel {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const ERROR: u8 = 3;
    pub const RESIZE: u8 = 4;
    /// v5 only: the message's second byte names a channel the sender closed.
    pub const CLOSE: u8 = 255;
}

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
/// What exec and attach clients offer and servers accept, best first.
pub const EXEC_PROTOCOLS: [&str; 2] = [V5, V4];
/// What port-forward servers accept ("" is a client that names none).
pub const PORT_FORWARD_PROTOCOLS: [&str; 2] = [V4, ""];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("websocket I/O: {0}")]
    Io(#[from] io::Error),
    #[error("websocket handshake: {0}")]
    Handshake(String),
    #[error("websocket protocol: {0}")]
    Protocol(String),
    #[error("stream URL {url:?}: {reason}")]
    Url { url: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut out));
    if filled.is_err() {
        // No /dev/urandom: the clock is what is left; masks only need to
        // differ, they protect proxies, not secrets.
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        for b in out.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    out
}

/// Masking keys for a client's frames: xorshift seeded from /dev/urandom.
struct MaskKeys(u64);

impl MaskKeys {
    fn new() -> MaskKeys {
        MaskKeys(u64::from_le_bytes(random_bytes::<8>()) | 1)
    }
    fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x as u32).to_le_bytes()
    }
}

/// One frame on the wire: the header, then the payload (masked with `mask`
/// when given, as every client-to-server frame must be).
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    /// Unmasked.
    pub payload: Vec<u8>,
}

/// Reads one frame; payloads over `max` bytes are a protocol error.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Frame> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h)?;
    if h[0] & 0x70 != 0 {
        return Err(Error::Protocol(
            "reserved bits set, but no extension was negotiated".into(),
        ));
    }
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u16::from_be_bytes(b) as u64
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            let n = u64::from_be_bytes(b);
            if n >> 63 != 0 {
                return Err(Error::Protocol("64-bit frame length with its top bit set".into()));
            }
            n
        }
        n => n as u64,
    };
    if opcode >= 8 && (len > 125 || !fin) {
        return Err(Error::Protocol(format!(
            "control frame (opcode {opcode}) fragmented or over 125 bytes ({len})"
        )));
    }
    if len > max as u64 {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes is over the {max}-byte limit"
        )));
    }
    let mut key = [0u8; 4];
    if masked {
        r.read_exact(&mut key)?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Ok(Frame {
        fin,
        opcode,
        masked,
        payload,
    })
}

/// Which end of the connection we are: clients mask, servers do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The writing half; shared by every thread that sends.
pub struct Sender {
    inner: Mutex<SenderState>,
}

struct SenderState {
    w: Box<dyn Write + Send>,
    masks: Option<MaskKeys>,
    closed: bool,
}

impl Sender {
    fn new(w: Box<dyn Write + Send>, role: Role) -> Sender {
        Sender {
            inner: Mutex::new(SenderState {
                w,
                masks: (role == Role::Client).then(MaskKeys::new),
                closed: false,
            }),
        }
    }

    /// Sends one unfragmented frame. After a close frame nothing more goes.
    pub fn send(&self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if s.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "websocket already closed"));
        }
        let mask = s.masks.as_mut().map(MaskKeys::next);
        let frame = encode_frame(true, opcode, payload, mask);
        if opcode == opcode::CLOSE {
            s.closed = true;
        }
        s.w.write_all(&frame)?;
        s.w.flush()
    }

    /// Sends a message as several frames of at most `chunk` bytes.
    pub fn send_fragmented(&self, opcode: u8, payload: &[u8], chunk: usize) -> io::Result<()> {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if s.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "websocket already closed"));
        }
        let parts: Vec<&[u8]> = payload.chunks(chunk.max(1)).collect();
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 { opcode } else { opcode::CONTINUATION };
            let mask = s.masks.as_mut().map(MaskKeys::next);
            let frame = encode_frame(i == last, op, part, mask);
            s.w.write_all(&frame)?;
        }
        s.w.flush()
    }

    pub fn binary(&self, data: &[u8]) -> io::Result<()> {
        self.send(opcode::BINARY, data)
    }

    pub fn ping(&self, data: &[u8]) -> io::Result<()> {
        self.send(opcode::PING, data)
    }

    /// Sends a close frame (once; later calls do nothing).
    pub fn close(&self, code: u16, reason: &str) -> io::Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
        self.send(opcode::CLOSE, &payload)
    }

    pub fn is_closed(&self) -> bool {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).closed
    }
}

/// A complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    /// The peer's close frame: status code (when it sent one) and reason.
    Close(Option<u16>, String),
}

/// The reading half: reassembles fragments, answers pings, echoes close.
pub struct Receiver {
    r: BufReader<Box<dyn Read + Send>>,
    sender: Arc<Sender>,
    role: Role,
    done: bool,
}

impl Receiver {
    /// The next message; `None` once the peer closed (after its Close).
    pub fn recv(&mut self) -> Result<Option<Message>> {
        if self.done {
            return Ok(None);
        }
        let mut partial: Option<(u8, Vec<u8>)> = None;
        loop {
            let f = match read_frame(&mut self.r, MAX_MESSAGE) {
                Ok(f) => f,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof && partial.is_none() => {
                    // The peer went without a close frame.
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            match (self.role, f.masked) {
                (Role::Server, false) => return Err(Error::Protocol("a client frame was not masked".into())),
                (Role::Client, true) => return Err(Error::Protocol("a server frame was masked".into())),
                _ => {}
            }
            match f.opcode {
                opcode::PING => {
                    // A pong after our close is not allowed: nothing to do then.
                    if !self.sender.is_closed() {
                        self.sender.send(opcode::PONG, &f.payload)?;
                    }
                }
                opcode::PONG => {}
                opcode::CLOSE => {
                    self.done = true;
                    let (code, reason) = match f.payload.len() {
                        0 => (None, String::new()),
                        1 => return Err(Error::Protocol("close frame with a 1-byte payload".into())),
                        _ => (
                            Some(u16::from_be_bytes([f.payload[0], f.payload[1]])),
                            String::from_utf8_lossy(&f.payload[2..]).into_owned(),
                        ),
                    };
                    // Echo it (RFC 6455 5.5.1); the peer may be gone already.
                    let _ = self.sender.close(code.unwrap_or(1000), "");
                    return Ok(Some(Message::Close(code, reason)));
                }
                opcode::TEXT | opcode::BINARY => {
                    if partial.is_some() {
                        return Err(Error::Protocol("a new message began inside a fragmented one".into()));
                    }
                    if f.fin {
                        return finish(f.opcode, f.payload).map(Some);
                    }
                    partial = Some((f.opcode, f.payload));
                }
                opcode::CONTINUATION => {
                    let Some((op, mut buf)) = partial.take() else {
                        return Err(Error::Protocol(
                            "continuation frame without a message to continue".into(),
                        ));
                    };
                    if buf.len() + f.payload.len() > MAX_MESSAGE {
                        return Err(Error::Protocol(format!(
                            "fragmented message over the {MAX_MESSAGE}-byte limit"
                        )));
                    }
                    buf.extend_from_slice(&f.payload);
                    if f.fin {
                        return finish(op, buf).map(Some);
                    }
                    partial = Some((op, buf));
                }
                other => return Err(Error::Protocol(format!("unknown opcode {other}"))),
            }
        }
    }
}

fn finish(op: u8, payload: Vec<u8>) -> Result<Message> {
    if op == opcode::TEXT {
        String::from_utf8(payload)
            .map(Message::Text)
            .map_err(|_| Error::Protocol("text message is not UTF-8".into()))
    } else {
        Ok(Message::Binary(payload))
    }
}

/// An open WebSocket: the negotiated subprotocol and both halves.
pub struct Conn {
    pub protocol: String,
    pub sender: Arc<Sender>,
    pub receiver: Receiver,
}

impl Conn {
    fn new(r: BufReader<Box<dyn Read + Send>>, w: Box<dyn Write + Send>, role: Role, protocol: String) -> Conn {
        let sender = Arc::new(Sender::new(w, role));
        Conn {
            protocol,
            receiver: Receiver {
                r,
                sender: sender.clone(),
                role,
                done: false,
            },
            sender,
        }
    }
}

/// A request or response head: the first line and the headers.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub first_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated token of every header named `name`.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

fn read_head(r: &mut impl BufRead) -> Result<Head> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r.by_ref().take((MAX_HEAD + 1 - total) as u64).read_line(&mut line)?;
        if n == 0 {
            return Err(Error::Handshake("connection closed inside the HTTP head".into()));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(Error::Handshake(format!("HTTP head over {MAX_HEAD} bytes")));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut it = lines.into_iter();
    let first_line = it.next().unwrap_or_default();
    let mut headers = Vec::new();
    for l in it {
        let Some((k, v)) = l.split_once(':') else {
            return Err(Error::Handshake(format!("malformed header line {l:?}")));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Head { first_line, headers })
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP request a streaming server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    pub head: Head,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query's name=value pairs, decoded, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    /// An `Upgrade: websocket` request.
    pub fn is_websocket(&self) -> bool {
        self.head
            .tokens("Upgrade")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("websocket"))
            && self
                .head
                .tokens("Connection")
                .iter()
                .any(|t| t.eq_ignore_ascii_case("upgrade"))
    }
}

/// A connection a server accepted, its request read and not yet answered.
pub struct Incoming {
    pub request: Request,
    r: BufReader<Box<dyn Read + Send>>,
    w: Box<dyn Write + Send>,
}

impl Incoming {
    /// Reads the request from a connection's two halves.
    pub fn read(r: Box<dyn Read + Send>, w: Box<dyn Write + Send>) -> Result<Incoming> {
        let mut r = BufReader::new(r);
        let head = read_head(&mut r)?;
        let mut parts = head.first_line.split_whitespace();
        let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Handshake(format!(
                "malformed request line {:?}",
                head.first_line
            )));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(Error::Handshake(format!("unsupported HTTP version {version:?}")));
        }
        Ok(Incoming {
            request: Request {
                method: method.to_string(),
                target: target.to_string(),
                head: head.clone(),
            },
            r,
            w,
        })
    }

    pub fn from_tcp(s: TcpStream) -> Result<Incoming> {
        let w = s.try_clone()?;
        Incoming::read(Box::new(s), Box::new(w))
    }

    /// Answers with a plain HTTP response and closes.
    pub fn respond(mut self, status: u16, reason: &str, body: &str) -> io::Result<()> {
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        self.w.write_all(resp.as_bytes())?;
        self.w.flush()
    }

    /// Completes the WebSocket handshake with the first subprotocol the
    /// client offered that is in `supported` ("" in it accepts a client
    /// that offers none). A request that cannot be upgraded is answered
    /// with 400 and the reason, and is an error.
    pub fn accept(mut self, supported: &[&str]) -> Result<Conn> {
        match self.check(supported) {
            Ok((accept, protocol)) => {
                let mut resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                );
                if !protocol.is_empty() {
                    resp.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
                }
                resp.push_str("\r\n");
                self.w.write_all(resp.as_bytes())?;
                self.w.flush()?;
                Ok(Conn::new(self.r, self.w, Role::Server, protocol))
            }
            Err(reason) => {
                let _ = self.respond(400, "Bad Request", &reason);
                Err(Error::Handshake(reason))
            }
        }
    }

    fn check(&self, supported: &[&str]) -> std::result::Result<(String, String), String> {
        let req = &self.request;
        if req.method != "GET" {
            return Err(format!("a WebSocket upgrade must be a GET, not {}", req.method));
        }
        if !req.is_websocket() {
            return Err("not a WebSocket upgrade (SPDY is not supported)".into());
        }
        if req.head.header("Sec-WebSocket-Version").map(str::trim) != Some("13") {
            return Err("Sec-WebSocket-Version must be 13".into());
        }
        let key = req.head.header("Sec-WebSocket-Key").unwrap_or("").trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap_or_default();
        if decoded.len() != 16 {
            return Err("Sec-WebSocket-Key must be 16 bytes in base64".into());
        }
        let offered = req.head.tokens("Sec-WebSocket-Protocol");
        let protocol = if offered.is_empty() {
            if !supported.contains(&"") {
                return Err(format!("a subprotocol is required, one of {supported:?}"));
            }
            String::new()
        } else {
            match offered.iter().find(|p| supported.contains(&p.as_str())) {
                Some(p) => p.clone(),
                None => {
                    return Err(format!(
                        "none of the subprotocols {offered:?} is supported ({supported:?})"
                    ))
                }
            }
        };
        Ok((accept_key(key), protocol))
    }
}

/// Parses `http://HOST:PORT/PATH?QUERY` (or `ws://`): (host:port, target).
pub fn split_url(url: &str) -> Result<(String, String)> {
    let bad = |reason: &str| Error::Url {
        url: url.into(),
        reason: reason.into(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| bad("only http:// and ws:// are supported"))?;
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    let after_host = authority.rsplit_once(']').map(|(_, rest)| rest).unwrap_or(authority);
    let host_port = if after_host.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((host_port, target.to_string()))
}

/// Opens a WebSocket to `url` offering `protocols` (best first).
pub fn connect(url: &str, protocols: &[&str]) -> Result<Conn> {
    let (addr, target) = split_url(url)?;
    let s = TcpStream::connect(&addr)?;
    s.set_nodelay(true)?;
    let w = s.try_clone()?;
    client_handshake(Box::new(s), Box::new(w), &addr, &target, protocols)
}

/// The client's handshake over an open connection.
pub fn client_handshake(
    r: Box<dyn Read + Send>,
    mut w: Box<dyn Write + Send>,
    host: &str,
    target: &str,
    protocols: &[&str],
) -> Result<Conn> {
    let key = base64::engine::general_purpose::STANDARD.encode(random_bytes::<16>());
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        req.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", ")));
    }
    req.push_str("\r\n");
    w.write_all(req.as_bytes())?;
    w.flush()?;
    let mut r = BufReader::new(r);
    let head = read_head(&mut r)?;
    let status = head.first_line.split_whitespace().nth(1).unwrap_or("");
    if status != "101" {
        let len: usize = head
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .min(4096);
        let mut body = vec![0u8; len];
        let _ = r.read_exact(&mut body);
        return Err(Error::Handshake(format!(
            "{target}: {}: {}",
            head.first_line,
            String::from_utf8_lossy(&body).trim()
        )));
    }
    if head.header("Sec-WebSocket-Accept").map(str::trim) != Some(accept_key(&key).as_str()) {
        return Err(Error::Handshake("Sec-WebSocket-Accept does not match our key".into()));
    }
    let protocol = head.header("Sec-WebSocket-Protocol").unwrap_or("").trim().to_string();
    if !protocol.is_empty() && !protocols.contains(&protocol.as_str()) {
        return Err(Error::Handshake(format!(
            "server chose subprotocol {protocol:?}, which we did not offer"
        )));
    }
    Ok(Conn::new(r, w, Role::Client, protocol))
}

// ---- the channel protocols ----

/// Empty JSON object (`metav1.Status.metadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMeta {}

/// `metav1.StatusCause`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    #[serde(rename = "reason", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `metav1.StatusDetails` (the part streams use).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

/// `metav1.Status`: what the error channel carries when a stream ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i32,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

pub const STATUS_SUCCESS: &str = "Success";
pub const STATUS_FAILURE: &str = "Failure";
pub const REASON_NON_ZERO_EXIT: &str = "NonZeroExitCode";
pub const CAUSE_EXIT_CODE: &str = "ExitCode";

impl Status {
    pub fn success() -> Status {
        Status {
            status: STATUS_SUCCESS.into(),
            ..Default::default()
        }
    }

    /// How a command's exit code travels: Success for 0, else Failure with
    /// reason NonZeroExitCode and the code as an ExitCode cause.
    pub fn exit(code: i32) -> Status {
        if code == 0 {
            return Status::success();
        }
        Status {
            status: STATUS_FAILURE.into(),
            message: format!("command terminated with non-zero exit code: exit status {code}"),
            reason: REASON_NON_ZERO_EXIT.into(),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    kind: CAUSE_EXIT_CODE.into(),
                    message: code.to_string(),
                    field: String::new(),
                }],
            }),
            ..Default::default()
        }
    }

    /// A failure that is not the command's (it could not be run, say).
    pub fn internal(message: &str) -> Status {
        Status {
            status: STATUS_FAILURE.into(),
            message: format!("Internal error occurred: {message}"),
            reason: "InternalError".into(),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    message: message.into(),
                    ..Default::default()
                }],
            }),
            code: 500,
            ..Default::default()
        }
    }

    /// The command's exit code, when this status reports one.
    pub fn exit_code(&self) -> Option<i32> {
        if self.status == STATUS_SUCCESS {
            return Some(0);
        }
        if self.reason != REASON_NON_ZERO_EXIT {
            return None;
        }
        self.details
            .as_ref()?
            .causes
            .iter()
            .find(|c| c.kind == CAUSE_EXIT_CODE)
            .and_then(|c| c.message.trim().parse().ok())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The resize channel's message (`remotecommand.TerminalSize`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Sends `[channel] + data` messages.
#[derive(Clone)]
pub struct ChannelSender {
    pub ws: Arc<Sender>,
}

impl ChannelSender {
    pub fn send(&self, channel: u8, data: &[u8]) -> io::Result<()> {
        let mut m = Vec::with_capacity(data.len() + 1);
        m.push(channel);
        m.extend_from_slice(data);
        self.ws.binary(&m)
    }

    /// v5: tells the peer `channel` is done.
    pub fn close_channel(&self, channel: u8) -> io::Result<()> {
        self.ws.binary(&[channel::CLOSE, channel])
    }

    /// A `Write` that sends each write as one message on `channel`.
    pub fn writer(&self, channel: u8) -> ChannelWriter {
        ChannelWriter {
            sender: self.clone(),
            channel,
        }
    }
}

pub struct ChannelWriter {
    sender: ChannelSender,
    channel: u8,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sender.send(self.channel, buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A channel message (empty messages and those naming no channel are
/// dropped, as kubelet's server sends one empty message to say "ready").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    Data(u8, Vec<u8>),
    /// v5: the peer closed this channel.
    Closed(u8),
    /// The WebSocket closed.
    End,
}

/// Reads channel messages off a receiver.
pub fn next_channel_message(r: &mut Receiver) -> Result<ChannelMessage> {
    loop {
        match r.recv()? {
            None | Some(Message::Close(..)) => return Ok(ChannelMessage::End),
            Some(Message::Text(_)) => {
                return Err(Error::Protocol(
                    "text message on a binary channel protocol (base64 is not supported)".into(),
                ))
            }
            Some(Message::Binary(m)) => match m.split_first() {
                None => continue,
                Some((&channel::CLOSE, rest)) => match rest.first() {
                    Some(&c) => return Ok(ChannelMessage::Closed(c)),
                    None => continue,
                },
                Some((&c, rest)) => return Ok(ChannelMessage::Data(c, rest.to_vec())),
            },
        }
    }
}

/// What an exec or attach produced, as a client saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The error channel's status; None when the stream ended without one.
    pub status: Option<Status>,
}

/// The client half of exec and attach.
pub struct StreamClient {
    pub conn: Conn,
    channels: ChannelSender,
}

/// What a [`StreamClient`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Status(Status),
    End,
}

impl StreamClient {
    /// Connects to an Exec or Attach URL offering v5 then v4.
    pub fn connect(url: &str) -> Result<StreamClient> {
        StreamClient::connect_with(url, &EXEC_PROTOCOLS)
    }

    pub fn connect_with(url: &str, protocols: &[&str]) -> Result<StreamClient> {
        let conn = connect(url, protocols)?;
        let channels = ChannelSender {
            ws: conn.sender.clone(),
        };
        Ok(StreamClient { conn, channels })
    }

    pub fn protocol(&self) -> &str {
        &self.conn.protocol
    }

    pub fn sender(&self) -> ChannelSender {
        self.channels.clone()
    }

    pub fn stdin(&self, data: &[u8]) -> io::Result<()> {
        self.channels.send(channel::STDIN, data)
    }

    /// Ends stdin (v5 only: v4 has no way to say it).
    pub fn close_stdin(&self) -> Result<()> {
        if self.conn.protocol != V5 {
            return Err(Error::Protocol(format!(
                "{:?} cannot close stdin; only {V5} can",
                self.conn.protocol
            )));
        }
        Ok(self.channels.close_channel(channel::STDIN)?)
    }

    pub fn resize(&self, size: TerminalSize) -> io::Result<()> {
        let json = serde_json::to_vec(&size).map_err(io::Error::other)?;
        self.channels.send(channel::RESIZE, &json)
    }

    pub fn next_event(&mut self) -> Result<Event> {
        loop {
            match next_channel_message(&mut self.conn.receiver)? {
                ChannelMessage::End => return Ok(Event::End),
                ChannelMessage::Closed(_) => continue,
                ChannelMessage::Data(channel::STDOUT, d) => return Ok(Event::Stdout(d)),
                ChannelMessage::Data(channel::STDERR, d) => return Ok(Event::Stderr(d)),
                ChannelMessage::Data(channel::ERROR, d) => {
                    let status = serde_json::from_slice(&d).map_err(|e| {
                        Error::Protocol(format!(
                            "error channel message {:?} is not a Status: {e}",
                            String::from_utf8_lossy(&d)
                        ))
                    })?;
                    return Ok(Event::Status(status));
                }
                ChannelMessage::Data(..) => continue,
            }
        }
    }

    /// Sends `stdin` (then closes it, on v5) from another thread, and
    /// collects output until the stream ends.
    pub fn run(mut self, stdin: Option<Vec<u8>>) -> Result<Output> {
        let feeder = stdin.map(|data| {
            let ch = self.channels.clone();
            let v5 = self.conn.protocol == V5;
            std::thread::spawn(move || {
                if !data.is_empty() {
                    ch.send(channel::STDIN, &data)?;
                }
                if v5 {
                    ch.close_channel(channel::STDIN)?;
                }
                Ok::<(), io::Error>(())
            })
        });
        let mut out = Output::default();
        loop {
            match self.next_event()? {
                Event::Stdout(d) => out.stdout.extend_from_slice(&d),
                Event::Stderr(d) => out.stderr.extend_from_slice(&d),
                Event::Status(s) => out.status = Some(s),
                Event::End => break,
            }
        }
        if let Some(f) = feeder {
            // A server that ended before reading stdin makes sending fail:
            // that is its business, the output is what counts.
            let _ = f.join();
        }
        Ok(out)
    }
}

/// What a port-forward client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent {
    /// Data from the pod's port (the request's `index`-th).
    Data {
        index: usize,
        port: u16,
        data: Vec<u8>,
    },
    /// The server could not forward this port.
    Error {
        index: usize,
        port: u16,
        message: String,
    },
    End,
}

/// The client half of port forwarding over WebSocket.
pub struct PortForwardClient {
    pub conn: Conn,
    channels: ChannelSender,
    /// The port each channel announced (None until its first message).
    ports: Vec<Option<u16>>,
}

impl PortForwardClient {
    pub fn connect(url: &str) -> Result<PortForwardClient> {
        let conn = connect(url, &[V4])?;
        let channels = ChannelSender {
            ws: conn.sender.clone(),
        };
        Ok(PortForwardClient {
            conn,
            channels,
            ports: Vec::new(),
        })
    }

    /// Sends bytes to the request's `index`-th port.
    pub fn send(&self, index: usize, data: &[u8]) -> io::Result<()> {
        let ch = u8::try_from(index * 2)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("port index {index} out of range")))?;
        self.channels.send(ch, data)
    }

    pub fn sender(&self) -> ChannelSender {
        self.channels.clone()
    }

    /// The port the `index`-th pair announced, once it has.
    pub fn port(&self, index: usize) -> Option<u16> {
        self.ports.get(index * 2).copied().flatten()
    }

    pub fn next_event(&mut self) -> Result<PortEvent> {
        loop {
            let (ch, mut data) = match next_channel_message(&mut self.conn.receiver)? {
                ChannelMessage::End => return Ok(PortEvent::End),
                ChannelMessage::Closed(_) => continue,
                ChannelMessage::Data(c, d) => (c as usize, d),
            };
            if self.ports.len() <= ch {
                self.ports.resize(ch + 1, None);
            }
            let port = match self.ports[ch] {
                Some(p) => p,
                None => {
                    if data.len() < 2 {
                        return Err(Error::Protocol(format!(
                            "channel {ch}'s first message has no port prefix"
                        )));
                    }
                    let p = u16::from_le_bytes([data[0], data[1]]);
                    self.ports[ch] = Some(p);
                    data.drain(..2);
                    p
                }
            };
            if data.is_empty() {
                continue;
            }
            let index = ch / 2;
            return Ok(if ch % 2 == 0 {
                PortEvent::Data { index, port, data }
            } else {
                PortEvent::Error {
                    index,
                    port,
                    message: String::from_utf8_lossy(&data).into_owned(),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        // RFC 6455 section 1.3.
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn rfc_6455_frame_examples() {
        // Section 5.7: a single-frame unmasked "Hello", and the masked one.
        let hello = encode_frame(true, opcode::TEXT, b"Hello", None);
        assert_eq!(hello, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let masked = encode_frame(true, opcode::TEXT, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(
            masked,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        let f = read_frame(&mut Cursor::new(&masked), 1024).unwrap();
        assert!(f.fin && f.masked);
        assert_eq!(f.payload, b"Hello");
        // Fragmented "Hel" + "lo".
        let mut two = encode_frame(false, opcode::TEXT, b"Hel", None);
        two.extend(encode_frame(true, opcode::CONTINUATION, b"lo", None));
        assert_eq!(two, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
    }

    #[test]
    fn frame_lengths_at_the_encoding_boundaries() {
        for (len, header) in [(125usize, 2usize), (126, 4), (65535, 4), (65536, 10)] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = encode_frame(true, opcode::BINARY, &payload, None);
            assert_eq!(frame.len(), len + header, "length {len}");
            match header {
                2 => assert_eq!(frame[1], 125),
                4 => {
                    assert_eq!(frame[1], 126);
                    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]) as usize, len);
                }
                _ => {
                    assert_eq!(frame[1], 127);
                    assert_eq!(u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize, len);
                }
            }
            let masked = encode_frame(true, opcode::BINARY, &payload, Some([1, 2, 3, 4]));
            assert_eq!(masked.len(), len + header + 4);
            let back = read_frame(&mut Cursor::new(&masked), MAX_MESSAGE).unwrap();
            assert_eq!(back.payload, payload, "length {len}");
        }
        // Over the limit, and control frames that break the rules.
        let big = encode_frame(true, opcode::BINARY, &[0u8; 200], None);
        assert!(matches!(
            read_frame(&mut Cursor::new(&big), 100),
            Err(Error::Protocol(_))
        ));
        let long_ping = encode_frame(true, opcode::PING, &[0u8; 126], None);
        assert!(matches!(
            read_frame(&mut Cursor::new(&long_ping), 1000),
            Err(Error::Protocol(_))
        ));
        let split_ping = encode_frame(false, opcode::PING, b"x", None);
        assert!(matches!(
            read_frame(&mut Cursor::new(&split_ping), 1000),
            Err(Error::Protocol(_))
        ));
    }

    /// A receiver over `bytes`, replies going to a shared buffer.
    fn receiver(bytes: Vec<u8>, role: Role) -> (Receiver, Arc<Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Shared(Arc::new(Mutex::new(Vec::new())));
        let conn = Conn::new(
            BufReader::new(Box::new(Cursor::new(bytes))),
            Box::new(out.clone()),
            role,
            String::new(),
        );
        (conn.receiver, out.0)
    }

    #[test]
    fn receiver_reassembles_answers_pings_and_echoes_close() {
        let k = Some([9, 8, 7, 6]);
        let mut wire = encode_frame(false, opcode::BINARY, b"ab", k);
        wire.extend(encode_frame(true, opcode::PING, b"p", k));
        wire.extend(encode_frame(false, opcode::CONTINUATION, b"cd", k));
        wire.extend(encode_frame(true, opcode::CONTINUATION, b"e", k));
        wire.extend(encode_frame(true, opcode::TEXT, "é".as_bytes(), k));
        wire.extend(encode_frame(true, opcode::CLOSE, &[0x03, 0xe8, b'b', b'y'], k));
        let (mut r, out) = receiver(wire, Role::Server);
        assert_eq!(r.recv().unwrap(), Some(Message::Binary(b"abcde".to_vec())));
        assert_eq!(r.recv().unwrap(), Some(Message::Text("é".into())));
        assert_eq!(r.recv().unwrap(), Some(Message::Close(Some(1000), "by".into())));
        assert_eq!(r.recv().unwrap(), None);
        // The server answered the ping with an unmasked pong, then echoed close.
        let replies = out.lock().unwrap().clone();
        let mut c = Cursor::new(replies);
        let pong = read_frame(&mut c, 100).unwrap();
        assert_eq!(
            (pong.opcode, pong.masked, pong.payload),
            (opcode::PONG, false, b"p".to_vec())
        );
        let close = read_frame(&mut c, 100).unwrap();
        assert_eq!((close.opcode, close.payload), (opcode::CLOSE, vec![0x03, 0xe8]));
    }

    #[test]
    fn receiver_enforces_masking_by_role_and_fragment_order() {
        let (mut r, _) = receiver(encode_frame(true, opcode::BINARY, b"x", None), Role::Server);
        assert!(matches!(r.recv(), Err(Error::Protocol(m)) if m.contains("not masked")));
        let (mut r, _) = receiver(encode_frame(true, opcode::BINARY, b"x", Some([1; 4])), Role::Client);
        assert!(matches!(r.recv(), Err(Error::Protocol(m)) if m.contains("masked")));
        let (mut r, _) = receiver(encode_frame(true, opcode::CONTINUATION, b"x", None), Role::Client);
        assert!(matches!(r.recv(), Err(Error::Protocol(m)) if m.contains("continuation")));
        let mut wire = encode_frame(false, opcode::BINARY, b"x", None);
        wire.extend(encode_frame(true, opcode::BINARY, b"y", None));
        let (mut r, _) = receiver(wire, Role::Client);
        assert!(matches!(r.recv(), Err(Error::Protocol(m)) if m.contains("inside a fragmented")));
        // A peer that just goes is an end, not an error.
        let (mut r, _) = receiver(Vec::new(), Role::Client);
        assert_eq!(r.recv().unwrap(), None);
    }

    #[test]
    fn client_sender_masks_with_changing_keys() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let s = Sender::new(Box::new(W(buf.clone())), Role::Client);
        s.binary(b"same").unwrap();
        s.binary(b"same").unwrap();
        s.send_fragmented(opcode::BINARY, b"abcdefg", 3).unwrap();
        s.close(1000, "done").unwrap();
        assert!(s.binary(b"late").is_err());
        let bytes = buf.lock().unwrap().clone();
        let mut c = Cursor::new(bytes);
        let a = read_frame(&mut c, 100).unwrap();
        let b = read_frame(&mut c, 100).unwrap();
        assert!(a.masked && b.masked);
        assert_eq!(
            (a.payload.clone(), b.payload.clone()),
            (b"same".to_vec(), b"same".to_vec())
        );
        let raw = buf.lock().unwrap().clone();
        assert_ne!(raw[2..6], raw[12..16], "two frames with the same masking key");
        let parts: Vec<Frame> = (0..3).map(|_| read_frame(&mut c, 100).unwrap()).collect();
        assert_eq!(
            parts.iter().map(|f| (f.fin, f.opcode)).collect::<Vec<_>>(),
            vec![
                (false, opcode::BINARY),
                (false, opcode::CONTINUATION),
                (true, opcode::CONTINUATION)
            ]
        );
        let close = read_frame(&mut c, 100).unwrap();
        assert_eq!(close.opcode, opcode::CLOSE);
        assert_eq!(&close.payload[2..], b"done");
    }

    #[test]
    fn status_json_is_metav1_status() {
        let s = Status::exit(3);
        let v: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        assert_eq!(v["metadata"], serde_json::json!({}));
        assert_eq!(s.exit_code(), Some(3));
        assert_eq!(
            serde_json::to_string(&Status::success()).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        // What kubelet writes parses back to the same code.
        let kubelet = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 42], exit code 42","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}"#;
        let parsed: Status = serde_json::from_str(kubelet).unwrap();
        assert_eq!(parsed.exit_code(), Some(42));
        assert_eq!(Status::internal("boom").exit_code(), None);
        assert_eq!(
            serde_json::to_string(&TerminalSize { width: 80, height: 24 }).unwrap(),
            r#"{"Width":80,"Height":24}"#
        );
    }

    #[test]
    fn urls_and_queries() {
        assert_eq!(
            split_url("http://127.0.0.1:3456/exec/abc?x=1").unwrap(),
            ("127.0.0.1:3456".into(), "/exec/abc?x=1".into())
        );
        assert_eq!(split_url("ws://[::1]:9/a").unwrap(), ("[::1]:9".into(), "/a".into()));
        assert_eq!(split_url("http://host").unwrap(), ("host:80".into(), "/".into()));
        assert!(split_url("https://host/").is_err());
        let req = Request {
            method: "GET".into(),
            target: "/portforward/t?port=80&port=8080%2C9&x=a+b".into(),
            head: Head::default(),
        };
        assert_eq!(req.path(), "/portforward/t");
        assert_eq!(
            req.query(),
            vec![
                ("port".to_string(), "80".to_string()),
                ("port".into(), "8080,9".into()),
                ("x".into(), "a b".into())
            ]
        );
    }

    #[test]
    fn handshake_over_a_socket_pair_then_messages_both_ways() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let w = b.try_clone().unwrap();
            let inc = Incoming::read(Box::new(b), Box::new(w)).unwrap();
            assert_eq!(inc.request.path(), "/exec/tok");
            let mut conn = inc.accept(&EXEC_PROTOCOLS).unwrap();
            assert_eq!(conn.protocol, V4);
            let m = conn.receiver.recv().unwrap();
            conn.sender.binary(b"\x01pong").unwrap();
            m
        });
        let w = a.try_clone().unwrap();
        let mut conn = client_handshake(Box::new(a), Box::new(w), "x", "/exec/tok", &["v9.nope", V4]).unwrap();
        assert_eq!(conn.protocol, V4);
        conn.sender.binary(b"\x00ping").unwrap();
        assert_eq!(
            conn.receiver.recv().unwrap(),
            Some(Message::Binary(b"\x01pong".to_vec()))
        );
        assert_eq!(server.join().unwrap(), Some(Message::Binary(b"\x00ping".to_vec())));
    }

    #[test]
    fn handshake_refuses_unsupported_protocols_with_400() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let w = b.try_clone().unwrap();
            Incoming::read(Box::new(b), Box::new(w))
                .unwrap()
                .accept(&EXEC_PROTOCOLS)
                .map(|_| ())
        });
        let w = a.try_clone().unwrap();
        let e = client_handshake(Box::new(a), Box::new(w), "x", "/", &["base64.channel.k8s.io"])
            .err()
            .expect("handshake should fail");
        assert!(e.to_string().contains("400"), "{e}");
        assert!(e.to_string().contains("base64.channel.k8s.io"), "{e}");
        assert!(server.join().unwrap().is_err());
    }
}
