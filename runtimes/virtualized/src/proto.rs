//! What the shim (host) and the agent (guest) say to each other over the
//! virtio-serial port named [`PORT_NAME`].
//!
//! The channel is a byte stream of frames: a 4-byte big-endian length (of
//! what follows it), a 1-byte [`Kind`], then the payload. Control frames carry
//! one JSON [`Request`] (host to guest) or [`Event`] (guest to host). Data
//! frames carry a process's stdio: a 4-byte big-endian stream number
//! (0 is the container's process, `n` the `n`th exec) and the bytes. A data
//! frame with no bytes after the stream number closes that stream (stdin's
//! EOF, or the end of a process's output).
//!
//! Every request gets exactly one reply event (`Ok`, `Created`, `Error`);
//! `Ready` and `Exited` come unasked.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The virtserialport's `name=`; the guest finds its device by it under
/// `/sys/class/virtio-ports/*/name`.
pub const PORT_NAME: &str = "org.ociharness.agent";

/// The largest frame either side accepts: a bigger length is a corrupt or
/// hostile stream, not a message.
pub const MAX_FRAME: usize = 1 << 20;

/// Stream number of the container's own process.
pub const INIT_STREAM: u32 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Control = 0,
    Stdin = 1,
    Stdout = 2,
    Stderr = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Control,
            1 => Kind::Stdin,
            2 => Kind::Stdout,
            3 => Kind::Stderr,
            _ => return None,
        })
    }
}

