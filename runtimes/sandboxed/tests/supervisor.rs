//! The supervisor's loop against real seccomp listeners (root): each test
//! runs this test binary again as a child (`child_process`, ignored in a
//! normal run) that installs a filter notifying `getppid`, `openat` and
//! `mkdirat`, hands the listener over the OCI seccomp-agent socket with the
//! container library's sender, and runs one scenario; the parent serves it
//! with a test mediator (not the real policy) and checks what the child saw
//! and what `serve` counted.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use sandboxed::supervisor::{
    serve, AgentMessage, AgentSocket, Answer, ContainerMemory, Mediator, Notification, ServeOptions, Stats,
};

const SCENARIO: &str = "SANDBOXED_SUPERVISOR_TEST_SCENARIO";
const AGENT: &str = "SANDBOXED_SUPERVISOR_TEST_AGENT";
const DIR: &str = "SANDBOXED_SUPERVISOR_TEST_DIR";
/// Paths under this prefix are opened by the supervisor and handed in.
const HANDED: &str = "/sandboxed-supervisor-test/";
const CONTENT: &[u8] = b"opened by the supervisor";
const FLOOD: u64 = 100_000;
/// Mediated opens in the flood, each answered with an fd handed in.
const OPENS: u64 = 10_000;
const THREADS: usize = 1000;
const VALUE: i64 = 4242;
/// How long anything may take before a test gives up (the machine is
/// shared and noisy: generous, and never a performance assertion).
const PATIENCE: Duration = Duration::from_secs(60);

// ---- the mediator ----------------------------------------------------------

/// Decides by syscall and by the last component of the path argument.
#[derive(Default)]
struct TestMediator {
    /// The file whose fd `openat` of a HANDED path receives.
    file: PathBuf,
    getppids: AtomicU64,
    /// Told the caller's pid when a `block` call arrives.
    blocked: Mutex<Option<mpsc::Sender<i32>>>,
    /// The result of reading a `block` call's path after its caller died.
    late_read: Mutex<Option<Result<(), String>>>,
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

impl Mediator for TestMediator {
    fn handle(&self, n: &Notification, mem: &dyn ContainerMemory) -> Answer {
        match n.syscall_nr as libc::c_long {
            libc::SYS_getppid => {
                self.getppids.fetch_add(1, Ordering::SeqCst);
                Answer::Continue
            }
            libc::SYS_mkdirat => {
                let path = match mem.read_path(n.args[1]) {
                    Ok(p) => p,
                    Err(e) => return Answer::Errno(e.errno()),
                };
                let name = Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()))
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match name.as_str() {
                    "continue" => Answer::Continue,
                    "denied" => Answer::Errno(libc::EACCES),
                    "value" => Answer::Value(VALUE),
                    "panic" => panic!("a mediator bug"),
                    "bad-errno" => Answer::Errno(0),
                    // Held until another worker has answered a getppid.
                    "slow" => {
                        let before = self.getppids.load(Ordering::SeqCst);
                        if wait_until(|| self.getppids.load(Ordering::SeqCst) > before) {
                            Answer::Value(1)
                        } else {
                            Answer::Errno(libc::ETIMEDOUT)
                        }
                    }
                    // Held until the caller is gone.
                    "block" => {
                        if let Some(tx) = self.blocked.lock().unwrap().take() {
                            tx.send(n.pid).unwrap();
                        }
                        wait_until(|| !mem.is_live());
                        // What a late read of the dead caller's memory says.
                        let late = mem.read_path(n.args[1]).map(|_| ()).map_err(|e| e.to_string());
                        *self.late_read.lock().unwrap() = Some(late);
                        Answer::Value(0)
                    }
                    _ => Answer::Errno(libc::ENOENT),
                }
            }
            libc::SYS_openat => {
                let path = match mem.read_path(n.args[1]) {
                    Ok(p) => p,
                    Err(e) => return Answer::Errno(e.errno()),
                };
                let Some(rest) = path.to_bytes().strip_prefix(HANDED.as_bytes()) else {
                    return Answer::Continue;
                };
                let fd: OwnedFd = std::fs::File::open(&self.file).unwrap().into();
                match rest {
                    // Flags the kernel refuses: the answer must be replaced.
                    b"bad-flags" => Answer::AddFd { fd, flags: 0xdead },
                    _ => Answer::AddFd {
                        fd,
                        flags: libc::O_CLOEXEC as u32,
                    },
                }
            }
            _ => Answer::Errno(libc::ENOSYS),
        }
    }
}

