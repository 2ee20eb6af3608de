//! The shim of a further container of a pod (Kata's way: one VM per pod).
//!
//! The pod's first container, its sandbox, was created as any other: its
//! shim booted the VM. A container whose annotations name that sandbox gets
//! a shim of its own too, so that it still has a host pid that ends with
//! its status, a state record with one writer, and a control socket; but
//! this shim boots nothing. It asks the sandbox's shim to [`Join`] the
//! container to the VM, handing over its stdin, stdout and stderr, and
//! forwards every request of the command line there ([`For`]). The agent
//! creates the container from its own copy of the bundle, in the namespaces
//! of the sandbox's process.
//!
//! [`Join`]: control::Request::Join
//! [`For`]: control::Request::For

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use container::state::Status;

use super::control::{self, Reply};
use super::state::{Record, Store};
use super::{
    check_abort, exit_with, host_terminal, new_record, os, terminal_of, Args, Error, Result, SignalTarget, Sync,
    IN_FLIGHT_GRACE,
};
use crate::proto::ExitStatus;

/// What `prepare` hands to `supervise`.
pub(crate) struct Prepared {
    listener: UnixListener,
    /// The pty slave, with a terminal: the sandbox's shim has its own copy.
    _tty: Option<File>,
    record: Record,
    /// The open join: its next reply is the container's end.
    join: control::Call,
    sandbox: String,
}

/// Checks that `sandbox` is a pod's VM here and has its shim add the
/// container; then records it, tells `create` and waits for its commit.
pub(crate) fn prepare(
    a: &Args,
    sandbox: &str,
    store: &Store,
    sync: &UnixStream,
    watch: &mpsc::Receiver<bool>,
) -> Result<Prepared> {
    let spec = container::config::load(&a.bundle)?;
    let process = spec.process().clone().unwrap_or_default();
    let (terminal, size) = terminal_of(&process);
    let pod = store.load(sandbox)?;
    if let Some(first) = &pod.sandbox {
        return Err(Error::Agent(format!(
            "sandbox {sandbox:?} is itself a further container of pod {first:?}, not a pod's VM"
        )));
    }
    if !matches!(pod.status(), Status::Created | Status::Running) {
        return Err(Error::Agent(format!(
            "sandbox {sandbox:?} is {}: its VM is gone",
            pod.status()
        )));
    }
    let tty = host_terminal(a, terminal, size)?;
    let me = std::process::id() as i32;
    // No QEMU of its own: the VM is the sandbox's, and deleting this
    // container must not end it.
    let mut record = new_record(a, &spec);
    record.sandbox = Some(sandbox.to_string());
    let spec_hooks = spec.hooks().clone().unwrap_or_default();
    super::hooks::create(&spec_hooks, &record.oci_as(Status::Creating))?;
    check_abort()?;
    let stdio: [BorrowedFd<'_>; 3] = match &tty {
        Some(t) => [t.as_fd(), t.as_fd(), t.as_fd()],
        // SAFETY: fds 0, 1 and 2 are the container's stdio, inherited from
        // create and open for the life of the shim; the borrows end when
        // the request is sent.
        None => unsafe {
            [
                BorrowedFd::borrow_raw(0),
                BorrowedFd::borrow_raw(1),
                BorrowedFd::borrow_raw(2),
            ]
        },
    };
    let req = control::Request::Join {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        terminal,
        size,
    };
    let mut join = control::call(&store.dir(sandbox), &req, &stdio)
        .map_err(|e| Error::Agent(format!("sandbox {sandbox:?}: {e}")))?;
    match join.reply() {
        Ok(Reply::Ok) => {}
        Ok(Reply::Error { message }) => return Err(Error::Agent(message)),
        Ok(other) => {
            return Err(Error::Agent(format!(
                "sandbox {sandbox:?} answered the join with {other:?}"
            )))
        }
        Err(e) => return Err(Error::Agent(format!("sandbox {sandbox:?}: {e}"))),
    }
    check_abort()?;
    let (dir_fd, short) = control::short_path(&store.dir(&a.id)).map_err(os("state directory"))?;
    let listener = UnixListener::bind(&short).map_err(os(format!("binding {}", store.socket(&a.id).display())))?;
    drop(dir_fd);
    record.created = container::time::now_rfc3339();
    record.status = Status::Created;
    store.save(&record)?;
    let mut line = serde_json::to_vec(&Sync::Created { pid: me }).unwrap_or_default();
    line.push(b'\n');
    (&*sync).write_all(&line).map_err(os("telling create"))?;
    match watch.recv() {
        Ok(true) => Ok(Prepared {
            listener,
            _tty: tty,
            record,
            join,
            sandbox: sandbox.to_string(),
        }),
        _ => Err(Error::Abandoned),
    }
}

