//! VM templates (Kata's templating): a guest booted once to an agent that
//! waits for its bundle, paused and saved, from which each container's VM
//! starts instead of booting.
//!
//! The template's RAM is a file (`ram`) QEMU maps shared while the template
//! runs; its device and CPU state is a migration stream (`state`) saved with
//! `x-ignore-shared`, so it holds no RAM. A clone maps `ram` private (copy
//! on write: pages it never writes stay shared in the page cache), loads
//! `state` with `-incoming`, and is continued. The bundle then travels over
//! the agent's channel ([`proto::Request::Bundle`]) with the host's clock
//! and fresh entropy (clones share the template's clock and random pool).
//!
//! A template is keyed by everything its state depends on: the agent
//! binary, the kernel, the QEMU command line (machine, memory, CPUs,
//! kernel arguments) and QEMU's own binary.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::qemu::{self, Launch};
use super::{Error, Result};
use crate::proto;

/// A saved template's files.
#[derive(Debug, Clone)]
pub struct Template {
    pub dir: PathBuf,
    /// The agent's account of the template's boot.
    pub guest: proto::GuestBoot,
    /// The kernel command line it booted with; a clone is started with the
    /// same (it is not in the key whole: see [`dir_for`]).
    pub append: String,
}

impl Template {
    pub fn ram(&self) -> PathBuf {
        self.dir.join("ram")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// A QMP client on QEMU's monitor socket.
pub struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    /// Reads the greeting and leaves capabilities negotiation mode.
    pub fn new(s: UnixStream, timeout: Duration) -> Result<Qmp> {
        let w = s.try_clone().map_err(io("cloning the QMP socket", Path::new("")))?;
        let _ = s.set_read_timeout(Some(timeout));
        let mut q = Qmp {
            r: BufReader::new(s),
            w,
        };
        q.line()?;
        q.cmd("qmp_capabilities", json!({}))?;
        Ok(q)
    }

    fn line(&mut self) -> Result<Value> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) => Err(Error::Boot("qmp: QEMU closed its monitor".into())),
            Ok(_) => serde_json::from_str(&l).map_err(|e| Error::Boot(format!("qmp: {e}: {l}"))),
            Err(e) => Err(Error::Boot(format!("qmp: {e}"))),
        }
    }

    /// Runs `name`; its `return` value, or its error as an error.
    pub fn cmd(&mut self, name: &str, args: Value) -> Result<Value> {
        let msg = json!({"execute": name, "arguments": args}).to_string() + "\n";
        self.w
            .write_all(msg.as_bytes())
            .map_err(|e| Error::Boot(format!("qmp {name}: {e}")))?;
        loop {
            let v = self.line()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(Error::Boot(format!("qmp {name}: {e}")));
            }
            // An asynchronous event: skip it.
        }
    }

    /// Polls until the migration is `completed` (error if it failed or
    /// `deadline` passed).
    pub fn wait_migration(&mut self, start: Instant, deadline: Duration) -> Result<()> {
        loop {
            let r = self.cmd("query-migrate", json!({}))?;
            match r.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(()),
                Some("failed") | Some("cancelled") => {
                    return Err(Error::Boot(format!("qmp: migration {r}")));
                }
                _ => {}
            }
            if start.elapsed() > deadline {
                return Err(Error::Boot(format!("qmp: migration not done in {deadline:?}: {r}")));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// QEMU's binary identity, for the key (a new QEMU may not load an old
/// QEMU's state).
fn qemu_identity() -> String {
    let path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(qemu::QEMU))
                .find(|p| p.is_file())
        })
        .unwrap_or_default()
        .unwrap_or_else(|| PathBuf::from(qemu::QEMU));
    super::initramfs::exe_identity(&path).unwrap_or_default()
}

/// The template directory for `launch` (its initrd is the base archive,
/// its agent `agent`). The TSC rate each process measures for
/// `tsc_early_khz` varies in its last digits: it is left out of the key,
/// and a clone gets its template's.
pub fn dir_for(cache: &Path, agent: &Path, launch: &Launch) -> Result<PathBuf> {
    let mut stable = launch.clone();
    stable.append = stable
        .append
        .split_whitespace()
        .filter(|a| !a.starts_with("tsc_early_khz="))
        .collect::<Vec<_>>()
        .join(" ");
    let key = format!(
        "1|{}|{}|{}|{:?}",
        super::initramfs::exe_identity(agent)?,
        super::initramfs::exe_identity(&launch.kernel)?,
        qemu_identity(),
        qemu::args(&stable),
    );
    Ok(cache.join(format!("template-{:016x}", super::initramfs::fnv64(&key))))
}

/// The template at `dir`, if one was saved there whole.
pub fn load(dir: &Path) -> Option<Template> {
    let guest = fs::read(dir.join("guest.json")).ok()?;
    let guest = serde_json::from_slice(&guest).ok()?;
    let append = fs::read_to_string(dir.join("append")).ok()?;
    let t = Template {
        dir: dir.to_path_buf(),
        guest,
        append,
    };
    (t.ram().is_file() && t.state().is_file()).then_some(t)
}