/// Host to guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Create the container from the bundle packed at `/run/bundle`; its
    /// process waits for `Start`. `terminal` gives it a pseudo-terminal whose
    /// traffic rides on stream 0 (Stdin in, Stdout out).
    ///
    /// A pod's VM holds several containers: the first is created from
    /// `/run/bundle` on stream 0; each further one (`sandbox` names the
    /// first) from the bundle a [`Request::Member`] unpacked, on a stream of
    /// its own, and it joins the namespaces of the first wherever its config
    /// names a namespace by path (the host's paths mean nothing in here).
    Create {
        id: String,
        terminal: bool,
        /// Initial window size (rows, columns) when `terminal`.
        size: Option<(u16, u16)>,
        #[serde(default)]
        stream: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<String>,
    },
    /// Start the container's process (`container`: which one; none is the
    /// guest's first).
    Start {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// Signal the container's process (`all`: every process in it).
    Kill {
        signal: i32,
        all: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// Run another process (an OCI `process` object) in the container on
    /// stream `stream`.
    Exec {
        stream: u32,
        process: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// A further container of the pod: its bundle's archive (packed under
    /// [`member_bundle`]) follows as data frames on [`BUNDLE_STREAM`],
    /// closed by an empty one; the agent unpacks it and replies `Ok`.
    Member { id: String },
    /// Forget a further container whose process ended: its state in the
    /// guest and its unpacked bundle go.
    Delete { container: String },
    /// Connect to TCP `port` on the loopback address of the container's
    /// network namespace; the connection's bytes ride on `stream` (Stdin
    /// in, Stdout out; an empty Stdin frame half-closes it), and `Exited`
    /// comes when the other end closes it.
    Connect {
        stream: u32,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// Signal the process running on `stream` (an exec's).
    Signal { stream: u32, signal: i32 },
    /// A terminal's new window size.
    Resize { stream: u32, rows: u16, cols: u16 },
    /// For a guest restored from a template: the bundle's archive (newc
    /// cpio of `/run/bundle`, as the initramfs would have held it) follows
    /// as Stdin data frames on [`BUNDLE_STREAM`], closed by an empty one.
    /// The agent unpacks it, sets the clock to the host's (`realtime_ns`
    /// since the epoch: the template's clock stopped when it was saved) and
    /// mixes `entropy` into the random pool (every clone of a template
    /// starts with the same pool), then replies `Ok`.
    Bundle { realtime_ns: u64, entropy: Vec<u8> },
    /// Power the guest off; no reply is owed (the channel closes).
    Shutdown,
}

/// The stream the bundle's archive travels on after [`Request::Bundle`] or
/// [`Request::Member`].
pub const BUNDLE_STREAM: u32 = u32::MAX;

/// Where the guest holds the bundle of the further container `id` of a pod.
pub fn member_bundle(id: &str) -> String {
    format!("/run/bundles/{id}")
}

/// Guest to host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The agent is up and listening; where the boot's time went, in the
    /// guest's clock (`CLOCK_BOOTTIME` milliseconds).
    Ready(GuestBoot),
    /// `Create` done: the container's process, as the guest numbers it.
    Created { pid: i32 },
    /// Any other request done.
    Ok,
    /// A request failed; `message` names what and why.
    Error { message: String },
    /// A process on `stream` ended.
    Exited { stream: u32, status: ExitStatus },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestBoot {
    /// `uname -r` of the guest.
    pub kernel: String,
    /// Guest uptime when the agent began (the kernel's share of the boot).
    pub agent_start_ms: u64,
    /// Time the agent spent loading kernel modules.
    pub modules_ms: u64,
    /// Guest uptime when the agent sent `Ready`.
    pub ready_ms: u64,
}

/// How a process ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The shell's convention: the code, or 128 + the signal.
    pub fn as_shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Control(Vec<u8>),
    Data { kind: Kind, stream: u32, bytes: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("agent channel: {0}")]
    Io(#[from] io::Error),
    #[error("agent channel: frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLong(usize),
    #[error("agent channel: unknown frame kind {0}")]
    BadKind(u8),
    #[error("agent channel: {kind:?} frame of {len} bytes is too short for its stream number")]
    Short { kind: Kind, len: usize },
    #[error("agent channel: control message {text:?}: {reason}")]
    BadMessage { text: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn write_raw(w: &mut impl Write, kind: Kind, head: &[u8], body: &[u8]) -> Result<()> {
    let len = 1 + head.len() + body.len();
    if len > MAX_FRAME {
        return Err(Error::TooLong(len));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(head);
    buf.extend_from_slice(body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Writes one control message (a [`Request`] or an [`Event`]).
pub fn write_message<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<()> {
    let text = serde_json::to_vec(msg).map_err(|e| Error::BadMessage {
        text: String::new(),
        reason: e.to_string(),
    })?;
    write_raw(w, Kind::Control, &[], &text)
}

/// Writes stdio bytes on `stream`, split into frames under the limit; an
/// empty `bytes` closes the stream.
pub fn write_data(w: &mut impl Write, kind: Kind, stream: u32, bytes: &[u8]) -> Result<()> {
    let room = MAX_FRAME - 5;
    if bytes.is_empty() {
        return write_raw(w, kind, &stream.to_be_bytes(), &[]);
    }
    for chunk in bytes.chunks(room) {
        write_raw(w, kind, &stream.to_be_bytes(), chunk)?;
    }
    Ok(())
}

/// Reads one frame; `Ok(None)` at a clean end of stream (between frames).
pub fn read_frame(r: &mut impl Read) -> Result<Option<Frame>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(Error::TooLong(len));
    }
    if len == 0 {
        return Err(Error::BadKind(0xff));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    let kind = Kind::from_u8(buf[0]).ok_or(Error::BadKind(buf[0]))?;
    if kind == Kind::Control {
        buf.remove(0);
        return Ok(Some(Frame::Control(buf)));
    }
    if len < 5 {
        return Err(Error::Short { kind, len });
    }
    let stream = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    Ok(Some(Frame::Data {
        kind,
        stream,
        bytes: buf.split_off(5),
    }))
}

/// Decodes a control frame's payload.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| Error::BadMessage {
        text: String::from_utf8_lossy(payload).chars().take(200).collect(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_data_round_trip_in_order() {
        let mut wire = Vec::new();
        write_message(
            &mut wire,
            &Request::Kill {
                signal: 15,
                all: false,
                container: None,
            },
        )
        .unwrap();
        write_data(&mut wire, Kind::Stdout, 3, b"hello").unwrap();
        write_data(&mut wire, Kind::Stdin, 0, b"").unwrap();
        write_message(
            &mut wire,
            &Event::Exited {
                stream: 0,
                status: ExitStatus::Signal(9),
            },
        )
        .unwrap();
        let mut r = wire.as_slice();
        let Some(Frame::Control(p)) = read_frame(&mut r).unwrap() else {
            panic!()
        };
        assert_eq!(
            decode::<Request>(&p).unwrap(),
            Request::Kill {
                signal: 15,
                all: false,
                container: None
            }
        );
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame::Data {
                kind: Kind::Stdout,
                stream: 3,
                bytes: b"hello".to_vec()
            })
        );
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame::Data {
                kind: Kind::Stdin,
                stream: 0,
                bytes: vec![]
            })
        );
        let Some(Frame::Control(p)) = read_frame(&mut r).unwrap() else {
            panic!()
        };
        let ev: Event = decode(&p).unwrap();
        assert_eq!(
            ev,
            Event::Exited {
                stream: 0,
                status: ExitStatus::Signal(9)
            }
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn large_output_is_split_under_the_limit() {
        let mut wire = Vec::new();
        let big = vec![7u8; MAX_FRAME * 2 + 10];
        write_data(&mut wire, Kind::Stderr, 1, &big).unwrap();
        let mut r = wire.as_slice();
        let mut got = Vec::new();
        while let Some(Frame::Data { bytes, .. }) = read_frame(&mut r).unwrap() {
            got.extend(bytes);
        }
        assert_eq!(got, big);
    }

    #[test]
    fn a_hostile_length_or_kind_is_refused() {
        let wire = [0xffu8, 0xff, 0xff, 0xff, 0];
        assert!(matches!(read_frame(&mut &wire[..]), Err(Error::TooLong(_))));
        let wire = [0u8, 0, 0, 1, 9];
        assert!(matches!(read_frame(&mut &wire[..]), Err(Error::BadKind(9))));
        let wire = [0u8, 0, 0, 3, 2, 0, 0];
        assert!(matches!(read_frame(&mut &wire[..]), Err(Error::Short { .. })));
        // A truncated frame is an error, not a clean end.
        let wire = [0u8, 0, 0, 9, 0, b'{'];
        assert!(read_frame(&mut &wire[..]).is_err());
    }

    #[test]
    fn a_single_container_request_reads_as_it_did_before_pods() {
        let r: Request = serde_json::from_str(r#"{"type":"start"}"#).unwrap();
        assert_eq!(r, Request::Start { container: None });
        let r: Request = serde_json::from_str(r#"{"type":"create","id":"c","terminal":false,"size":null}"#).unwrap();
        assert_eq!(
            r,
            Request::Create {
                id: "c".into(),
                terminal: false,
                size: None,
                stream: 0,
                sandbox: None
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Start { container: None }).unwrap(),
            r#"{"type":"start"}"#
        );
    }

    #[test]
    fn exit_status_follows_the_shell_convention() {
        assert_eq!(ExitStatus::Code(3).as_shell_code(), 3);
        assert_eq!(ExitStatus::Signal(9).as_shell_code(), 137);
        let j = serde_json::to_string(&ExitStatus::Signal(15)).unwrap();
        assert_eq!(j, r#"{"signal":15}"#);
    }
}
