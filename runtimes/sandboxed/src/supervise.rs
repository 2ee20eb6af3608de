//! `sandboxed supervise --socket S --bundle B --id ID`: the supervisor
//! process of one container, started by `create`. It binds the socket,
//! says it is ready, receives the mediation listener when the container's
//! program is about to run, and serves the notifications until no process
//! of the container is left.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

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
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut socket = None;
    let mut bundle = None;
    let mut id = None;
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
            other => bail!("supervise: unknown argument {other:?}"),
        }
    }
    Ok(Args {
        socket: socket.context("supervise: --socket is required")?,
        bundle: bundle.context("supervise: --bundle is required")?,
        id: id.context("supervise: --id is required")?,
    })
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let a = parse(args)?;
    let socket = AgentSocket::bind(&a.socket)?;
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
    let mediator = PolicyMediator::new(policy, root, audit, a.id.clone());
    let _ = &a.bundle;
    serve(listener, &mediator, &ServeOptions::default())?;
    Ok(())
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
