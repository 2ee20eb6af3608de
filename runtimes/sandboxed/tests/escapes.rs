//! Escape attempts, as data: each runs `probe syscall ...` in a container of
//! the sandboxed runtime, and for contrast of the native one. In the sandbox
//! every attempt must fail and leave its audit line; the native runtime's
//! outcome is printed beside it (the kernel's own confinement stops some of
//! them there too, not all).

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::bundle::{default_spec, Bundle, SpecExt};
use harness::runtime::{CreateOpts, Runtime};
use oci_spec::runtime::LinuxNamespaceType;

struct Attempt {
    name: &'static str,
    /// A block device node (loop0) the config gives the container.
    block_device: bool,
    /// `probe syscall` arguments.
    call: &'static [&'static str],
    /// The syscall the audit line must name.
    audited: &'static str,
    /// Run without a pid namespace, so /proc/1 is the host's init.
    host_pid_ns: bool,
}

const MARKER_PATH: &str = "/tmp/oci-harness-escape-marker";

/// The races' own secret: the escape test removes its marker when it ends,
/// and the two tests run at once.
const RACE_MARKER_PATH: &str = "/tmp/oci-harness-race-marker";

const ATTEMPTS: &[Attempt] = &[
    Attempt {
        name: "a `..` chain out of the root",
        call: &["open", "/../../../../../tmp/oci-harness-escape-marker", "0", "0"],
        audited: "",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "open a block device node given to the container",
        call: &["open", "/dev/escape-blk", "0", "0"],
        audited: "open",
        host_pid_ns: false,
        block_device: true,
    },
    Attempt {
        name: "symlink planted in the rootfs to a host path",
        call: &["open", "/escape-link", "0", "0"],
        audited: "",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "host init's root through /proc/1/root (host pid namespace)",
        call: &["open", "/proc/1/root/tmp/oci-harness-escape-marker", "0", "0"],
        audited: "open",
        host_pid_ns: true,
        block_device: false,
    },
    Attempt {
        name: "clone into a new user namespace",
        call: &["raw", "56", "0x10000011", "0", "0", "0", "0"],
        audited: "",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "mount a tmpfs",
        call: &["mount", "none", "/mnt", "tmpfs", "0", "NULL"],
        audited: "mount",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "pivot_root",
        call: &["pivot_root", "/", "/"],
        audited: "pivot_root",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "unshare a user namespace",
        call: &["unshare", "0x10000000"],
        audited: "unshare",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "ptrace the host's init (host pid namespace)",
        call: &["ptrace", "16", "1", "0", "0"],
        audited: "ptrace",
        host_pid_ns: true,
        block_device: false,
    },
    Attempt {
        name: "a raw packet socket",
        call: &["socket", "17", "3", "0"],
        audited: "socket",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "keyctl: join a new session keyring",
        call: &["keyctl", "1", "0", "0", "0", "0"],
        audited: "keyctl",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "bpf: create a map",
        call: &["bpf", "0", "0", "0"],
        audited: "bpf",
        host_pid_ns: false,
        block_device: false,
    },
    Attempt {
        name: "userfaultfd",
        call: &["userfaultfd", "0"],
        audited: "userfaultfd",
        host_pid_ns: false,
        block_device: false,
    },
];