/// Boots `launch` (memory in a shared file, a monitor) to the agent's
/// `Ready`, pauses it and saves it at `dir`; the files appear at once
/// (a directory renamed into place), so a reader sees a whole template or
/// none. `scratch` takes QEMU's logs.
pub fn create(dir: &Path, launch: &Launch, scratch: &Path, deadline: Duration) -> Result<Template> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).map_err(io("creating", parent))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("template"),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
    let made = save(&tmp, launch, scratch, deadline);
    let t = match made {
        Ok(guest) => {
            fs::write(
                tmp.join("guest.json"),
                serde_json::to_vec(&guest).expect("GuestBoot serializes"),
            )
            .map_err(io("writing", &tmp))?;
            fs::write(tmp.join("append"), &launch.append).map_err(io("writing", &tmp))?;
            match fs::rename(&tmp, dir) {
                Ok(()) => {}
                // Another process saved one first: use theirs.
                Err(_) if load(dir).is_some() => {
                    let _ = fs::remove_dir_all(&tmp);
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(io("renaming into place", dir)(e));
                }
            }
            prune(parent, dir);
            load(dir).ok_or_else(|| Error::Boot(format!("template {} vanished", dir.display())))
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    };
    let _ = fs::remove_file(scratch.join(QEMU_LOG));
    let _ = fs::remove_file(scratch.join(CONSOLE_LOG));
    t
}

/// QEMU's and the guest's logs while a template is made, in the
/// container's directory (removed after, and by [`super::Vm::kill`]).
pub const QEMU_LOG: &str = "template-qemu.log";
pub const CONSOLE_LOG: &str = "template-console.log";

/// Drops templates not used for a day (each agent build makes its own).
fn prune(cache: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache) else { return };
    let day = Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let p = e.path();
        let is_template = e.file_name().to_str().is_some_and(|n| n.starts_with("template-"));
        let stale = fs::metadata(p.join("state"))
            .and_then(|m| m.accessed())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if p != keep && is_template && p.is_dir() && stale {
            let _ = fs::remove_dir_all(&p);
            let _ = fs::remove_file(p.with_extension("lock"));
        }
        // What a maker killed mid-save left behind.
        let half_made = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(".template-") && n.ends_with(".tmp"));
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if half_made && old {
            let _ = fs::remove_dir_all(&p);
        }
    }
}

fn save(tmp: &Path, launch: &Launch, scratch: &Path, deadline: Duration) -> Result<proto::GuestBoot> {
    let mut l = launch.clone();
    l.memory_file = Some((tmp.join("ram"), true));
    l.qmp = true;
    l.incoming = false;
    let qlog = scratch.join(QEMU_LOG);
    let mut started = qemu::spawn(&l, &qlog, &scratch.join(CONSOLE_LOG))?;
    let result = (|| {
        let (guest, _) = qemu::wait_ready(&mut started, deadline)
            .map_err(|why| Error::Boot(format!("template boot: {why}; qemu: [{}]", qemu::tail(&qlog, 500))))?;
        let sock = started.qmp.take().expect("spawned with a monitor");
        let mut q = Qmp::new(sock, Duration::from_secs(10))?;
        q.cmd("stop", json!({}))?;
        q.cmd(
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]}),
        )?;
        let state = tmp.join("state");
        let path = state
            .to_str()
            .filter(|p| !p.contains(['\'', '\n']))
            .ok_or_else(|| Error::Config(format!("{}: not a plain path", state.display())))?;
        q.cmd("migrate", json!({"uri": format!("exec:cat > '{path}'")}))?;
        q.wait_migration(Instant::now(), Duration::from_secs(30))?;
        let _ = q.cmd("quit", json!({}));
        Ok(guest)
    })();
    qemu::kill(&mut started.child);
    if let Some(t) = started.console_thread.take() {
        let _ = t.join();
    }
    result
}

/// Continues a clone spawned from `t` with [`Launch::incoming`]: loads the
/// saved state and runs it.
pub fn restore(t: &Template, qmp: UnixStream, start: Instant, deadline: Duration) -> Result<()> {
    let mut q = Qmp::new(qmp, deadline)?;
    q.cmd(
        "migrate-set-capabilities",
        json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]}),
    )?;
    let state = t.state();
    let path = state
        .to_str()
        .filter(|p| !p.contains(['\'', '\n']))
        .ok_or_else(|| Error::Config(format!("{}: not a plain path", state.display())))?;
    q.cmd("migrate-incoming", json!({"uri": format!("exec:cat '{path}'")}))?;
    q.wait_migration(start, deadline)?;
    // The template was saved paused: the clone stays paused until told.
    q.cmd("cont", json!({}))?;
    Ok(())
}