// ---- the parent side -------------------------------------------------------

struct Running {
    child: std::process::Child,
    stdout: mpsc::Receiver<String>,
    served: mpsc::Receiver<sandboxed::supervisor::Result<Stats>>,
    msg: AgentMessage,
    _dir: tempfile::TempDir,
}

/// Starts the child for `scenario` and serves its listener in a thread.
fn start(scenario: &str, mediator: Arc<TestMediator>, opts: ServeOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let agent = AgentSocket::bind(&sock).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, scenario)
        .env(AGENT, &sock)
        .env(DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, stdout) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let (fd, msg) = match agent.accept(Some(PATIENCE)) {
        Ok(x) => x,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{e}; child said: {}", stdout.recv().unwrap_or_default());
        }
    };
    let (tx, served) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(serve(fd, &*mediator, &opts));
    });
    Running {
        child,
        stdout,
        served,
        msg,
        _dir: dir,
    }
}

impl Running {
    /// Waits for the child to exit (killing it after PATIENCE); returns
    /// its status and what it printed.
    fn finish(&mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let s = self.child.wait().unwrap();
                panic!("the child hung ({s}): {}", self.stdout.recv().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        (status, self.stdout.recv_timeout(PATIENCE).unwrap_or_default())
    }

    /// What serve returned; it must end once the child is reaped.
    fn stats(&self) -> Stats {
        self.served
            .recv_timeout(PATIENCE)
            .expect("serve did not end after the child was gone")
            .unwrap()
    }
}

fn mediator(dir_file: Option<&Path>) -> Arc<TestMediator> {
    Arc::new(TestMediator {
        file: dir_file.map(Path::to_path_buf).unwrap_or_default(),
        ..Default::default()
    })
}

fn content_file() -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(CONTENT).unwrap();
    f
}

/// The child's `RESULT key value` lines.
fn result(out: &str, key: &str) -> Option<String> {
    out.lines()
        // libtest prints the test's name on the line the output begins.
        .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .map(str::to_string)
}

fn assert_ok(status: std::process::ExitStatus, out: &str) {
    assert!(status.success(), "child {status}:\n{out}");
}

// ---- the tests -------------------------------------------------------------

#[test]
fn every_kind_of_answer_reaches_the_caller() {
    let file = content_file();
    let m = mediator(Some(file.path()));
    let mut r = start("answers", m, ServeOptions::default());
    assert_eq!(r.msg.pid as u32, r.child.id());
    assert_eq!(r.msg.fds, ["seccompFd"]);
    let (status, out) = r.finish();
    assert_ok(status, &out);
    let s = r.stats();
    // continue(mkdirat) + openat(plain, Continue) + getppids by the slow test
    assert!(s.continued >= 3, "{s:?}");
    // denied, panic, bad-errno, too long, bad pointer
    assert_eq!(s.errno, 5, "{s:?}");
    assert_eq!(s.panics, 1, "{s:?}");
    // value, slow
    assert_eq!(s.value, 2, "{s:?}");
    assert_eq!(s.add_fd, 1, "{s:?}");
    assert_eq!(s.replaced, 1, "{s:?}");
    assert_eq!((s.stale, s.unanswered), (0, 0), "{s:?}");
    assert_eq!(
        s.notifications,
        s.continued + s.errno + s.value + s.add_fd + s.replaced,
        "{s:?}"
    );
}

