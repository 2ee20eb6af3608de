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

fn native_path() -> PathBuf {
    // The native binary is built beside this one (the workspace's target).
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sandboxed"));
    exe.parent().unwrap().join("native")
}