/// What the probe reported: the return value and errno name.
fn attempt(rt: &Runtime, dir: &Path, a: &Attempt, audit: &Path, i: usize) -> (i64, Option<String>, String) {
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let b = Bundle::prepare(&dir.join(format!("b{i}")), &probe).unwrap();
    std::os::unix::fs::symlink(MARKER_PATH, b.rootfs().join("escape-link")).unwrap();
    let mut spec = default_spec();
    let mut args = vec!["/probe", "syscall"];
    args.extend_from_slice(a.call);
    spec.set_args(&args);
    if a.host_pid_ns {
        let ns = spec
            .linux_mut_or_default()
            .namespaces_mut()
            .get_or_insert_with(Vec::new);
        ns.retain(|n| n.typ() != LinuxNamespaceType::Pid);
    }
    if a.block_device {
        let dev = oci_spec::runtime::LinuxDeviceBuilder::default()
            .path("/dev/escape-blk")
            .typ(oci_spec::runtime::LinuxDeviceType::B)
            .major(7)
            .minor(0)
            .build()
            .unwrap();
        spec.linux_mut_or_default().set_devices(Some(vec![dev]));
    }
    let mut ann = std::collections::HashMap::new();
    ann.insert(
        "org.ociharness.sandbox.audit-log".to_string(),
        audit.display().to_string(),
    );
    spec.set_annotations(Some(ann));
    b.write_spec(&spec).unwrap();
    let driver = rt.driver(&dir.join("root"));
    let id = format!("escape{}{i}", std::process::id());
    let (out, io) = driver.run(&id, &b.dir, &CreateOpts::default()).unwrap();
    let _ = driver.delete(&id, true);
    let stdout = io.stdout();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| {
        panic!(
            "{}: no probe result ({}): {} {}",
            a.name,
            out.status,
            stdout,
            io.stderr()
        )
    });
    (
        v["ret"].as_i64().unwrap_or(0),
        v["errno"].as_str().map(str::to_string),
        stdout,
    )
}

#[test]
fn every_escape_attempt_is_denied_in_the_sandbox_and_audited() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    std::fs::write(MARKER_PATH, "host secret").unwrap();
    let t = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(10);
    let sandboxed = Runtime::resolve(env!("CARGO_BIN_EXE_sandboxed"), vec![], timeout).unwrap();
    let native = Runtime::resolve(&native_path().display().to_string(), vec![], timeout).unwrap();
    let mut table = Vec::new();
    for (i, a) in ATTEMPTS.iter().enumerate() {
        let audit = t.path().join(format!("audit-{i}.jsonl"));
        let (ret, errno, out) = attempt(&sandboxed, &t.path().join("s"), a, &audit, i);
        let (nret, nerrno, _) = attempt(&native, &t.path().join("n"), a, &t.path().join("unused"), i);
        table.push(format!(
            "{:<60} sandboxed: {:<8} native: {}",
            a.name,
            errno.clone().unwrap_or_else(|| format!("ret {ret}")),
            nerrno.clone().unwrap_or_else(|| format!("ret {nret} (succeeded)"))
        ));
        assert!(
            ret < 0 && errno.is_some(),
            "{}: the sandbox let it through: {out}",
            a.name
        );
        if !a.audited.is_empty() {
            let log = std::fs::read_to_string(&audit).unwrap_or_default();
            let line = log
                .lines()
                .find(|l| l.contains(&format!("\"syscall\":\"{}", a.audited)));
            assert!(
                line.is_some(),
                "{}: no audit line naming {} in {log:?}",
                a.name,
                a.audited
            );
        }
    }
    let _ = std::fs::remove_file(MARKER_PATH);
    eprintln!("{}", table.join("\n"));
}

/// A time-of-check/time-of-use race, as data: `probe race ...` runs in a
/// container that shares the host's pid namespace and holds CAP_SYS_PTRACE,
/// beside a host process that holds no capabilities, so that without a
/// sandbox `/proc/PID/root` of that process is the host's root and the race
/// can be won (the native runtime shows it is). `{pid}` in the arguments is
/// that process.
struct Race {
    name: &'static str,
    /// `probe race` arguments (N is appended).
    call: &'static [&'static str],
}

const RACES: &[Race] = &[
    Race {
        name: "path argument flipped in memory between check and use",
        call: &[
            "arg",
            "/benign",
            "/proc/{pid}/root/tmp/oci-harness-race-marker",
            "host secret",
        ],
    },
    Race {
        name: "directory swapped for a symlink to the host's root between check and use",
        call: &[
            "link",
            "/tmp/swap",
            "/proc/{pid}/root/tmp",
            "oci-harness-race-marker",
            "host secret",
        ],
    },
];