#[test]
fn a_flood_of_mediated_calls_is_answered_call_by_call() {
    let file = content_file();
    let m = mediator(Some(file.path()));
    let mut r = start("flood", m.clone(), ServeOptions::default());
    let (status, out) = r.finish();
    assert_ok(status, &out);
    let s = r.stats();
    assert_eq!(s.continued, FLOOD, "{s:?}");
    assert_eq!(s.add_fd, OPENS, "{s:?}");
    assert_eq!(s.notifications, FLOOD + OPENS, "{s:?}");
    assert_eq!(m.getppids.load(Ordering::SeqCst), FLOOD);
    // Measured, not asserted (a test must not fail on a noisy machine).
    let r = |k| result(&out, k).unwrap();
    eprintln!(
        "getppid: unmediated {} ns, mediated (continue) {} ns per call; \
         open+close: unmediated {} ns, mediated (supervisor opens, addfd) {} ns",
        r("unmediated_ns"),
        r("mediated_ns"),
        r("unmediated_open_ns"),
        r("mediated_open_ns")
    );
}

#[test]
fn a_thousand_threads_each_get_their_answer() {
    let m = mediator(None);
    let mut r = start("threads", m.clone(), ServeOptions::default());
    let (status, out) = r.finish();
    assert_ok(status, &out);
    let s = r.stats();
    assert_eq!(m.getppids.load(Ordering::SeqCst), THREADS as u64);
    // Starting threads makes a few openat calls of its own (Continue).
    assert_eq!(s.notifications, s.continued, "{s:?}");
    assert!(s.continued >= THREADS as u64, "{s:?}");
}

#[test]
fn a_caller_killed_inside_a_mediated_call_does_not_wedge_the_loop() {
    let m = mediator(None);
    let (tx, rx) = mpsc::channel();
    *m.blocked.lock().unwrap() = Some(tx);
    let mut r = start("killed", m.clone(), ServeOptions::default());
    let pid = rx.recv_timeout(PATIENCE).expect("the blocking call never arrived");
    // The notification names the calling thread, in the child.
    assert!(Path::new(&format!("/proc/{}/task/{pid}", r.child.id())).exists());
    // Meanwhile the other workers keep answering (the child's getppids).
    assert!(wait_until(|| m.getppids.load(Ordering::SeqCst) >= 100));
    r.child.kill().unwrap();
    let (status, _) = r.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let s = r.stats();
    // The held call, answered after its caller died; getppids the kill
    // interrupted may count as well.
    assert!(s.stale >= 1, "{s:?}");
    assert_eq!(s.unanswered, 0, "{s:?}");
    let late = m.late_read.lock().unwrap().take().expect("the held call ended");
    let e = late.expect_err("memory of a dead caller was read");
    assert!(e.contains("stale"), "{e}");
}

#[test]
fn a_storm_of_threads_killed_mid_flood_leaves_serve_to_end_cleanly() {
    let m = mediator(None);
    let mut r = start("storm", m.clone(), ServeOptions::default());
    assert!(wait_until(|| m.getppids.load(Ordering::SeqCst) >= 10_000));
    r.child.kill().unwrap();
    let (status, _) = r.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let s = r.stats();
    assert_eq!(s.unanswered, 0, "{s:?}");
    // A call killed before it was received counts as stale only.
    assert!(
        s.continued <= s.notifications && s.notifications <= s.continued + s.stale,
        "{s:?}"
    );
}

#[test]
fn the_stop_flag_ends_serve_and_later_calls_fail_with_enosys() {
    let stop = Arc::new(AtomicBool::new(false));
    let opts = ServeOptions {
        stop: Some(stop.clone()),
        ..Default::default()
    };
    let mut r = start("after-stop", mediator(None), opts);
    stop.store(true, Ordering::SeqCst);
    // serve returns (and closes the listener) while the child still lives.
    let s = r.stats();
    assert_eq!(s.notifications, 0, "{s:?}");
    assert!(r.child.try_wait().unwrap().is_none());
    // Now the child makes a mediated call: nobody listens, so the kernel
    // fails it; it does not run unmediated and does not hang.
    r.child.stdin.take().unwrap().write_all(b"go").unwrap();
    let (status, out) = r.finish();
    assert_ok(status, &out);
}

