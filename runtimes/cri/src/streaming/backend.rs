//! The server's [`Backend`]: exec through the container's OCI runtime
//! (`RUNTIME exec`, with `--tty --console-socket` for a terminal), attach
//! through the container's monitor (`attach`), port forwarding through a
//! socket opened in the pod's network namespace.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::{attach, console, AttachRequest, Backend, ExecRequest, Exit, Process};
use crate::container::{ContainerRecord, State};
use crate::pod::PodState;
use crate::{Cri, Error, Result};

/// How long a runtime gets to hand over an exec's terminal.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct CriBackend {
    pub cri: Arc<Cri>,
}

impl CriBackend {
    pub fn new(cri: Arc<Cri>) -> CriBackend {
        CriBackend { cri }
    }

    fn running(&self, id: &str) -> Result<ContainerRecord> {
        running(&self.cri, id)
    }
}

/// The container, when it is running.
fn running(cri: &Cri, id: &str) -> Result<ContainerRecord> {
    let c = cri.container(id)?;
    let state = c.status(cri).state;
    if state != State::Running {
        return Err(Error::FailedPrecondition(format!(
            "container {id} is {state:?}, not running"
        )));
    }
    Ok(c)
}

/// Validates an Exec request the way kubelet's server does; the gRPC
/// handler calls this before registering it.
pub fn check_exec(cri: &Cri, req: &ExecRequest) -> Result<()> {
    if req.container_id.is_empty() {
        return Err(Error::InvalidArgument("container_id is required".into()));
    }
    if req.cmd.is_empty() {
        return Err(Error::InvalidArgument("cmd is required".into()));
    }
    check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
    running(cri, &req.container_id).map(drop)
}

/// Validates an Attach request.
pub fn check_attach(cri: &Cri, req: &AttachRequest) -> Result<()> {
    if req.container_id.is_empty() {
        return Err(Error::InvalidArgument("container_id is required".into()));
    }
    check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
    running(cri, &req.container_id).map(drop)
}

/// Validates a PortForward request: the pod exists and is ready.
pub fn check_port_forward(cri: &Cri, pod_id: &str, ports: &[i32]) -> Result<Vec<u16>> {
    if pod_id.is_empty() {
        return Err(Error::InvalidArgument("pod_sandbox_id is required".into()));
    }
    let ports = ports
        .iter()
        .map(|&p| {
            u16::try_from(p)
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| Error::InvalidArgument(format!("port {p} is not a TCP port")))
        })
        .collect::<Result<Vec<u16>>>()?;
    let pod = cri.pod(pod_id)?;
    if pod.current_state() != PodState::Ready {
        return Err(Error::FailedPrecondition(format!("pod sandbox {pod_id} is not ready")));
    }
    Ok(ports)
}

fn check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<()> {
    if !(stdin || stdout || stderr) {
        return Err(Error::InvalidArgument(
            "one of stdin, stdout, or stderr must be set".into(),
        ));
    }
    if tty && stderr {
        return Err(Error::InvalidArgument("tty and stderr cannot both be true".into()));
    }
    Ok(())
}

