//! The supervisor's notification loop: the proxy layer between the
//! container and the host kernel.
//!
//! The container's filter answers the mediated calls with
//! `SECCOMP_RET_USER_NOTIF`; the caller blocks in the kernel and the
//! supervisor, holding the listener fd, receives the call ([`notif`]), lets
//! a [`Mediator`] read the arguments it needs from the caller's memory
//! ([`mem`]: copied once, checked live after the copy), decide and perform
//! it, and sends the [`Answer`]. The listener fd arrives from the
//! container's init over the OCI seccomp-agent socket ([`agent`]).
//!
//! # Never blocking the container forever
//!
//! Every notification received gets an answer or its caller is gone: a
//! mediator that panics answers EPERM, an answer the kernel refuses (an fd
//! that cannot be installed, a malformed reply) is replaced by an errno.
//! A slow decision holds one of several workers, not the loop. When
//! [`serve`] returns, the listener is closed and the kernel fails every
//! call still waiting (and every later one) with ENOSYS, so a container
//! whose supervisor is gone never runs on unmediated.

pub mod agent;
pub mod mem;
pub mod notif;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use agent::{accept_listener, AgentMessage, AgentSocket, ContainerState};
pub use mem::{ContainerMemory, MemError, ProcessMemory};
pub use notif::{Listener, Notification, Readiness};

/// Why the supervisor could not receive or serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operation on the seccomp listener fd failed.
    #[error("seccomp listener: {what}: {source}")]
    Listener {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The seccomp-agent socket failed at `step`.
    #[error("seccomp agent socket {}: {step}: {source}", path.display())]
    Socket {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    /// What arrived on the seccomp-agent socket is not the OCI message.
    #[error("seccomp agent socket {}: {message}", path.display())]
    Message { path: PathBuf, message: String },
    /// A worker thread could not be started.
    #[error("supervisor: starting worker thread {index}: {source}")]
    Spawn {
        index: usize,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the supervisor answers a notified call with.
#[derive(Debug)]
pub enum Answer {
    /// Let the kernel run the call as if it had not been intercepted
    /// (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Only for calls whose pointer
    /// arguments do not matter to the decision: the kernel re-reads them.
    Continue,
    /// Fail the call with this errno (1..=4095; anything else is EPERM).
    Errno(i32),
    /// The call returns this value (the supervisor performed it).
    Value(i64),
    /// Install `fd` in the caller and return its number, atomically
    /// (`SECCOMP_IOCTL_NOTIF_ADDFD` with `SECCOMP_ADDFD_FLAG_SEND`);
    /// `flags` is 0 or `O_CLOEXEC` for the new fd.
    AddFd { fd: OwnedFd, flags: u32 },
}

/// Decides and, when allowed, performs a mediated call.
pub trait Mediator: Send + Sync {
    /// Decide and, when allowed, perform: returns what to answer. Read
    /// arguments through `mem` only (copies, checked live), act on the copy.
    fn handle(&self, n: &Notification, mem: &dyn ContainerMemory) -> Answer;
}

/// How [`serve`] runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Threads receiving and answering; a slow decision holds one.
    pub workers: usize,
    /// Set to end the loop; checked at least every `poll_interval`.
    pub stop: Option<Arc<AtomicBool>>,
    pub poll_interval: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            workers: 4,
            stop: None,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// What [`serve`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Notifications received.
    pub notifications: u64,
    pub continued: u64,
    pub errno: u64,
    pub value: u64,
    pub add_fd: u64,
    /// Handlers that panicked (answered EPERM, counted in `errno` too).
    pub panics: u64,
    /// Notifications whose caller was gone before the answer (killed or
    /// interrupted mid-call), or before it could be received.
    pub stale: u64,
    /// Answers the kernel refused for another reason, replaced by an errno
    /// (an fd the caller could not take: its fd table full, for one).
    pub replaced: u64,
    /// Notifications neither answer nor replacement reached (never seen
    /// so far); their callers get ENOSYS when the listener closes.
    pub unanswered: u64,
}

#[derive(Default)]
struct Counters {
    notifications: AtomicU64,
    continued: AtomicU64,
    errno: AtomicU64,
    value: AtomicU64,
    add_fd: AtomicU64,
    panics: AtomicU64,
    stale: AtomicU64,
    replaced: AtomicU64,
    unanswered: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            notifications: g(&self.notifications),
            continued: g(&self.continued),
            errno: g(&self.errno),
            value: g(&self.value),
            add_fd: g(&self.add_fd),
            panics: g(&self.panics),
            stale: g(&self.stale),
            replaced: g(&self.replaced),
            unanswered: g(&self.unanswered),
        }
    }
}