/// Sends the bundle (a newc archive in `archive`) to a restored agent with
/// the host's clock and entropy, and waits for its reply.
pub fn send_bundle(ch: &UnixStream, archive: &[u8], deadline: Duration) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut entropy = vec![0u8; 64];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut entropy))
        .map_err(io("reading", Path::new("/dev/urandom")))?;
    let mut w = ch;
    proto::write_message(
        &mut w,
        &proto::Request::Bundle {
            realtime_ns: now,
            entropy,
        },
    )?;
    proto::write_data(&mut w, proto::Kind::Stdin, proto::BUNDLE_STREAM, archive)?;
    proto::write_data(&mut w, proto::Kind::Stdin, proto::BUNDLE_STREAM, &[])?;
    let _ = ch.set_read_timeout(Some(deadline));
    let reply = proto::read_frame(&mut w);
    let _ = ch.set_read_timeout(None);
    match reply? {
        Some(proto::Frame::Control(p)) => match proto::decode::<proto::Event>(&p)? {
            proto::Event::Ok => Ok(()),
            other => Err(Error::Boot(format!("the restored agent said {other:?} to the bundle"))),
        },
        other => Err(Error::Boot(format!("the restored agent sent {other:?} for the bundle"))),
    }
}

/// Holds an exclusive lock on `path` (created) while it lives: one process
/// at a time makes a given template.
pub struct Lock {
    _file: fs::File,
}

impl Lock {
    pub fn take(path: &Path) -> Result<Lock> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io("opening", path))?;
        // SAFETY: flock on a descriptor we own, for the file's lifetime.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io("locking", path)(std::io::Error::last_os_error()));
        }
        Ok(Lock { _file: f })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Machine;

    fn launch() -> Launch {
        Launch {
            machine: Machine::Microvm,
            kvm: false,
            kernel: std::env::current_exe().unwrap(),
            initrd: "/d/initrd".into(),
            memory_mib: 256,
            cpus: 1,
            append: "console=ttyS0".into(),
            mttcg: false,
            cpu: None,
            machine_opts: None,
            memory_file: None,
            qmp: false,
            incoming: false,
        }
    }

    #[test]
    fn the_key_follows_what_the_state_depends_on() {
        let exe = std::env::current_exe().unwrap();
        let c = Path::new("/cache");
        let a = dir_for(c, &exe, &launch()).unwrap();
        assert_eq!(a, dir_for(c, &exe, &launch()).unwrap());
        let mut more = launch();
        more.memory_mib = 512;
        assert_ne!(a, dir_for(c, &exe, &more).unwrap());
        let mut args = launch();
        args.append.push_str(" quiet");
        assert_ne!(a, dir_for(c, &exe, &args).unwrap());
        let mut tsc = launch();
        tsc.append.push_str(" tsc_early_khz=2500123");
        assert_eq!(
            a,
            dir_for(c, &exe, &tsc).unwrap(),
            "the measured TSC rate is not in the key"
        );
        assert!(a.starts_with(c));
    }

    #[test]
    fn a_partial_template_is_not_one() {
        let t = tempfile::tempdir().unwrap();
        assert!(load(t.path()).is_none());
        fs::write(t.path().join("ram"), b"").unwrap();
        fs::write(t.path().join("state"), b"").unwrap();
        assert!(load(t.path()).is_none(), "no guest.json yet");
        let g = proto::GuestBoot {
            kernel: "k".into(),
            agent_start_ms: 1,
            modules_ms: 2,
            ready_ms: 3,
        };
        fs::write(t.path().join("guest.json"), serde_json::to_vec(&g).unwrap()).unwrap();
        assert!(load(t.path()).is_none(), "no append yet");
        fs::write(t.path().join("append"), "console=ttyS0 tsc_early_khz=1").unwrap();
        let got = load(t.path()).unwrap();
        assert_eq!((got.guest, got.append.as_str()), (g, "console=ttyS0 tsc_early_khz=1"));
    }

    #[test]
    fn qmp_skips_events_and_reports_errors() {
        let (mine, theirs) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut r = BufReader::new(theirs.try_clone().unwrap());
            let mut w = theirs;
            let mut l = String::new();
            w.write_all(b"{\"QMP\": {}}\n").unwrap();
            r.read_line(&mut l).unwrap();
            assert!(l.contains("qmp_capabilities"), "{l}");
            w.write_all(b"{\"return\": {}}\n").unwrap();
            l.clear();
            r.read_line(&mut l).unwrap();
            w.write_all(b"{\"event\": \"STOP\"}\n{\"return\": {\"status\": \"completed\"}}\n")
                .unwrap();
            l.clear();
            r.read_line(&mut l).unwrap();
            w.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n")
                .unwrap();
        });
        let mut q = Qmp::new(mine, Duration::from_secs(5)).unwrap();
        q.wait_migration(Instant::now(), Duration::from_secs(5)).unwrap();
        let e = q.cmd("cont", json!({})).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        server.join().unwrap();
    }
}
