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
//! `cargo test --release --test boot -- --boots N [--variant
//! NAME:KEY=VALUE;KEY=VALUE]...` boots N times per variant instead (the
//! variants interleaved, each with its environment, e.g.
//! `--variant pvh: --variant bz:OCI_VM_PVH=0`) and prints the breakdown of
//! every boot and its medians as JSON on stdout.

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
        let variants: Vec<Variant> = args
            .windows(2)
            .filter(|w| w[0] == "--variant")
            .map(|w| parse_variant(&w[1]))
            .collect();
        measure(n, &variants);
        return;
    }
    // A clone of a template (the default; the first boot makes it), then
    // a cold boot.
    a_container_runs_in_a_vm_and_leaves_nothing();
    println!("boot: a_container_runs_in_a_vm_and_leaves_nothing (template) ... ok");
    std::env::set_var("OCI_VM_TEMPLATE", "0");
    a_container_runs_in_a_vm_and_leaves_nothing();
    println!("boot: a_container_runs_in_a_vm_and_leaves_nothing (cold boot) ... ok");
}

/// The container's process: prints its arguments to stdout, the memory
/// limit of its cgroup and the wall clock to stderr, exits 7.
fn say(words: &[String]) -> ! {
    println!("{}", words.join(" "));
    let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").unwrap_or_else(|e| format!("unreadable: {e}\n"));
    eprint!("memory.max={max}");
    // The guest's wall clock (a template's clone has the host's, sent with
    // the bundle).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    eprintln!("time={now}");
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

fn bench_env(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(dir: &Path) -> VmConfig {
    VmConfig {
        id: "boot-test".into(),
        dir: dir.join("vm"),
        bundle: dir.join("bundle"),
        // The measuring tool varies these (`OCI_VM_BENCH_MEMORY_MIB`,
        // `OCI_VM_BENCH_CPUS`); the shim sizes them from the config.
        memory_mib: bench_env("OCI_VM_BENCH_MEMORY_MIB", 256),
        cpus: bench_env("OCI_VM_BENCH_CPUS", 1),
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
    let template = std::env::var("OCI_VM_TEMPLATE").as_deref() != Ok("0");
    assert_eq!(
        vm.boot_times().entry.starts_with("template"),
        template,
        "{:?}",
        vm.boot_times()
    );
    let ch = vm.channel().try_clone().unwrap();
    ch.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut o = Output::default();
    let created = request(
        &ch,
        &Request::Create {
            id: "boot-test".into(),
            stream: 0,
            sandbox: None,
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
    assert_eq!(
        request(&ch, &Request::Start { container: None }, &mut o),
        Event::Ok,
        "{}",
        vm.console()
    );
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
    let err = String::from_utf8_lossy(&o.err);
    let (mem, time) = err.split_once("time=").unwrap_or((&err, ""));
    assert_eq!(mem, "memory.max=67108864\n");
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let guest: u64 = time
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no guest time in {err:?}"));
    assert!(host.abs_diff(guest) <= 5, "guest clock {guest}, host {host}");
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

/// One variant of a measured boot: a name and the environment it boots
/// with (`name:KEY=VALUE;KEY=VALUE`, e.g. `quiet:OCI_VM_APPEND=quiet`).
struct Variant {
    name: String,
    env: Vec<(String, String)>,
}

fn parse_variant(spec: &str) -> Variant {
    let (name, env) = spec.split_once(':').unwrap_or((spec, ""));
    let env = env
        .split(';')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("--variant {spec}: {kv} is not KEY=VALUE"));
            (k.trim().to_string(), v.to_string())
        })
        .collect();
    Variant {
        name: name.to_string(),
        env,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One boot and one create, as the breakdown's columns (milliseconds; host
/// figures from QEMU's spawn, guest figures on the guest's clock).
fn sample(cfg: &VmConfig) -> serde_json::Map<String, serde_json::Value> {
    let t0 = Instant::now();
    let vm = Vm::boot(cfg).unwrap_or_else(|e| panic!("{e}"));
    let boot = t0.elapsed().as_millis() as u64;
    let ch = vm.channel().try_clone().unwrap();
    let c = Instant::now();
    let ev = request(
        &ch,
        &Request::Create {
            id: "m".into(),
            stream: 0,
            sandbox: None,
            terminal: false,
            size: None,
        },
        &mut Output::default(),
    );
    assert!(matches!(ev, Event::Created { .. }), "{ev:?}");
    let create = c.elapsed().as_millis() as u64;
    let t: &BootTimes = vm.boot_times();
    // A clone of a template did not boot: no guest account.
    let g = t.guest.clone().unwrap_or(proto::GuestBoot {
        kernel: String::new(),
        agent_start_ms: 0,
        modules_ms: 0,
        ready_ms: 0,
    });
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: u64| {
        m.insert(k.into(), v.into());
    };
    put("initramfs", t.initramfs_ms);
    put("exec", t.exec_ms);
    put("first_console", t.console_ms.unwrap_or(0));
    put("agent_console", t.agent_console_ms.unwrap_or(0));
    put("guest_agent_start", g.agent_start_ms);
    put("guest_modules", g.modules_ms);
    put("guest_ready", g.ready_ms);
    // Where the guest's clock starts, seen from the host: QEMU, firmware,
    // setup and decompression (and whatever the guest clock missed).
    put(
        "pre_guest_clock",
        t.guest.as_ref().map_or(0, |g| t.ready_ms.saturating_sub(g.ready_ms)),
    );
    put("host_ready", t.ready_ms);
    put("boot_total", boot);
    put("create", create);
    put("template_created", t.template_created_ms.unwrap_or(0));
    put("initrd_bytes", t.initramfs_bytes);
    m.insert("entry".into(), t.entry.clone().into());
    m.insert("machine".into(), t.machine.clone().into());
    drop(vm);
    m
}

/// Boots `n` times per variant, the variants interleaved (so load that
/// comes and goes hits them alike), creates the container once per boot,
/// and prints the samples and each column's median as JSON.
fn measure(n: usize, variants: &[Variant]) {
    let t = tempfile::tempdir().unwrap();
    bundle(&t.path().join("bundle"), &["x"]);
    let default = [Variant {
        name: "default".into(),
        env: Vec::new(),
    }];
    let variants = if variants.is_empty() { &default[..] } else { variants };
    let load_before = loadavg();
    let mut samples: Vec<Vec<serde_json::Map<String, serde_json::Value>>> = vec![Vec::new(); variants.len()];
    for round in 0..n {
        for (i, v) in variants.iter().enumerate() {
            let saved: Vec<_> = v.env.iter().map(|(k, _)| (k, std::env::var_os(k))).collect();
            for (k, val) in &v.env {
                std::env::set_var(k, val);
            }
            let mut s = sample(&config(t.path()));
            for (k, old) in saved {
                match old {
                    Some(o) => std::env::set_var(k, o),
                    None => std::env::remove_var(k),
                }
            }
            s.insert("load1".into(), loadavg().split(' ').next().unwrap_or("").into());
            eprintln!("round {round} {}: {}", v.name, serde_json::Value::Object(s.clone()));
            samples[i].push(s);
        }
    }
    let out: Vec<serde_json::Value> = variants
        .iter()
        .zip(&samples)
        .map(|(v, ss)| {
            let mut med = serde_json::Map::new();
            for (k, val) in &ss[0] {
                if val.is_u64() {
                    med.insert(
                        k.clone(),
                        median(ss.iter().map(|s| s[k].as_u64().unwrap_or(0)).collect()).into(),
                    );
                } else if k != "load1" {
                    med.insert(k.clone(), val.clone());
                }
            }
            serde_json::json!({
                "variant": v.name,
                "env": v.env.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>(),
                "median_ms": med,
                "samples": ss,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "boots_per_variant": n,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "variants": out,
    });
    let mut o = std::io::stdout();
    let _ = writeln!(o, "{}", serde_json::to_string_pretty(&doc).unwrap());
}
