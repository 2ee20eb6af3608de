//! Default filesystems and devices, /dev symlinks, and `linux.devices`
//! (config-linux.md; runtime-linux.md, Dev symbolic links).

use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};
use probe::report::DevNode;
use probe::Report;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult, Need, Verdict};
use crate::cases::root::mount_at;
use crate::ctx::{tail, Ctx};
use crate::runtime::CreateOpts;
use crate::unix::{recv_with_fds, OneShotListener};

pub const CASES: &[Case] = &[
    Case {
        id: "devices::default_filesystems",
        clauses: &[
            "config-linux.default-filesystems.proc",
            "config-linux.default-filesystems.sys",
            "config-linux.default-filesystems.dev-pts",
            "config-linux.default-filesystems.dev-shm",
        ],
        needs: &[],
        summary: "/proc, /sys, /dev/pts and /dev/shm are proc, sysfs, devpts and tmpfs",
        run: default_filesystems,
    },
    Case {
        id: "devices::default_devices",
        clauses: &[
            "config-linux.default-devices.null",
            "config-linux.default-devices.zero",
            "config-linux.default-devices.full",
            "config-linux.default-devices.random",
            "config-linux.default-devices.urandom",
            "config-linux.default-devices.tty",
        ],
        needs: &[],
        summary: "/dev/null zero full random urandom tty are character devices 1:3 1:5 1:7 1:8 1:9 5:0, mode 0666",
        run: default_devices,
    },
    Case {
        id: "devices::ptmx",
        clauses: &["config-linux.default-devices.ptmx"],
        needs: &[],
        summary: "/dev/ptmx is the container's devpts ptmx (a symlink to pts/ptmx or a bind of it)",
        run: ptmx,
    },
    Case {
        id: "devices::console_with_terminal",
        clauses: &["config-linux.default-devices.console"],
        needs: &[],
        summary: "with terminal true, /dev/console is the container's pty (the slave on stdin)",
        run: console_with_terminal,
    },
    Case {
        id: "devices::dev_symlinks",
        clauses: &[
            "runtime-linux.dev-symlinks.fd",
            "runtime-linux.dev-symlinks.stdin",
            "runtime-linux.dev-symlinks.stdout",
            "runtime-linux.dev-symlinks.stderr",
        ],
        needs: &[],
        summary: "/dev/fd, stdin, stdout, stderr link to /proc/self/fd/...",
        run: dev_symlinks,
    },
    Case {
        id: "devices::linux_devices_char",
        clauses: &[
            "config-linux.devices.create",
            "config-linux.devices.type",
            "config-linux.devices.file-mode",
            "config-linux.devices.owner",
        ],
        needs: &[],
        summary: "a linux.devices char device appears with its numbers, mode and owner",
        run: linux_devices_char,
    },
    Case {
        id: "devices::linux_devices_block",
        clauses: &[
            "config-linux.devices.create",
            "config-linux.devices.type",
            "config-linux.devices.file-mode",
            "config-linux.devices.owner",
        ],
        needs: &[Need::HostPath("/dev/loop0")],
        summary: "a linux.devices block device (loop 7:0) appears with its numbers, mode and owner",
        run: linux_devices_block,
    },
    Case {
        id: "devices::linux_devices_fifo",
        clauses: &["config-linux.devices.create", "config-linux.devices.type"],
        needs: &[],
        summary: "a linux.devices entry of type p is a fifo",
        run: linux_devices_fifo,
    },
    Case {
        id: "devices::linux_devices_conflict",
        clauses: &["config-linux.devices.path-conflict-error"],
        needs: &[],
        summary: "a linux.devices path where the rootfs already has another file is an error",
        run: linux_devices_conflict,
    },
];

fn dev<'a>(r: &'a Report, path: &str) -> Option<&'a DevNode> {
    r.devices.iter().find(|d| d.path == path)
}

fn default_filesystems(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    for (path, fs, clause) in [
        ("/proc", "proc", "config-linux.default-filesystems.proc"),
        ("/sys", "sysfs", "config-linux.default-filesystems.sys"),
        ("/dev/pts", "devpts", "config-linux.default-filesystems.dev-pts"),
        ("/dev/shm", "tmpfs", "config-linux.default-filesystems.dev-shm"),
    ] {
        let got = mount_at(&r, path).map(|m| m.fs_type.clone());
        check_eq(clause, &format!("filesystem at {path}"), Some(fs.to_string()), got)?;
    }
    Ok(())
}

