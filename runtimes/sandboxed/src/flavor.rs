//! What the sandboxed runtime adds to the shared runc-compatible command
//! line: before a container is made, a supervisor process is started for
//! it, listening on a socket in the runtime's state directory, and the
//! container gets the mediation filter whose notifications go there.

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use container::launch::{CreateOptions, Mediation};
use container::seccomp::Filter;
use container::state::Store;
use oci_spec::runtime::{
    Arch, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder,
};

/// The line a supervisor prints on stdout once it listens.
pub const READY: &str = "ready";

/// The mediation filter: every syscall in `names` notifies, everything else
/// is allowed (the config's own filter still applies on top). `socket` only
/// satisfies the compiler's rule that a notifying filter names its agent.
pub fn mediation_filter(names: &[&str], socket: &Path) -> anyhow::Result<Filter> {
    let rule = LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActNotify)
        .build()
        .context("building the mediation rule")?;
    // New user or mount namespaces through clone, as the policy refuses
    // them through unshare: refused in the filter itself (a notification
    // on every fork would cost too much). clone3 passes its flags in
    // memory, which a filter cannot read: ENOSYS, and libc falls back to
    // clone.
    let mut rules = vec![rule];
    for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS] {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(flag as u64)
            .value_two(flag as u64)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .context("building the clone rule")?;
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(libc::EPERM as u32)
                .args(vec![arg])
                .build()
                .context("building the clone rule")?,
        );
    }
    rules.push(
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(libc::ENOSYS as u32)
            .build()
            .context("building the clone3 rule")?,
    );
    let seccomp = LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64])
        .syscalls(rules)
        .listener_path(socket.to_path_buf())
        .build()
        .context("building the mediation filter")?;
    Filter::compile(&seccomp).context("compiling the mediation filter")
}

/// The socket of container `id`'s supervisor.
pub fn socket_path(store: &Store, id: &str) -> PathBuf {
    store.root.join(format!("{id}.supervisor.sock"))
}

