//! `sandboxed supervise --socket S --bundle B --id ID`: the supervisor
//! process of one container, started by `create`. It binds the socket,
//! says it is ready, receives the mediation listener when the container's
//! program is about to run, and serves the notifications until no process
//! of the container is left.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::audit::Audit;
use crate::flavor::READY;
use crate::mediator::PolicyMediator;
use crate::policy::Policy;
use crate::resolve::Root;
use crate::supervisor::{serve, AgentSocket, ServeOptions};

/// Where denials are written unless the annotation names a file.
pub const AUDIT_DIR: &str = "/var/log/oci-sandboxed";
/// Annotation naming the audit log of a container.
pub const ANNOTATION_AUDIT_LOG: &str = "org.ociharness.sandbox.audit-log";

struct Args {
    socket: PathBuf,
    bundle: PathBuf,
    id: String,
    /// Where `create` recorded our pid; the guardian's is added.
    pid_file: Option<PathBuf>,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut socket = None;
    let mut bundle = None;
    let mut id = None;
    let mut pid_file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("supervise: {a} needs a value"))
        };
        match a.as_str() {
            "--socket" => socket = Some(PathBuf::from(value()?)),
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--id" => id = Some(value()?),
            "--pid-file" => pid_file = Some(PathBuf::from(value()?)),
            other => bail!("supervise: unknown argument {other:?}"),
        }
    }
    Ok(Args {
        socket: socket.context("supervise: --socket is required")?,
        bundle: bundle.context("supervise: --bundle is required")?,
        id: id.context("supervise: --id is required")?,
        pid_file,
    })
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let a = parse(args)?;
    let socket = AgentSocket::bind(&a.socket)?;
    // Our own pid first, before `create` hears we are ready: a `create`
    // killed right after starting us leaves this for `delete --force`.
    if let Some(p) = &a.pid_file {
        std::fs::write(p, std::process::id().to_string())
            .with_context(|| format!("recording the supervisor's pid in {}", p.display()))?;
    }
    let creator = std::os::unix::process::parent_id();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY}")?;
        out.flush()?;
    }
    // Nobody reads stdout any more: a write must not kill us with SIGPIPE.
    // SAFETY: reopening fd 1 on /dev/null with dup2 over a fresh open.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    // Modes of what the supervisor creates for a caller come with the
    // caller's umask applied already.
    // SAFETY: umask takes an integer and cannot fail.
    unsafe { libc::umask(0) };
    // The init connects during `create`; if `create` dies first (we are
    // re-parented) nobody will, and we must not wait for ever.
    while !socket.pending(Duration::from_millis(100)) {
        if std::os::unix::process::parent_id() != creator {
            let _ = std::fs::remove_file(&a.socket);
            if let Some(p) = &a.pid_file {
                let _ = std::fs::remove_file(p);
            }
            bail!("`create` of {} ended before its container connected", a.id);
        }
    }
    let (listener, msg) = socket.accept(None)?;
    drop(socket);
    let annotations: HashMap<String, String> = msg.state.annotations.clone().into_iter().collect();
    let policy = Policy::from_annotations(&annotations)?;
    let audit = match annotations.get(ANNOTATION_AUDIT_LOG) {
        Some(p) => Audit::open(std::path::Path::new(p))?,
        None => {
            std::fs::create_dir_all(AUDIT_DIR).with_context(|| format!("creating {AUDIT_DIR}"))?;
            Audit::open(&PathBuf::from(AUDIT_DIR).join(format!("{}.jsonl", a.id)))?
        }
    };
    let root =
        Root::of_process(msg.pid as u32).with_context(|| format!("the root of container process {}", msg.pid))?;
    let guardian = spawn_guardian(msg.pid)?;
    if let Some(p) = &a.pid_file {
        // Best effort: `delete` waits for the pids it finds there.
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(p) {
            let _ = writeln!(f, "\n{guardian}");
        }
    }
    let mediator = PolicyMediator::new(policy, root, audit, a.id.clone());
    let _ = &a.bundle;
    serve(listener, &mediator, &ServeOptions::default())?;
    Ok(())
}

/// The container must not outlive its supervisor: with the listener gone
/// its mediated calls would fail (ENOSYS) but the rest would run on. A
/// guardian process waits on a pipe whose only write end the supervisor
/// holds; when the supervisor exits, however it exits (SIGKILL included),
/// the guardian kills the container's init (and with it a pid namespace)
/// and every process left in the init's cgroup. Returns the guardian's pid.
/// Called before the supervisor starts any thread, so the fork is safe.
fn spawn_guardian(init: i32) -> anyhow::Result<i32> {
    // SAFETY: pidfd_open with plain integers; a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, init, 0) } as i32;
    if pidfd < 0 {
        bail!(
            "pidfd_open of the container init {init}: {}",
            std::io::Error::last_os_error()
        );
    }
    let procs = init_cgroup_procs(init);
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe for the guardian: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the process has one thread here (serve has not started), so
    // the child may run ordinary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork of the guardian: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: closing descriptors of this (single-threaded) child,
        // reading the pipe we made, signalling through a pidfd we opened.
        unsafe {
            // Nothing of the supervisor's (the listener above all) stays
            // open here but the pipe's read end and the pidfd.
            for fd in 3..4096 {
                if fd != fds[0] && fd != pidfd {
                    libc::close(fd);
                }
            }
            let mut b = [0u8; 1];
            while libc::read(fds[0], b.as_mut_ptr().cast(), 1) != 0 {
                if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break;
                }
            }
            libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGKILL, 0usize, 0u32);
        }
        if let Some(p) = &procs {
            for _ in 0..3 {
                for pid in std::fs::read_to_string(p).unwrap_or_default().lines() {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        // SAFETY: kill(2) with plain integers.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        // SAFETY: ends the guardian without running the parent's handlers.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: the parent keeps only the write end (never written: its close
    // at our exit is the signal) and the pidfd is the guardian's business.
    unsafe {
        libc::close(fds[0]);
        libc::close(pidfd);
    }
    // Deliberately leaked: it must stay open for the supervisor's lifetime.
    let _ = fds[1];
    Ok(pid)
}

/// `cgroup.procs` of the init's cgroup (the pids hierarchy on v1, the
/// unified one on v2), as the supervisor sees the cgroup mounts.
fn init_cgroup_procs(init: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{init}/cgroup")).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let wanted_v1 = ctrls.split(',').any(|c| c == "pids");
        let wanted_v2 = ctrls.is_empty();
        if !(wanted_v1 || wanted_v2) {
            continue;
        }
        for m in mountinfo.lines() {
            let Some((left, right)) = m.split_once(" - ") else {
                continue;
            };
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or("");
            let opts = r.nth(1).unwrap_or("");
            let ok = (wanted_v1 && fstype == "cgroup" && opts.split(',').any(|o| o == "pids"))
                || (wanted_v2 && fstype == "cgroup2");
            if ok {
                let mount_point = left.split_whitespace().nth(4)?;
                return Some(
                    PathBuf::from(mount_point)
                        .join(path.trim_start_matches('/'))
                        .join("cgroup.procs"),
                );
            }
        }
    }
    None
}

/// The supervisor's entry point; the process's exit code.
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sandboxed supervise: {e:#}");
            1
        }
    }
}
