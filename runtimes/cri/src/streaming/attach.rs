//! Attach: the container's own stdio, which its monitor holds. The monitor
//! serves it on a unix stream socket, `STATE_DIR/attach`; every connection
//! is one attached client. Both ways, frames are a kind byte, a 4-byte
//! big-endian length, then the payload:
//!
//! - client to monitor: `STDIN` data, `RESIZE` (width, height: u16 BE
//!   each), `CLOSE_STDIN` (empty);
//! - monitor to client: `STDOUT` and `STDERR` data as the container writes
//!   it (a tty's output is `STDOUT`), then `EXIT` (the exit code, i32 BE)
//!   when it ends, and the monitor closes the connection.
//!
//! [`Hub`] is the monitor's half, [`connect`] the server's.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cri_api::streaming::TerminalSize;

use super::{AttachRequest, Exit, Process};

/// The socket's name in the container's state directory.
pub const SOCKET: &str = "attach";

pub mod kind {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const RESIZE: u8 = 4;
    pub const CLOSE_STDIN: u8 = 5;
    pub const EXIT: u8 = 6;
}

/// `dir/name` as a path short enough for a sockaddr_un however deep `dir`
/// is: through /proc/self/fd and an O_PATH descriptor of `dir`, which the
/// returned File keeps open (keep it until bind or connect returned).
pub fn short_socket_path(dir: &Path, name: &str) -> io::Result<(std::fs::File, PathBuf)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let p = PathBuf::from(format!("/proc/self/fd/{}/{name}", d.as_raw_fd()));
    Ok((d, p))
}

/// The largest frame either side accepts.
const MAX_FRAME: usize = 1 << 20;

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 5);
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// The next frame; None at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 5];
    match r.read_exact(&mut h[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut h[1..])?;
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("attach frame of {len} bytes"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((h[0], payload)))
}

/// The monitor's half: accepts attach clients, copies the container's
/// output to each, and their input to the container.
pub struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    stdin: Mutex<Option<Box<dyn Write + Send>>>,
    resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>,
    /// The first client to end its stdin (or leave) ends the container's.
    stdin_once: bool,
}

impl Hub {
    /// Listens on `state_dir/attach`. `stdin` is the container's stdin (None
    /// when the config did not ask for one); `resize` sets its terminal's size.
    pub fn listen(
        state_dir: &Path,
        stdin: Option<Box<dyn Write + Send>>,
        resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>,
        stdin_once: bool,
    ) -> io::Result<Arc<Hub>> {
        let _ = std::fs::remove_file(state_dir.join(SOCKET));
        let (_dir, path) = short_socket_path(state_dir, SOCKET)?;
        let listener = UnixListener::bind(&path)?;
        let hub = Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            stdin: Mutex::new(stdin),
            resize,
            stdin_once,
        });
        let h = hub.clone();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(c) = c else { continue };
                let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                if let Ok(w) = c.try_clone() {
                    h.clients.lock().unwrap_or_else(|p| p.into_inner()).push(w);
                }
                let h = h.clone();
                std::thread::spawn(move || h.client_input(c));
            }
        });
        Ok(hub)
    }

    fn end_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn client_input(&self, mut c: UnixStream) {
        loop {
            match read_frame(&mut c) {
                Ok(Some((kind::STDIN, data))) => {
                    let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(&data).and_then(|_| w.flush()).is_err() {
                            *stdin = None;
                        }
                    }
                }
                Ok(Some((kind::RESIZE, d))) if d.len() == 4 => {
                    if let Some(r) = &self.resize {
                        r(u16::from_be_bytes([d[0], d[1]]), u16::from_be_bytes([d[2], d[3]]));
                    }
                }
                Ok(Some((kind::CLOSE_STDIN, _))) => {
                    if self.stdin_once {
                        self.end_stdin();
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    if self.stdin_once {
                        self.end_stdin();
                    }
                    return;
                }
            }
        }
    }

    /// Copies container output to every attached client; a client that
    /// cannot keep up (5 s write timeout) is dropped.
    pub fn output(&self, kind: u8, data: &[u8]) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain_mut(|c| write_frame(c, kind, data).is_ok());
    }

    /// The container ended: tells every client, and closes them.
    pub fn exit(&self, code: i32) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        for c in clients.iter_mut() {
            let _ = write_frame(c, kind::EXIT, &code.to_be_bytes());
            let _ = c.shutdown(Shutdown::Both);
        }
        clients.clear();
    }
}

/// Framed stdin towards the monitor; dropping it closes the container's
/// stdin (when the container is stdin_once).
struct StdinWriter(UnixStream);