/// After this long in one decision, a waiting worker takes over receiving.
const TAKEOVER: Duration = Duration::from_millis(2);
/// How often a waiting worker looks whether the receiver is stuck in a
/// decision: soon while decisions run, backing off while all is quiet.
const MIN_TICK: Duration = Duration::from_millis(1);
const MAX_TICK: Duration = Duration::from_millis(50);

/// Receives and answers the notifications of `listener` until no task
/// uses the filter any more (the listener hangs up) or `opts.stop` is set.
///
/// One worker at a time is the receiver: it polls, receives, then decides
/// and answers that notification itself, and goes back to receiving. A
/// notification thus costs two wake-ups (the caller's and the receiver's,
/// made CPU-local with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`) and no hand-off
/// between threads. While the receiver is busy deciding, the role is free:
/// when a decision has run for `TAKEOVER`, a waiting worker takes the role,
/// so one slow decision delays the others by milliseconds, not by its
/// length. No thread ever blocks in RECV: only the receiver receives, and
/// only after poll said a notification is pending.
pub fn serve(listener: OwnedFd, mediator: &dyn Mediator, opts: &ServeOptions) -> Result<Stats> {
    let listener = Listener::from(listener);
    // EINVAL before Linux 6.6: the loop works without it, only slower.
    let _ = listener.set_sync_wakeup();
    let shared = Shared {
        listener: &listener,
        mediator,
        opts,
        counters: Counters::default(),
        receiver: AtomicBool::new(false),
        free_since: AtomicU64::new(0),
        epoch: Instant::now(),
        done: AtomicBool::new(false),
        idle: Mutex::new(()),
        wake: Condvar::new(),
    };
    let workers = opts.workers.max(1);
    let result = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(workers);
        let mut spawn_error = None;
        for index in 0..workers {
            let shared = &shared;
            match std::thread::Builder::new()
                .name(format!("supervisor-{index}"))
                .spawn_scoped(s, move || shared.work())
            {
                Ok(h) => handles.push(h),
                Err(source) => {
                    shared.finish();
                    spawn_error = Some(Error::Spawn { index, source });
                    break;
                }
            }
        }
        let mut first = spawn_error.map(Err).unwrap_or(Ok(()));
        for h in handles {
            // `work` does not panic (handlers run under catch_unwind).
            let r = h.join().unwrap_or(Ok(()));
            if first.is_ok() {
                first = r;
            }
        }
        first
    });
    result.map(|()| shared.counters.snapshot())
}

struct Shared<'a> {
    listener: &'a Listener,
    mediator: &'a dyn Mediator,
    opts: &'a ServeOptions,
    counters: Counters,
    /// Whether a worker holds the receiver role.
    receiver: AtomicBool,
    /// When (ns after `epoch`, 0: not free) the receiver left the role to
    /// decide a notification.
    free_since: AtomicU64,
    epoch: Instant,
    done: AtomicBool,
    /// Where waiting workers sleep between looks at the role.
    idle: Mutex<()>,
    wake: Condvar,
}