fn default_devices(ctx: &mut Ctx) -> CaseResult {
    // config-linux.md: the runtime MUST supply these, as null(4), zero(4),
    // full(4), random(4) and tty(4) describe them: those pages create them
    // with `mknod -m 666`, so any user of the container can use them.
    let r = ctx.report(&ctx.spec(), &[])?;
    for (path, major, minor, clause) in [
        ("/dev/null", 1, 3, "config-linux.default-devices.null"),
        ("/dev/zero", 1, 5, "config-linux.default-devices.zero"),
        ("/dev/full", 1, 7, "config-linux.default-devices.full"),
        ("/dev/random", 1, 8, "config-linux.default-devices.random"),
        ("/dev/urandom", 1, 9, "config-linux.default-devices.urandom"),
        ("/dev/tty", 5, 0, "config-linux.default-devices.tty"),
    ] {
        let d = dev(&r, path).ok_or_else(|| fail(clause, format!("{path} present"), "missing"))?;
        check_eq(
            clause,
            path,
            ("c".to_string(), major, minor, 0o666),
            (d.kind.clone(), d.major, d.minor, d.mode & 0o777),
        )?;
    }
    Ok(())
}

fn ptmx(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    let d = dev(&r, "/dev/ptmx").ok_or_else(|| fail("config-linux.default-devices.ptmx", "/dev/ptmx", "missing"))?;
    let ok = match d.kind.as_str() {
        "l" => d.target.as_deref() == Some("pts/ptmx") || d.target.as_deref() == Some("/dev/pts/ptmx"),
        "c" => d.major == 5 && d.minor == 2,
        _ => false,
    };
    check(
        ok,
        "config-linux.default-devices.ptmx",
        "a symlink to pts/ptmx or the ptmx device 5:2",
        format!("{} -> {:?} ({}:{})", d.kind, d.target, d.major, d.minor),
    )
}

/// Runs `probe report ITEMS` with `terminal: true` and a console socket;
/// the report is read from the pty master the runtime sends.
fn report_on_terminal(ctx: &mut Ctx, mut spec: Spec, items: &[&str]) -> Result<Report, Verdict> {
    const CLAUSE: &str = "config-linux.default-devices.console";
    spec.process_mut_or_default().set_terminal(Some(true));
    let mut args = vec!["/probe", "report"];
    args.extend_from_slice(items);
    spec.set_args(&args);
    let sock = ctx.path("console.sock");
    let listener = OneShotListener::bind(&sock).map_err(|e| fail("harness", "to bind the console socket", e))?;
    let b = ctx.bundle(&spec)?;
    let opts = CreateOpts {
        console_socket: Some(sock),
        ..Default::default()
    };
    let c = ctx.create_with(&b, &opts)?;
    let timeout = Duration::from_secs(2);
    let stream = listener
        .accept(timeout)
        .map_err(|e| fail(CLAUSE, "the runtime to connect to --console-socket", e))?;
    let (_, fds) =
        recv_with_fds(&stream, timeout).map_err(|e| fail(CLAUSE, "a pty master over the console socket", e))?;
    let master = fds
        .into_iter()
        .next()
        .ok_or_else(|| fail(CLAUSE, "a pty master over the console socket", "no descriptor"))?;
    let rx = crate::unix::spawn_reader(master);
    ctx.start(&c)?;
    let deadline = Instant::now() + ctx.shared.timeout;
    let mut text = String::new();
    loop {
        if let Ok(r) = crate::ctx::parse_report(&text) {
            return Ok(r);
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => {
                return Err(fail(
                    CLAUSE,
                    "the probe's report on the pty",
                    format!("{:?}; stderr {:?}", tail(&text, 200), tail(&c.io.stderr(), 200)),
                ))
            }
        }
    }
}

fn console_with_terminal(ctx: &mut Ctx) -> CaseResult {
    // config-linux.md: "/dev/console is set up if terminal is enabled in the
    // config by bind mounting the pseudoterminal pty to /dev/console": a
    // Unix98 pty slave (majors 136-143), the very one on the process's
    // stdin, mounted there.
    const CLAUSE: &str = "config-linux.default-devices.console";
    let r = report_on_terminal(ctx, ctx.spec(), &["/dev/console"])?;
    let console = r
        .paths
        .get("/dev/console")
        .filter(|p| p.exists)
        .cloned()
        .ok_or_else(|| fail(CLAUSE, "/dev/console present", "missing"))?;
    check(
        console.kind == "c" && (136..=143).contains(&console.major),
        CLAUSE,
        "/dev/console a pty slave (char device, major 136-143)",
        format!("kind {} {}:{}", console.kind, console.major, console.minor),
    )?;
    let stdin = r.stdio.targets.first().cloned().unwrap_or_default();
    if let Some(pty) = dev(&r, &stdin).filter(|_| stdin.starts_with("/dev/pts/")) {
        check_eq(
            CLAUSE,
            &format!("numbers of /dev/console and of stdin {stdin}"),
            (pty.major, pty.minor),
            (console.major, console.minor),
        )?;
    } else {
        ctx.note(format!("stdin is {stdin:?}, not a /dev/pts entry: not compared"));
    }
    check(
        mount_at(&r, "/dev/console").is_some(),
        CLAUSE,
        "a bind mount at /dev/console",
        "no mount there in mountinfo",
    )
}