impl Write for StdinWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_frame(&mut self.0, kind::STDIN, buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for StdinWriter {
    fn drop(&mut self) {
        let _ = write_frame(&mut self.0, kind::CLOSE_STDIN, &[]);
    }
}

/// Attaches to the container whose monitor serves `state_dir/attach`.
pub fn connect(state_dir: &Path, req: &AttachRequest) -> io::Result<Process> {
    let (_dir, path) = short_socket_path(state_dir, SOCKET)?;
    let sock = UnixStream::connect(&path)?;
    let (out_r, mut out_w) = std::io::pipe()?;
    let (err_r, mut err_w) = std::io::pipe()?;
    let mut reader = sock.try_clone()?;
    let want_stderr = req.stderr && !req.tty;
    let want_stdout = req.stdout;
    let demux = std::thread::spawn(move || -> Option<i32> {
        loop {
            match read_frame(&mut reader) {
                Ok(Some((kind::STDOUT, d))) if want_stdout => {
                    let _ = out_w.write_all(&d);
                }
                Ok(Some((kind::STDERR, d))) if want_stderr => {
                    let _ = err_w.write_all(&d);
                }
                Ok(Some((kind::EXIT, d))) if d.len() == 4 => {
                    return Some(i32::from_be_bytes([d[0], d[1], d[2], d[3]]));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    });
    let stdin: Option<Box<dyn Write + Send>> = if req.stdin {
        Some(Box::new(StdinWriter(sock.try_clone()?)))
    } else {
        None
    };
    let resize_sock = Mutex::new(sock.try_clone()?);
    let resize: super::Resize = Box::new(move |size: TerminalSize| {
        let mut p = size.width.to_be_bytes().to_vec();
        p.extend_from_slice(&size.height.to_be_bytes());
        let mut s = resize_sock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write_frame(&mut *s, kind::RESIZE, &p);
    });
    let end_sock = sock.try_clone()?;
    Ok(Process {
        stdin,
        stdout: Some(Box::new(out_r)),
        stderr: Some(Box::new(err_r)),
        resize: Some(resize),
        end: Some(Box::new(move || {
            let _ = end_sock.shutdown(Shutdown::Both);
        })),
        // Kubelet reports an attach that ended as a success, however the
        // container exited: so do we.
        wait: Box::new(move || match demux.join() {
            Ok(_) => Exit::Code(0),
            Err(_) => Exit::Failed("attach: the output relay panicked".into()),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversize_is_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, kind::STDOUT, b"hello").unwrap();
        write_frame(&mut buf, kind::EXIT, &7i32.to_be_bytes()).unwrap();
        let mut r = io::Cursor::new(buf);
        assert_eq!(read_frame(&mut r).unwrap(), Some((kind::STDOUT, b"hello".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((kind::EXIT, vec![0, 0, 0, 7])));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut big = vec![kind::STDIN];
        big.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(read_frame(&mut io::Cursor::new(big)).is_err());
    }

    #[test]
    fn hub_relays_both_ways_and_stdin_once_closes_stdin() {
        let dir = tempfile::tempdir().unwrap();
        // The "container": stdin is a pipe we read back.
        let (mut cin_r, cin_w) = std::io::pipe().unwrap();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let s2 = sizes.clone();
        let hub = Hub::listen(
            dir.path(),
            Some(Box::new(cin_w)),
            Some(Box::new(move |w, h| s2.lock().unwrap().push((w, h)))),
            true,
        )
        .unwrap();
        let req = AttachRequest {
            container_id: "c".into(),
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let mut p = connect(dir.path(), &req).unwrap();
        // Wait until the hub registered the client before producing output.
        for _ in 0..200 {
            if !hub.clients.lock().unwrap().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        hub.output(kind::STDOUT, b"out");
        hub.output(kind::STDERR, b"err");
        let mut stdin = p.stdin.take().unwrap();
        stdin.write_all(b"typed").unwrap();
        (p.resize.as_ref().unwrap())(TerminalSize { width: 100, height: 30 });
        drop(stdin);
        let mut got = Vec::new();
        cin_r.read_to_end(&mut got).unwrap();
        assert_eq!(
            got, b"typed",
            "stdin_once: the container's stdin ends with the client's"
        );
        hub.exit(3);
        assert_eq!((p.wait)(), Exit::Code(0));
        let mut out = String::new();
        p.stdout.unwrap().read_to_string(&mut out).unwrap();
        let mut err = String::new();
        p.stderr.unwrap().read_to_string(&mut err).unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("out", "err"));
        assert_eq!(*sizes.lock().unwrap(), vec![(100, 30)]);
    }
}