/// Starts `id`'s supervisor (this binary, `supervise`), detached in its own
/// session so it outlives `create`, and waits until it listens.
pub fn start_supervisor(exe: &Path, socket: &Path, opts: &CreateOptions) -> anyhow::Result<u32> {
    let mut cmd = Command::new(exe);
    cmd.arg("supervise")
        .arg("--socket")
        .arg(socket)
        .arg("--bundle")
        .arg(&opts.bundle)
        .arg("--id")
        .arg(&opts.id)
        .arg("--pid-file")
        .arg(socket.with_extension("pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: setsid is async-signal-safe and touches no memory; between
    // fork and exec nothing else runs.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the supervisor {}", exe.display()))?;
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .context("waiting for the supervisor to listen")?;
    if line.trim() != READY {
        let status = child.wait().ok();
        anyhow::bail!(
            "the supervisor for {} did not start (said {:?}, {:?})",
            opts.id,
            line.trim(),
            status
        );
    }
    // It runs on by itself; its exit is reaped by whoever inherits it.
    Ok(child.id())
}

/// Where `id`'s supervisor pid is kept, for `abandon`.
pub fn pid_path(store: &Store, id: &str) -> PathBuf {
    store.root.join(format!("{id}.supervisor.pid"))
}

/// Waits up to `grace` for `id`'s supervisor to exit, then kills it, and
/// forgets its pid.
fn stop_supervisor(store: &Store, id: &str, grace: Duration) {
    let pid_file = pid_path(store, id);
    // The supervisor's pid, then its guardian's (which it appends).
    let pids: Vec<i32> = std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    for pid in pids {
        let alive = || Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
        let deadline = Instant::now() + grace;
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if alive() {
            // SAFETY: kill(2) with plain integers; a process we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(1);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// The sandboxed runtime's additions to the shared command line.
pub struct Sandboxed;

impl native::Flavor for Sandboxed {
    fn name(&self) -> &'static str {
        "sandboxed"
    }

    fn default_root(&self) -> &'static str {
        "/run/oci-sandboxed"
    }

    fn prepare(&self, store: &Store, opts: &mut CreateOptions) -> anyhow::Result<()> {
        container::state::check_id(&opts.id)?;
        let spec = container::config::load(&opts.bundle)?;
        let notify = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.syscalls().as_ref())
            .is_some_and(|rules| rules.iter().any(|r| r.action() == LinuxSeccompAction::ScmpActNotify));
        if notify {
            anyhow::bail!(
                "linux.seccomp.syscalls: SCMP_ACT_NOTIFY cannot be served in this sandbox: the container's one seccomp listener belongs to its supervisor"
            );
        }
        refuse_host_directories(&opts.bundle, &spec, opts.preserve_fds)?;
        std::fs::create_dir_all(&store.root).with_context(|| format!("--root {}", store.root.display()))?;
        let socket = socket_path(store, &opts.id);
        let filter = mediation_filter(&crate::policy::mediated_syscalls(), &socket)?;
        let exe = std::env::current_exe().context("finding this binary for the supervisor")?;
        // The supervisor records its pid itself, before it says it is ready
        // (so a full disk under --root fails it, not a leak later).
        start_supervisor(&exe, &socket, opts)?;
        opts.mediation = Some(Mediation { filter, socket });
        Ok(())
    }

    fn abandon(&self, store: &Store, opts: &CreateOptions) {
        stop_supervisor(store, &opts.id, Duration::ZERO);
        let _ = std::fs::remove_file(socket_path(store, &opts.id));
    }

    fn created(&self, store: &Store, opts: &CreateOptions) -> anyhow::Result<()> {
        // The init connected during create: the socket's name has served.
        let _ = std::fs::remove_file(socket_path(store, &opts.id));
        Ok(())
    }

    fn deleted(&self, store: &Store, id: &str) {
        // With the container gone its supervisor hangs up by itself; give it
        // a moment, then make sure.
        stop_supervisor(store, id, Duration::from_secs(1));
        // Normally gone since `created`; still here after a killed create.
        let _ = std::fs::remove_file(socket_path(store, id));
    }

    fn features(&self, mut doc: serde_json::Value) -> serde_json::Value {
        doc["annotations"]["org.ociharness.sandbox"] = serde_json::Value::from(
            "a supervisor mediates the container's file, socket, mount, namespace, ptrace, bpf and key syscalls",
        );
        doc["annotations"]["org.ociharness.sandbox.no-new-privileges"] = serde_json::Value::from(
            "always set: the mediation filter needs it, and a sandboxed program must not gain privileges",
        );
        doc["annotations"]["org.ociharness.sandbox.seccomp-filter"] = serde_json::Value::from(
            "always present (seccomp mode 2), even without linux.seccomp: it is how calls reach the supervisor",
        );
        doc["annotations"]["org.ociharness.sandbox.seccomp-notify"] = serde_json::Value::from(
            "the container's seccomp listener belongs to the supervisor: a config's own SCMP_ACT_NOTIFY rules cannot be served",
        );
        doc
    }
}

/// Descriptors passed in (`--preserve-fds`, LISTEN_FDS: fds 3 on) must not
/// be directories outside the container's root: from one the container could
/// walk the host's tree (`openat(3, "..")`, `/proc/self/fd/3/..`), and the
/// calls that continue in the kernel after the supervisor looked (stat,
/// exec, pseudo-filesystem opens) re-read their path, so no check made in
/// the supervisor could hold against a racing thread. Refused at the source.
fn refuse_host_directories(bundle: &Path, spec: &oci_spec::runtime::Spec, count: u32) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| "rootfs".into());
    let rootfs = bundle.join(rootfs);
    let root = crate::resolve::open_path(&rootfs).with_context(|| format!("root.path {}", rootfs.display()))?;
    for fd in 3..3 + count as i32 {
        let Ok(f) = crate::resolve::open_path(Path::new(&format!("/proc/self/fd/{fd}"))) else {
            continue;
        };
        let inside = crate::resolve::beneath(f.as_fd(), root.as_fd())
            .with_context(|| format!("--preserve-fds: looking at fd {fd}"))?;
        if !inside {
            let what = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".into());
            anyhow::bail!(
                "--preserve-fds: fd {fd} is the host directory {what}: from a directory the container could walk the host's tree, so the sandbox does not pass it in"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mediation_filter_notifies_and_needs_a_listener() {
        let f = mediation_filter(&["openat", "mkdirat", "getppid"], Path::new("/run/x.sock")).unwrap();
        assert!(f.needs_listener());
        assert!(mediation_filter(&["no_such_syscall"], Path::new("/run/x.sock")).is_ok_and(|f| !f.skipped().is_empty()));
    }
}
