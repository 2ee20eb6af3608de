//! Boots a real micro-VM (TCG here) with a tiny bundle and drives the agent
//! over the channel as the shim does: create, start, the process's stdout,
//! stderr and exit status, a memory limit enforced by the guest's cgroup v2,
//! and no QEMU process or file left after.
//!
//! This binary plays every part, as the `virtualized` binary does: run by
//! cargo it is the test; packed as `/init` it is the guest's agent (PID 1)
//! and, as `/init native ...`, the runtime the agent runs; copied into the
//! rootfs it is the container's process (`/box say ...`).
//!
//! `cargo test --test boot -- --boots N` boots N times and prints the
//! median boot breakdown instead.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use virtualized::proto::{self, Event, ExitStatus, Frame, Kind, Request};
use virtualized::vm::{Accel, BootTimes, Vm, VmConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The container's process first: inside a pid namespace it is PID 1 too.
    if args.get(1).map(String::as_str) == Some("say") {
        say(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some("native") {
        native::main_with_args(&native::Native, args[1..].to_vec());
    }
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } == 1 {
        virtualized::guest::main();
    }
    if args.iter().any(|a| a == "--list") {
        println!("a_container_runs_in_a_vm_and_leaves_nothing: test");
        return;
    }
    if let Some(skip) = cannot_boot() {
        println!("boot: skipped: {skip}");
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--boots") {
        let n = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(5);
        measure(n);
        return;
    }
    a_container_runs_in_a_vm_and_leaves_nothing();
    println!("boot: a_container_runs_in_a_vm_and_leaves_nothing ... ok");
}

/// The container's process: prints its arguments to stdout, the memory
/// limit of its cgroup to stderr, exits 7.
fn say(words: &[String]) -> ! {
    println!("{}", words.join(" "));
    let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").unwrap_or_else(|e| format!("unreadable: {e}\n"));
    eprint!("memory.max={max}");
    std::process::exit(7)
}

fn cannot_boot() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("no qemu-system-x86_64".into());
    }
    let env = std::env::var_os("OCI_VM_KERNEL").map(Into::into);
    if virtualized::vm::kernel::find(None, env, Path::new("/boot")).is_err() {
        return Some("no guest kernel".into());
    }
    None
}