#[test]
fn one_worker_still_serves_everything() {
    let file = content_file();
    let opts = ServeOptions {
        workers: 1,
        ..Default::default()
    };
    let mut r = start("flood-small", mediator(Some(file.path())), opts);
    let (status, out) = r.finish();
    assert_ok(status, &out);
    assert_eq!(r.stats().continued, 1000);
}

// ---- the child side --------------------------------------------------------

/// The filter: `getppid`, `openat`, `mkdirat` notify, the rest is allowed.
fn filter(agent: &Path) -> container::seccomp::Filter {
    let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": agent,
        "syscalls": [{"names": ["getppid", "openat", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }))
    .unwrap();
    container::seccomp::Filter::compile(&spec).unwrap()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn mkdirat(p: &Path) -> (i32, i32) {
    // SAFETY: `c(p)` is a valid C string for the call.
    let r = unsafe { libc::mkdirat(libc::AT_FDCWD, c(p).as_ptr(), 0o755) };
    (r, if r < 0 { errno() } else { 0 })
}

fn ppid() -> i64 {
    // SAFETY: getppid has no memory effects.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

fn ns_per_call(n: u64, f: impl Fn()) -> u64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    (t.elapsed().as_nanos() / n as u128) as u64
}

/// The child: not a test of its own, run by the tests above.
#[test]
#[ignore = "the child side of the supervisor tests, started by them"]
fn child_process() {
    let scenario = std::env::var(SCENARIO).expect("run by the supervisor tests, not by hand");
    let agent = PathBuf::from(std::env::var_os(AGENT).unwrap());
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    let real_ppid = ppid();
    let unmediated_ns = ns_per_call(FLOOD, || {
        std::hint::black_box(ppid());
    });

    let open_close = |p: &CString| {
        // SAFETY: a valid C string; the fd returned is closed right away.
        let fd = unsafe { libc::openat(libc::AT_FDCWD, p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: closes the fd just opened, owned by nobody else.
            unsafe { libc::close(fd) };
        }
        fd >= 0
    };
    let plain = dir.join("plain-open");
    std::fs::write(&plain, CONTENT).unwrap();
    let plain = c(&plain);
    let unmediated_open_ns = ns_per_call(OPENS, || assert!(open_close(&plain)));

    let f = filter(&agent);
    let stream = container::seccomp::connect_listener(&agent).unwrap();
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) has no memory effects.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, 0);
    // The filter covers this thread and the threads it starts.
    let fd = f.install().unwrap().unwrap();
    let state = serde_json::json!({"ociVersion": "1.3.0", "id": "test", "status": "creating",
        "pid": std::process::id(), "bundle": dir});
    container::seccomp::send_on(&stream, &agent, &state, None, std::process::id() as i32, &fd).unwrap();
    drop((fd, stream));

    let mut failures: Vec<String> = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            failures.push(format!("{what}: {detail}"));
        }
    };
    match scenario.as_str() {
        "answers" => {
            let (r, e) = mkdirat(&dir.join("continue"));
            check("continue", r == 0 && dir.join("continue").is_dir(), format!("{r} {e}"));
            let (r, e) = mkdirat(&dir.join("denied"));
            check(
                "errno",
                r == -1 && e == libc::EACCES && !dir.join("denied").exists(),
                format!("{r} {e}"),
            );
            let (r, e) = mkdirat(&dir.join("value"));
            check("value", r as i64 == VALUE, format!("{r} {e}"));
            let (r, e) = mkdirat(&dir.join("panic"));
            check("panic is EPERM", r == -1 && e == libc::EPERM, format!("{r} {e}"));
            let (r, e) = mkdirat(&dir.join("bad-errno"));
            check("errno 0 is EPERM", r == -1 && e == libc::EPERM, format!("{r} {e}"));
            let long = dir.join("a".repeat(5000));
            let (r, e) = mkdirat(&long);
            check("too long", r == -1 && e == libc::ENAMETOOLONG, format!("{r} {e}"));
            // SAFETY: the kernel (and the supervisor) must refuse the
            // address 8; nothing is written through it.
            let r = unsafe { libc::mkdirat(libc::AT_FDCWD, 8 as *const libc::c_char, 0o755) };
            let e = errno();
            check("bad pointer", r == -1 && e == libc::EFAULT, format!("{r} {e}"));

            let handed = c(&Path::new(HANDED).join("file"));
            // SAFETY: a valid C string; the fd returned is owned below.
            let fd = unsafe { libc::openat(libc::AT_FDCWD, handed.as_ptr(), libc::O_RDONLY) };
            if fd < 0 {
                check("addfd", false, format!("{}", errno()));
            } else {
                // SAFETY: fcntl F_GETFD on the fd just returned.
                let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
                check("addfd cloexec", flags & libc::FD_CLOEXEC != 0, format!("{flags:#x}"));
                // SAFETY: the fd the supervisor installed is ours alone now.
                let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                let mut s = Vec::new();
                f.read_to_end(&mut s).unwrap();
                check("addfd content", s == CONTENT, String::from_utf8_lossy(&s).into_owned());
            }
            let bad = c(&Path::new(HANDED).join("bad-flags"));
            // SAFETY: a valid C string.
            let r = unsafe { libc::openat(libc::AT_FDCWD, bad.as_ptr(), libc::O_RDONLY) };
            let e = errno();
            check(
                "refused addfd replaced",
                r == -1 && e == libc::EINVAL,
                format!("{r} {e}"),
            );
            // openat through std (Continue): really opens.
            let plain = std::fs::write(dir.join("plain"), b"x");
            check("continue open", plain.is_ok(), format!("{plain:?}"));

            // One slow decision must not hold the others: the slow call
            // is answered only after a getppid was.
            let slow_dir = dir.clone();
            let slow = std::thread::spawn(move || mkdirat(&slow_dir.join("slow")));
            while !slow.is_finished() {
                check("getppid beside slow", ppid() == real_ppid, String::new());
                std::thread::sleep(Duration::from_millis(1));
            }
            let (r, e) = slow.join().unwrap();
            check("slow", r == 1, format!("{r} {e}"));
        }
        "flood" => {
            let bad = AtomicU64::new(0);
            let mediated_ns = ns_per_call(FLOOD, || {
                if ppid() != real_ppid {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            });
            let handed = c(&Path::new(HANDED).join("file"));
            let mediated_open_ns = ns_per_call(OPENS, || {
                if !open_close(&handed) {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            });
            let bad = bad.load(Ordering::Relaxed);
            check("flood", bad == 0, format!("{bad} wrong answers"));
            println!("RESULT unmediated_ns {unmediated_ns}");
            println!("RESULT mediated_ns {mediated_ns}");
            println!("RESULT unmediated_open_ns {unmediated_open_ns}");
            println!("RESULT mediated_open_ns {mediated_open_ns}");
        }
        "flood-small" => {
            let bad = (0..1000).filter(|_| ppid() != real_ppid).count();
            check("flood", bad == 0, format!("{bad} wrong answers"));
        }
        "threads" => {
            let barrier = Arc::new(std::sync::Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let b = barrier.clone();
                    std::thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            b.wait();
                            ppid()
                        })
                        .unwrap()
                })
                .collect();
            let bad = handles
                .into_iter()
                .map(|h| h.join().ok())
                .filter(|r| *r != Some(real_ppid))
                .count();
            check("threads", bad == 0, format!("{bad} of {THREADS} wrong"));
        }
        "killed" => {
            let d = dir.clone();
            std::thread::spawn(move || mkdirat(&d.join("block")));
            // Keep other calls coming until the parent kills us.
            loop {
                ppid();
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        "storm" => {
            for _ in 0..8 {
                std::thread::spawn(|| loop {
                    ppid();
                });
            }
            loop {
                ppid();
            }
        }
        "after-stop" => {
            let mut b = [0u8; 2];
            std::io::stdin().read_exact(&mut b).unwrap();
            let r = ppid();
            let e = errno();
            check("no listener: ENOSYS", r == -1 && e == libc::ENOSYS, format!("{r} {e}"));
        }
        other => panic!("unknown scenario {other}"),
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    std::io::stdout().flush().unwrap();
    std::process::exit(if failures.is_empty() { 0 } else { 1 });
}