impl Backend for CriBackend {
    fn exec(&self, req: &ExecRequest) -> Result<Process> {
        let c = self.running(&req.container_id)?;
        let runtime = self.cri.runtime(&c.handler)?;
        // The console socket's path is handed to the runtime, so it must fit
        // a sockaddr_un (108 bytes): a private directory under the temp dir,
        // not the container's deep state directory.
        let dir = std::env::temp_dir().join(format!("cri-exec-{}", &crate::new_id()[..16]));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
        let pid_file = dir.join("pid");
        let console_path = dir.join("console.sock");
        // With a terminal the runtime detaches (runc takes a console socket
        // only so, as containerd runs it) and `cri reap` waits for the
        // process; without, the runtime's exec is the process's stand-in.
        let mut cmd = if req.tty {
            let mut c = std::process::Command::new(&self.cri.exe);
            c.arg("reap").arg("--pid-file").arg(&pid_file).arg("--");
            c.arg(&runtime.handler.binary)
                .args(&runtime.handler.args)
                .arg("--root")
                .arg(&runtime.root);
            c.arg("exec").arg("--detach");
            c
        } else {
            let mut c = runtime.command();
            c.arg("exec");
            c
        };
        cmd.arg("--pid-file").arg(&pid_file);
        let listener = if req.tty {
            let l = UnixListener::bind(&console_path)
                .map_err(|e| Error::Internal(format!("{}: {e}", console_path.display())))?;
            cmd.arg("--tty").arg("--console-socket").arg(&console_path);
            Some(l)
        } else {
            None
        };
        cmd.arg(&req.container_id).args(&req.cmd);
        if req.tty {
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
            cmd.stdin(pipe(req.stdin))
                .stdout(pipe(req.stdout))
                .stderr(pipe(req.stderr));
        }
        let cleanup_dir = dir.clone();
        let fail = move |what: String| {
            let _ = std::fs::remove_dir_all(&cleanup_dir);
            Error::Internal(format!("exec in {}: {what}", req.container_id))
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("{}: {e}", runtime.handler.binary.display())))?;
        let mut proc = Process {
            stdin: None,
            stdout: None,
            stderr: None,
            resize: None,
            end: None,
            wait: Box::new(|| Exit::Code(0)),
        };
        if let Some(l) = listener {
            let master = match console::receive_master(&l, &mut child, CONSOLE_TIMEOUT) {
                Ok(m) => m,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let mut err = String::new();
                    if let Some(mut s) = child.stderr.take() {
                        let _ = s.read_to_string(&mut err);
                    }
                    return Err(fail(format!("{e}: {}", err.trim())));
                }
            };
            let master = File::from(master);
            let dup = |f: &File| {
                f.try_clone()
                    .map_err(|e| Error::Internal(format!("dup of the terminal: {e}")))
            };
            proc.stdin = Some(Box::new(dup(&master)?));
            proc.stdout = Some(Box::new(dup(&master)?));
            let resizer = dup(&master)?;
            proc.resize = Some(Box::new(move |s| {
                let _ = console::set_size(&resizer, s.width, s.height);
            }));
            // The runtime's own complaints: read so it never blocks on them.
            if let Some(mut s) = child.stderr.take() {
                std::thread::spawn(move || {
                    let mut sink = Vec::new();
                    let _ = s.read_to_end(&mut sink);
                });
            }
        } else {
            proc.stdin = child
                .stdin
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Write + Send>);
            proc.stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>);
            proc.stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>);
        }
        let kill_pid_file = pid_file.clone();
        let runtime_pid = child.id() as i32;
        proc.end = Some(Box::new(move || {
            // The command itself, found through the runtime's pid file; the
            // runtime follows it out.
            let pid = std::fs::read_to_string(&kill_pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|&p| p > 0) {
                // SAFETY: kill() with a pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            } else {
                // SAFETY: kill() with our child's pid and a signal number.
                unsafe { libc::kill(runtime_pid, libc::SIGKILL) };
            }
        }));
        proc.wait = Box::new(move || {
            let status = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            match status {
                Ok(s) => Exit::Code(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))),
                Err(e) => Exit::Failed(format!("waiting for the runtime: {e}")),
            }
        });
        Ok(proc)
    }

    fn attach(&self, req: &AttachRequest) -> Result<Process> {
        let c = self.running(&req.container_id)?;
        let dir = c.state_dir(&self.cri);
        attach::connect(&dir, req).map_err(|e| {
            Error::Internal(format!(
                "attach to {}: the monitor's attach socket {}: {e}",
                req.container_id,
                dir.join(attach::SOCKET).display()
            ))
        })
    }

    fn port_forward(&self, pod_id: &str, port: u16) -> Result<Box<dyn super::PortConn>> {
        let pod = self.cri.pod(pod_id)?;
        if pod.current_state() != PodState::Ready {
            return Err(Error::FailedPrecondition(format!("pod sandbox {pod_id} is not ready")));
        }
        let runtime = self.cri.runtime(&pod.spec.handler)?;
        if runtime.handler.pod_vm {
            return vm_port(&runtime, pod_id, port).map(|s| Box::new(s) as Box<dyn super::PortConn>);
        }
        connect_in_netns(pod.infra_pid, port)
            .map(|s| Box::new(s) as Box<dyn super::PortConn>)
            .map_err(|e| Error::Internal(format!("connecting to port {port} in pod sandbox {pod_id}: {e}")))
    }
}

/// How long a pod VM's runtime may take to connect to a port.
const VM_CONNECT: Duration = Duration::from_secs(30);

/// A pod VM's network is in its guest, out of the host's reach: the
/// runtime's `port-forward ID PORT` relays its stdin and stdout there, and
/// says `connected` on stderr first (or why not, and exits).
fn vm_port(runtime: &crate::runtime::Runtime, pod_id: &str, port: u16) -> Result<std::os::unix::net::UnixStream> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| Error::Internal(format!("port-forward: {e}")))?;
    let out = theirs
        .try_clone()
        .map_err(|e| Error::Internal(format!("port-forward: {e}")))?;
    let mut child = runtime
        .command()
        .arg("port-forward")
        .arg(pod_id)
        .arg(port.to_string())
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(out)))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("{} port-forward: {e}", runtime.handler.binary.display())))?;
    let err = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(err).lines();
        let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let _ = tx.send(first);
        // The rest is read so the runtime never blocks on it; the runtime
        // is reaped when the connection ends.
        lines.map_while(|l| l.ok()).for_each(drop);
        let _ = child.wait();
    });
    match rx.recv_timeout(VM_CONNECT) {
        Ok(l) if l == "connected" => Ok(ours),
        Ok(l) => Err(Error::Internal(format!(
            "port {port} in pod sandbox {pod_id}: {}",
            l.trim_start_matches("virtualized: error: ")
        ))),
        Err(_) => Err(Error::Internal(format!(
            "port {port} in pod sandbox {pod_id}: the runtime did not connect within {VM_CONNECT:?}"
        ))),
    }
}

/// Connects to 127.0.0.1:`port` in the network namespace of `pid`: on a
/// thread of its own that enters the namespace and ends, so no other
/// thread's namespace changes; the socket stays in the pod's namespace.
pub fn connect_in_netns(pid: i32, port: u16) -> std::io::Result<TcpStream> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on this thread with a namespace fd we own.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(10))
    })
    .join()
    .map_err(|_| std::io::Error::other("the connecting thread panicked"))?
}