impl Shared<'_> {
    fn stopping(&self) -> bool {
        self.done.load(Ordering::SeqCst) || self.opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        let _g = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_all();
    }

    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    fn take_role(&self) -> bool {
        let took = self
            .receiver
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if took {
            self.free_since.store(0, Ordering::Release);
        }
        took
    }

    fn work(&self) -> Result<()> {
        let mut receiving = self.take_role();
        loop {
            if !receiving && !self.wait_for_role() {
                return Ok(());
            }
            if self.stopping() {
                self.finish();
                return Ok(());
            }
            let n = match self.next() {
                Ok(Some(n)) => n,
                Ok(None) => {
                    receiving = true;
                    continue;
                }
                Err(e) => {
                    self.finish();
                    return e.map_or(Ok(()), Err);
                }
            };
            self.receiver.store(false, Ordering::Release);
            self.free_since.store(self.now(), Ordering::Release);
            self.dispatch(&n);
            receiving = self.take_role();
        }
    }

    /// Sleeps until the role is free for longer than `TAKEOVER` and takes
    /// it (true), or until the loop ends (false).
    fn wait_for_role(&self) -> bool {
        let mut tick = MIN_TICK;
        loop {
            if self.stopping() {
                return false;
            }
            if !self.receiver.load(Ordering::Acquire) {
                let since = self.free_since.load(Ordering::Acquire);
                let overdue = since == 0 || self.now().saturating_sub(since) >= TAKEOVER.as_nanos() as u64;
                if overdue && self.take_role() {
                    return true;
                }
                tick = MIN_TICK;
            } else {
                tick = (tick * 2).min(MAX_TICK);
            }
            let g = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let _ = self.wake.wait_timeout(g, tick);
        }
    }

    /// The next notification; `Ok(None)` when there was none in time or
    /// its caller died first; `Err(None)` on hang-up.
    fn next(&self) -> std::result::Result<Option<Notification>, Option<Error>> {
        let err = |what| move |source| Some(Error::Listener { what, source });
        match self.listener.poll(self.opts.poll_interval).map_err(err("poll"))? {
            Readiness::Idle => return Ok(None),
            Readiness::HungUp => return Err(None),
            Readiness::Ready => {}
        }
        match self.listener.recv() {
            Ok(n) => {
                Counters::bump(&self.counters.notifications);
                Ok(Some(n))
            }
            // ENOENT: the caller was killed between poll and receive
            // (or another receiver took it); EINTR: a signal.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                Counters::bump(&self.counters.stale);
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(err("SECCOMP_IOCTL_NOTIF_RECV")(e)),
        }
    }

    fn dispatch(&self, n: &Notification) {
        let mem = ProcessMemory::new(self.listener, n.id, n.pid);
        let answer = match catch_unwind(AssertUnwindSafe(|| self.mediator.handle(n, &mem))) {
            Ok(a) => a,
            Err(_) => {
                Counters::bump(&self.counters.panics);
                Answer::Errno(libc::EPERM)
            }
        };
        self.answer(n.id, answer);
    }

    fn answer(&self, id: u64, answer: Answer) {
        let c = &self.counters;
        let (sent, counter) = match answer {
            Answer::Continue => (self.listener.send(id, 0, 0, true), &c.continued),
            Answer::Errno(e) => {
                let e = if (1..=4095).contains(&e) { e } else { libc::EPERM };
                (self.listener.send(id, 0, e, false), &c.errno)
            }
            Answer::Value(v) => (self.listener.send(id, v, 0, false), &c.value),
            Answer::AddFd { fd, flags } => (
                self.listener.add_fd_and_send(id, fd.as_fd(), flags).map(drop),
                &c.add_fd,
            ),
        };
        match sent {
            Ok(()) => Counters::bump(counter),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Counters::bump(&c.stale),
            Err(e) => {
                // The kernel refused the answer (EMFILE/EBADF/EINVAL): the
                // caller still waits, give it the error instead.
                let errno = e
                    .raw_os_error()
                    .filter(|e| (1..=4095).contains(e))
                    .unwrap_or(libc::EPERM);
                match self.listener.send(id, 0, errno, false) {
                    Ok(()) => Counters::bump(&c.replaced),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Counters::bump(&c.stale),
                    Err(_) => Counters::bump(&c.unanswered),
                }
            }
        }
    }
}
