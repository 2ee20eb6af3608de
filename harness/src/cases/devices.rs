//! Default filesystems and devices, /dev symlinks, and `linux.devices`
//! (config-linux.md; runtime-linux.md, Dev symbolic links).

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use probe::report::DevNode;
use probe::Report;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult};
use crate::cases::root::mount_at;
use crate::ctx::Ctx;

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
        summary: "/dev/null zero full random urandom tty are the right character devices",
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
            ("c".to_string(), major, minor),
            (d.kind.clone(), d.major, d.minor),
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
    // The rootfs has a regular file where the device should go; /dev is a
    // tmpfs in the default config, so the conflict is placed outside it.
    let mut spec = ctx.spec();
    spec.linux_mut_or_default()
        .set_devices(Some(vec![device("/conflict", LinuxDeviceType::C, 1, 3)]));
    let b = ctx.bundle(&spec)?;
    let _ = std::fs::write(b.rootfs().join("conflict"), b"not a device");
    crate::cases::create::expect_refused(
        ctx,
        &b,
        "config-linux.devices.path-conflict-error",
        "/conflict already a regular file",
    )
}