const RACE_ROUNDS: &str = "3000";

/// Runs `exe VERB --bundle B ID` with `extra` verb flags and `host_fd` (if
/// any) as fd 3; then force-deletes the container. Returns the output.
fn run_direct(exe: &Path, root: &Path, b: &Bundle, id: &str, host_fd: Option<i32>) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root").arg(root).arg("run");
    if host_fd.is_some() {
        cmd.args(["--preserve-fds", "1"]);
    }
    cmd.arg("--bundle")
        .arg(&b.dir)
        .arg(id)
        .stdin(std::process::Stdio::null());
    if let Some(raw) = host_fd {
        // SAFETY: between fork and exec only dup2 and fcntl, which are
        // async-signal-safe, put the host descriptor at fd 3 without
        // CLOEXEC (dup2 onto itself would keep the flag, hence the fcntl).
        unsafe {
            cmd.pre_exec(move || {
                if raw != 3 && libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    let _ = std::process::Command::new(exe)
        .arg("--root")
        .arg(root)
        .args(["delete", "--force", id])
        .output();
    out
}

fn audited_spec(args: &[&str], audit: &Path) -> oci_spec::runtime::Spec {
    let mut spec = default_spec();
    spec.set_args(args);
    let mut ann = std::collections::HashMap::new();
    ann.insert(
        "org.ociharness.sandbox.audit-log".to_string(),
        audit.display().to_string(),
    );
    spec.set_annotations(Some(ann));
    spec
}

/// Runs `race` in a container of the runtime at `exe` and returns the
/// probe's report.
fn race(exe: &Path, dir: &Path, r: &Race, audit: &Path, i: usize, host_pid: u32) -> serde_json::Value {
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let b = Bundle::prepare(&dir.join(format!("race{i}")), &probe).unwrap();
    std::fs::write(b.rootfs().join("benign"), "benign").unwrap();
    std::fs::create_dir_all(b.rootfs().join("tmp")).unwrap();
    let mut args = vec!["/probe".to_string(), "race".into()];
    args.extend(r.call.iter().map(|a| a.replace("{pid}", &host_pid.to_string())));
    args.push(RACE_ROUNDS.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut spec = audited_spec(&args, audit);
    // The swap race renames in /tmp of the rootfs.
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    let linux = spec.linux_mut_or_default();
    linux
        .namespaces_mut()
        .get_or_insert_with(Vec::new)
        .retain(|n| n.typ() != LinuxNamespaceType::Pid);
    // CAP_SYS_PTRACE in every set the default gives, so the kernel's own
    // ptrace check on /proc/1/root lets the unsandboxed container through.
    let mut caps = serde_json::to_value(spec.process().as_ref().and_then(|p| p.capabilities().clone())).unwrap();
    for set in ["bounding", "effective", "permitted"] {
        if let Some(list) = caps[set].as_array_mut() {
            list.push("CAP_SYS_PTRACE".into());
        }
    }
    spec.process_mut_or_default()
        .set_capabilities(Some(serde_json::from_value(caps).unwrap()));
    b.write_spec(&spec).unwrap();
    let id = format!("race{}{i}", std::process::id());
    let out = run_direct(exe, &dir.join("root"), &b, &id, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| {
        panic!(
            "{}: no race report ({}): {stdout} {}",
            r.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn races_between_check_and_use_never_reach_the_host_in_the_sandbox() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    std::fs::write(RACE_MARKER_PATH, "host secret").unwrap();
    let t = tempfile::tempdir().unwrap();
    let sandboxed = PathBuf::from(env!("CARGO_BIN_EXE_sandboxed"));
    let mut host = powerless_host_process();
    let mut table = Vec::new();
    for (i, r) in RACES.iter().enumerate() {
        let audit = t.path().join(format!("race-audit-{i}.jsonl"));
        let s = race(&sandboxed, &t.path().join("s"), r, &audit, i, host.id());
        let n = race(
            &native_path(),
            &t.path().join("n"),
            r,
            &t.path().join("unused"),
            i,
            host.id(),
        );
        table.push(format!("{:<75} sandboxed: {s}\n{:<75} native:    {n}", r.name, ""));
        // The contrast proves the race is real: unmediated, it is won.
        assert!(
            n["escaped"].as_u64().unwrap_or(0) > 0,
            "{}: the race never reached the host even without the sandbox, so it tests nothing: {n}",
            r.name
        );
        assert_eq!(s["escaped"], 0, "{}: the sandbox lost the race: {s}", r.name);
        assert!(
            s["benign"].as_u64().unwrap_or(0) > 0,
            "{}: the benign path never opened in the sandbox, so the race never ran: {s}",
            r.name
        );
        let refused: u64 = s["refused"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0);
        assert!(refused > 0, "{}: the host path was never tried: {s}", r.name);
        let log = std::fs::read_to_string(&audit).unwrap_or_default();
        assert!(
            log.lines().any(|l| l.contains("\"syscall\":\"open")),
            "{}: no audit line for the refused opens in {log:?}",
            r.name
        );
    }
    let _ = host.kill();
    let _ = host.wait();
    let _ = std::fs::remove_file(RACE_MARKER_PATH);
    eprintln!("{}", table.join("\n"));
}

/// A host process (uid 0, no capabilities at all) whose /proc/PID/root a
/// container with CAP_SYS_PTRACE may open: the kernel's ptrace check wants
/// the target's capabilities to be a subset of the caller's.
fn powerless_host_process() -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("120");
    // SAFETY: only the capset system call runs between fork and exec, on
    // stack data that lives through it.
    unsafe {
        cmd.pre_exec(|| {
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            let hdr = Header {
                version: 0x2008_0522,
                pid: 0,
            };
            let data = [0u32; 6];
            if libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("a host process without capabilities")
}

#[test]
fn a_host_directory_fd_is_refused_at_create_in_the_sandbox() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    use std::os::fd::AsRawFd;
    let marker = "/tmp/oci-harness-fd-escape-marker";
    std::fs::write(marker, "host secret").unwrap();
    let t = tempfile::tempdir().unwrap();
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let host_tmp = std::fs::File::open("/tmp").unwrap();
    let call = [
        "/probe",
        "syscall",
        "open",
        "/proc/self/fd/3/oci-harness-fd-escape-marker",
        "0",
        "0",
    ];
    let mut outs = Vec::new();
    for (name, exe) in [
        ("s", PathBuf::from(env!("CARGO_BIN_EXE_sandboxed"))),
        ("n", native_path()),
    ] {
        let b = Bundle::prepare(&t.path().join(name), &probe).unwrap();
        b.write_spec(&audited_spec(&call, &t.path().join("audit"))).unwrap();
        let root = t.path().join(format!("root-{name}"));
        let out = run_direct(
            &exe,
            &root,
            &b,
            &format!("fd{}{name}", std::process::id()),
            Some(host_tmp.as_raw_fd()),
        );
        outs.push((out, root));
    }
    let _ = std::fs::remove_file(marker);
    let (s, s_root) = &outs[0];
    let (n, _) = &outs[1];
    let n_out = String::from_utf8_lossy(&n.stdout);
    assert!(
        n_out.contains("\"ret\":") && !n_out.contains("\"errno\":\""),
        "native opens the host file through the fd (the contrast): {n_out}"
    );
    assert!(
        !s.status.success(),
        "the sandbox ran it: {}",
        String::from_utf8_lossy(&s.stdout)
    );
    let err = String::from_utf8_lossy(&s.stderr);
    assert!(err.contains("--preserve-fds: fd 3 is the host directory /tmp"), "{err}");
    // Nothing left: no state, no supervisor pid file, no socket.
    let left: Vec<_> = std::fs::read_dir(s_root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind in --root: {left:?}");
}

fn native_path() -> PathBuf {
    // The native binary is built beside this one (the workspace's target).
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sandboxed"));
    exe.parent().unwrap().join("native")
}