/// A bundle whose process is this binary saying `words`, with a 64 MiB
/// memory limit.
fn bundle(dir: &Path, words: &[&str]) {
    let rootfs = dir.join("rootfs");
    for d in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let me = std::fs::read("/proc/self/exe").unwrap();
    let me = virtualized::vm::initramfs::strip_elf(me).expect("this binary is ELF");
    std::fs::write(rootfs.join("box"), me).unwrap();
    std::fs::set_permissions(rootfs.join("box"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut argv = vec!["/box", "say"];
    argv.extend_from_slice(words);
    let cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": argv, "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/"]},
        "hostname": "guest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "cgroup"}],
            "cgroupsPath": "/boot-test",
            "resources": {"memory": {"limit": 67108864}}
        }
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
}

fn config(dir: &Path) -> VmConfig {
    VmConfig {
        id: "boot-test".into(),
        dir: dir.join("vm"),
        bundle: dir.join("bundle"),
        memory_mib: 256,
        cpus: 1,
        kernel: None,
        accel: Accel::Tcg,
    }
}

/// Output of stream 0 read so far.
#[derive(Default)]
struct Output {
    out: Vec<u8>,
    err: Vec<u8>,
}

/// Sends `req` and reads until its reply; the process's output may come
/// first (it runs as soon as `Start` is served).
fn request(ch: &UnixStream, req: &Request, o: &mut Output) -> Event {
    proto::write_message(&mut &*ch, req).unwrap();
    loop {
        match proto::read_frame(&mut &*ch).unwrap() {
            Some(Frame::Control(p)) => return proto::decode(&p).unwrap(),
            Some(Frame::Data { kind, stream: 0, bytes }) => match kind {
                Kind::Stdout => o.out.extend(bytes),
                Kind::Stderr => o.err.extend(bytes),
                _ => {}
            },
            Some(other) => panic!("{other:?} before the reply to {req:?}"),
            None => panic!("channel closed before the reply to {req:?}"),
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn a_container_runs_in_a_vm_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    bundle(&t.path().join("bundle"), &["hello", "from", "the", "guest"]);
    let cfg = config(t.path());
    let mut vm = Vm::boot(&cfg).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("boot: {}", serde_json::to_string(vm.boot_times()).unwrap());
    let ch = vm.channel().try_clone().unwrap();
    ch.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut o = Output::default();
    let created = request(
        &ch,
        &Request::Create {
            id: "boot-test".into(),
            terminal: false,
            size: None,
        },
        &mut o,
    );
    assert!(
        matches!(created, Event::Created { pid } if pid > 0),
        "{created:?}\n{}",
        vm.console()
    );
    assert_eq!(request(&ch, &Request::Start, &mut o), Event::Ok, "{}", vm.console());
    let status = loop {
        match proto::read_frame(&mut &ch).unwrap() {
            Some(Frame::Data { kind, stream: 0, bytes }) => match kind {
                Kind::Stdout => o.out.extend(bytes),
                Kind::Stderr => o.err.extend(bytes),
                _ => {}
            },
            Some(Frame::Control(p)) => match proto::decode::<Event>(&p).unwrap() {
                Event::Exited { stream: 0, status } => break status,
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}\n{}", vm.console()),
        }
    };
    assert_eq!(status, ExitStatus::Code(7));
    assert_eq!(String::from_utf8_lossy(&o.out), "hello from the guest\n");
    assert_eq!(String::from_utf8_lossy(&o.err), "memory.max=67108864\n");
    proto::write_message(&mut &ch, &Request::Shutdown).unwrap();
    assert!(
        vm.wait_exit(Duration::from_secs(20)),
        "the guest did not power off\n{}",
        vm.console()
    );
    let pid = vm.qemu_pid();
    vm.kill();
    assert!(!alive(pid), "QEMU {pid} is still there");
    let left: Vec<_> = std::fs::read_dir(&cfg.dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // A VM dropped without a shutdown is killed too.
    let vm = Vm::boot(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let pid = vm.qemu_pid();
    drop(vm);
    assert!(!alive(pid), "QEMU {pid} survived its Vm");
    assert_eq!(std::fs::read_dir(&cfg.dir).unwrap().count(), 0);
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort();
    v[v.len() / 2]
}

type Sample = (BootTimes, u64, u64);

/// Boots `n` times (and creates the container once per boot) and prints
/// the median of each part.
fn measure(n: usize) {
    let t = tempfile::tempdir().unwrap();
    bundle(&t.path().join("bundle"), &["x"]);
    let cfg = config(t.path());
    let mut all: Vec<Sample> = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let vm = Vm::boot(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let boot = t0.elapsed().as_millis() as u64;
        let ch = vm.channel().try_clone().unwrap();
        let c = Instant::now();
        let ev = request(
            &ch,
            &Request::Create {
                id: "m".into(),
                terminal: false,
                size: None,
            },
            &mut Output::default(),
        );
        assert!(matches!(ev, Event::Created { .. }), "{ev:?}");
        let create = c.elapsed().as_millis() as u64;
        all.push((vm.boot_times().clone(), boot, create));
        drop(vm);
    }
    let col = |f: &dyn Fn(&Sample) -> u64| median(all.iter().map(f).collect());
    let guest = |x: &Sample| {
        x.0.guest.clone().unwrap_or(proto::GuestBoot {
            kernel: String::new(),
            agent_start_ms: 0,
            modules_ms: 0,
            ready_ms: 0,
        })
    };
    let mut o = std::io::stdout();
    let _ = writeln!(
        o,
        "boots={n} machine={} accel={} initrd_bytes={}",
        all[0].0.machine, all[0].0.accel, all[0].0.initramfs_bytes
    );
    let _ = writeln!(
        o,
        "median ms: initramfs={} exec={} first_console={} guest_agent_start={} guest_modules={} guest_ready={} \
         host_ready={} boot_total={} create={}",
        col(&|x| x.0.initramfs_ms),
        col(&|x| x.0.exec_ms),
        col(&|x| x.0.console_ms.unwrap_or(0)),
        col(&|x| guest(x).agent_start_ms),
        col(&|x| guest(x).modules_ms),
        col(&|x| guest(x).ready_ms),
        col(&|x| x.0.ready_ms),
        col(&|x| x.1),
        col(&|x| x.2),
    );
}