/// Forwards the command line's requests to the sandbox's shim until the
/// container's process ends, then records the end and ends with its
/// status. Losing the sandbox's shim (the pod's VM went) ends it as
/// killed.
pub(crate) fn supervise(a: &Args, store: &Store, p: Prepared, signal_target: &OnceLock<SignalTarget>) -> ! {
    let record = Arc::new(Mutex::new(p.record));
    let sandbox_dir = store.dir(&p.sandbox);
    {
        let (dir, id) = (sandbox_dir.clone(), a.id.clone());
        let _ = signal_target.set(Box::new(move |signal| {
            let req = control::Request::Kill { signal, all: false };
            let _ = forward_call(&dir, &id, req, &[]).and_then(|mut c| c.reply());
        }));
    }
    // Requests being forwarded: the answer to the kill that ended the
    // process can come after the end itself, and is still owed.
    let in_flight = Arc::new(AtomicUsize::new(0));
    {
        let (record, store, dir) = (record.clone(), store.clone(), sandbox_dir.clone());
        let (listener, in_flight) = (p.listener, in_flight.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (record, store, dir) = (record.clone(), store.clone(), dir.clone());
                let in_flight = in_flight.clone();
                in_flight.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve(&conn, &store, &dir, &record);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    let mut join = p.join;
    let status = match join.reply() {
        Ok(Reply::Exited { status }) => status,
        other => {
            eprintln!(
                "virtualized shim: {}: lost the pod's VM (sandbox {:?}): {other:?}",
                a.id, p.sandbox
            );
            ExitStatus::Signal(libc::SIGKILL)
        }
    };
    {
        let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
        r.status = Status::Stopped;
        r.exit = Some(status);
        let _ = store.save(&r);
    }
    let _ = std::fs::remove_file(store.socket(&a.id));
    let t = Instant::now();
    while in_flight.load(Ordering::SeqCst) > 0 && t.elapsed() < IN_FLIGHT_GRACE {
        std::thread::sleep(Duration::from_millis(2));
    }
    exit_with(status)
}

/// Runs a closure when dropped.
struct Finally<F: FnMut()>(F);

impl<F: FnMut()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn forward_call(
    sandbox_dir: &std::path::Path,
    id: &str,
    req: control::Request,
    fds: &[BorrowedFd<'_>],
) -> control::Result<control::Call> {
    let req = control::Request::For {
        container: id.to_string(),
        request: Box::new(req),
    };
    control::call(sandbox_dir, &req, fds)
}

/// One request of the command line, forwarded with its fds; the replies
/// come back as they arrive. A start that succeeds is recorded here, where
/// the record's one writer is.
fn serve(conn: &UnixStream, store: &Store, sandbox_dir: &std::path::Path, record: &Mutex<Record>) {
    let (req, fds) = match control::read_request(conn) {
        Ok(r) => r,
        Err(e) => {
            let _ = control::write_reply(conn, &Reply::Error { message: e.to_string() });
            return;
        }
    };
    let id = record.lock().unwrap_or_else(|p| p.into_inner()).id.clone();
    let is_start = matches!(req, control::Request::Start);
    if is_start {
        let r = record.lock().unwrap_or_else(|p| p.into_inner());
        if !r.status.can_start() {
            let e = container::state::Error::Illegal {
                id: r.id.clone(),
                status: r.status,
                op: "start",
            };
            let _ = control::write_reply(conn, &Reply::Error { message: e.to_string() });
            return;
        }
    }
    if matches!(req, control::Request::Join { .. } | control::Request::For { .. }) {
        let message = format!("container {id:?} is a further container of a pod: it takes no join");
        let _ = control::write_reply(conn, &Reply::Error { message });
        return;
    }
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let mut call = match forward_call(sandbox_dir, &id, req, &borrowed) {
        Ok(c) => c,
        Err(e) => {
            let message = format!("the pod's VM: {e}");
            let _ = control::write_reply(conn, &Reply::Error { message });
            return;
        }
    };
    drop(fds);
    // The caller going away (an exec's stand-in killed) is passed on: the
    // sandbox's shim then ends what it was running for it.
    let watch = (conn.try_clone(), call.socket().try_clone());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let (Ok(mut from), Ok(to)) = watch {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            if matches!(std::io::Read::read(&mut from, &mut b), Ok(0)) && !done.load(Ordering::SeqCst) {
                let _ = to.shutdown(std::net::Shutdown::Both);
            }
        });
    }
    let _hold = Finally(|| {
        done.store(true, Ordering::SeqCst);
        let _ = conn.shutdown(std::net::Shutdown::Read);
    });
    while let Ok(reply) = call.reply() {
        if is_start && reply == Reply::Ok {
            let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
            // The process may have ended already: stopped stays stopped.
            if r.status == Status::Created {
                r.status = Status::Running;
                if let Err(e) = store.save(&r) {
                    let _ = control::write_reply(conn, &Reply::Error { message: e.to_string() });
                    return;
                }
            }
        }
        if control::write_reply(conn, &reply).is_err() {
            return;
        }
    }
}