fn dev_symlinks(ctx: &mut Ctx) -> CaseResult {
    let r = ctx.report(&ctx.spec(), &[])?;
    for (path, target, clause) in [
        ("/dev/fd", "/proc/self/fd", "runtime-linux.dev-symlinks.fd"),
        ("/dev/stdin", "/proc/self/fd/0", "runtime-linux.dev-symlinks.stdin"),
        ("/dev/stdout", "/proc/self/fd/1", "runtime-linux.dev-symlinks.stdout"),
        ("/dev/stderr", "/proc/self/fd/2", "runtime-linux.dev-symlinks.stderr"),
    ] {
        let d = dev(&r, path);
        check_eq(
            clause,
            path,
            Some(("l".to_string(), Some(target.to_string()))),
            d.map(|d| (d.kind.clone(), d.target.clone())),
        )?;
    }
    Ok(())
}

fn device(path: &str, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(path.into());
    d.set_typ(typ);
    d.set_major(major);
    d.set_minor(minor);
    d
}

fn linux_devices_char(ctx: &mut Ctx) -> CaseResult {
    let mut d = device("/dev/harness-null", LinuxDeviceType::C, 1, 3);
    d.set_file_mode(Some(0o620));
    d.set_uid(Some(1000));
    d.set_gid(Some(1001));
    let mut spec = ctx.spec();
    spec.linux_mut_or_default().set_devices(Some(vec![d]));
    let r = ctx.report(&spec, &["/dev/harness-null"])?;
    let p = r
        .paths
        .get("/dev/harness-null")
        .filter(|p| p.exists)
        .ok_or_else(|| fail("config-linux.devices.create", "/dev/harness-null present", "missing"))?;
    check_eq(
        "config-linux.devices.type",
        "type and numbers",
        ("c".to_string(), 1, 3),
        (p.kind.clone(), p.major, p.minor),
    )?;
    check_eq("config-linux.devices.file-mode", "mode", 0o620, p.mode & 0o7777)?;
    check_eq("config-linux.devices.owner", "owner", (1000, 1001), (p.uid, p.gid))
}

fn linux_devices_block(ctx: &mut Ctx) -> CaseResult {
    // The spec's own example supplies a block device (/dev/sda, 8:0); the
    // loop driver's 7:0 is used, on a host that has it.
    let loop_driver = std::fs::read_to_string("/proc/devices")
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim() == "7 loop");
    ctx.require(loop_driver, "the loop block driver (major 7)")?;
    let mut d = device("/dev/harness-loop", LinuxDeviceType::B, 7, 0);
    d.set_file_mode(Some(0o640));
    d.set_uid(Some(0));
    d.set_gid(Some(6));
    let mut spec = ctx.spec();
    spec.linux_mut_or_default().set_devices(Some(vec![d]));
    let r = ctx.report(&spec, &["/dev/harness-loop"])?;
    let p = r
        .paths
        .get("/dev/harness-loop")
        .filter(|p| p.exists)
        .ok_or_else(|| fail("config-linux.devices.create", "/dev/harness-loop present", "missing"))?;
    check_eq(
        "config-linux.devices.type",
        "type and numbers",
        ("b".to_string(), 7, 0),
        (p.kind.clone(), p.major, p.minor),
    )?;
    check_eq("config-linux.devices.file-mode", "mode", 0o640, p.mode & 0o7777)?;
    check_eq("config-linux.devices.owner", "owner", (0, 6), (p.uid, p.gid))
}

fn linux_devices_fifo(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.linux_mut_or_default()
        .set_devices(Some(vec![device("/dev/harness-fifo", LinuxDeviceType::P, 0, 0)]));
    let r = ctx.report(&spec, &["/dev/harness-fifo"])?;
    let kind = r
        .paths
        .get("/dev/harness-fifo")
        .filter(|p| p.exists)
        .map(|p| p.kind.clone());
    check_eq(
        "config-linux.devices.type",
        "type of /dev/harness-fifo",
        Some("p".to_string()),
        kind,
    )
}

fn linux_devices_conflict(ctx: &mut Ctx) -> CaseResult {
    // config-linux.md: "If a file already exists at path that does not
    // match the requested device, the runtime MUST generate an error". The
    // rootfs has a regular file where the device should go; /dev is a tmpfs
    // in the default config, so the conflict is placed outside it (a device
    // path may be anywhere). runc 1.1.5 ignores EEXIST from mknod and keeps
    // the regular file: a departure.
    let mut spec = ctx.spec();
    spec.linux_mut_or_default()
        .set_devices(Some(vec![device("/conflict", LinuxDeviceType::C, 1, 3)]));
    let b = ctx.bundle(&spec)?;
    std::fs::write(b.rootfs().join("conflict"), b"not a device")
        .map_err(|e| fail("harness", "to write the conflicting file", e))?;
    crate::cases::create::expect_refused(
        ctx,
        &b,
        "config-linux.devices.path-conflict-error",
        "/conflict already a regular file",
    )
}
