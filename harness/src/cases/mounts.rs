//! Mounts (config.md, Mounts): bind, tmpfs, proc and their options, order,
//! relative paths, and destinations that must stay inside the rootfs.

use oci_spec::runtime::{Mount, Spec};

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult, Need, Verdict};
use crate::cases::root::mount_at;
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "mounts::bind_host_dir",
        clauses: &["config.mounts.option-bind"],
        needs: &[],
        summary: "a bind mount shows the host directory's files inside the container",
        run: bind_host_dir,
    },
    Case {
        id: "mounts::bind_readonly",
        clauses: &["config.mounts.option-ro-rw", "config.mounts.option-bind"],
        needs: &[],
        summary: "a bind mount with ro is read-only: mounted ro and writes fail with EROFS",
        run: bind_readonly,
    },
    Case {
        id: "mounts::tmpfs_options",
        clauses: &[
            "config.mounts.option-nosuid-suid",
            "config.mounts.option-nodev-dev",
            "config.mounts.option-noexec-exec",
            "config.mounts.unknown-options-data",
        ],
        needs: &[],
        summary: "tmpfs with nosuid,nodev,noexec,mode=750,size=1m carries those flags and data",
        run: tmpfs_options,
    },
    Case {
        id: "mounts::proc_extra",
        clauses: &["runtime.create.apply-config"],
        needs: &[],
        summary: "a proc mount at an extra destination is a proc filesystem there",
        run: proc_extra,
    },
    Case {
        id: "mounts::sysfs_extra",
        clauses: &["runtime.create.apply-config"],
        needs: &[],
        summary: "a sysfs mount at an extra destination is a sysfs there",
        run: sysfs_extra,
    },
    Case {
        id: "mounts::order",
        clauses: &["config.mounts.order"],
        needs: &[],
        summary: "mounts are made in order: a bind below a tmpfs listed before it stays visible",
        run: order,
    },
    Case {
        id: "mounts::destination_created",
        clauses: &["runtime.create.apply-config"],
        needs: &[],
        summary: "a destination missing from the rootfs is created for the mount",
        run: destination_created,
    },
    Case {
        id: "mounts::relative_source",
        clauses: &["config.mounts.source-relative"],
        needs: &[],
        summary: "a relative bind source is taken from the bundle directory",
        run: relative_source,
    },
    Case {
        id: "mounts::relative_destination",
        clauses: &[
            "config.mounts.destination-relative-root",
            "config.mounts.destination-relative",
        ],
        needs: &[],
        summary: "a relative destination is relative to / of the container",
        run: relative_destination,
    },
    Case {
        id: "mounts::symlink_stays_inside",
        clauses: &[
            "config.mounts.destination-required",
            "runtime.lifecycle.create-environment",
        ],
        needs: &[Need::Unchanged("host-files")],
        summary: "a bind whose destination goes through a rootfs symlink to a host path lands inside the rootfs",
        run: symlink_stays_inside,
    },
];

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some(typ.into()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn with_mounts(ctx: &Ctx, extra: Vec<Mount>) -> Spec {
    let mut spec = ctx.spec();
    spec.mounts_mut_or_default().extend(extra);
    spec
}

/// A host directory with one file, for bind mounts.
fn host_dir(ctx: &mut Ctx, content: &str) -> Result<String, Verdict> {
    let d = ctx.path("host-dir");
    put(&d.join("file"), content.as_bytes())?;
    Ok(d.display().to_string())
}

/// Writes a file the case relies on; failing to is the harness's problem.
fn put(path: &std::path::Path, content: &[u8]) -> CaseResult {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("harness", format!("to create {}", dir.display()), e))?;
    }
    std::fs::write(path, content).map_err(|e| fail("harness", format!("to write {}", path.display()), e))
}

fn bind_host_dir(ctx: &mut Ctx) -> CaseResult {
    let src = host_dir(ctx, "from the host")?;
    let spec = with_mounts(ctx, vec![mount("/mnt/host", "bind", &src, &["rbind", "rw"])]);
    let r = ctx.report(&spec, &["/mnt/host/file"])?;
    let content = r.paths.get("/mnt/host/file").and_then(|p| p.content.clone());
    check_eq(
        "config.mounts.option-bind",
        "/mnt/host/file",
        Some("from the host".to_string()),
        content,
    )
}

fn bind_readonly(ctx: &mut Ctx) -> CaseResult {
    let src = host_dir(ctx, "x")?;
    let spec = with_mounts(ctx, vec![mount("/mnt/ro", "bind", &src, &["rbind", "ro"])]);
    let r = ctx.report(&spec, &["/mnt/ro", "/mnt/ro/file"])?;
    let m = mount_at(&r, "/mnt/ro").ok_or_else(|| fail("config.mounts.option-bind", "a mount at /mnt/ro", "none"))?;
    check(
        m.options.iter().any(|o| o == "ro"),
        "config.mounts.option-ro-rw",
        "/mnt/ro mounted ro",
        format!("{:?}", m.options),
    )?;
    let w = r.paths.get("/mnt/ro/file").and_then(|p| p.write_error.clone());
    check_eq(
        "config.mounts.option-ro-rw",
        "error writing /mnt/ro/file",
        Some("EROFS".to_string()),
        w,
    )
}

fn tmpfs_options(ctx: &mut Ctx) -> CaseResult {
    let spec = with_mounts(
        ctx,
        vec![mount(
            "/mnt/t",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=750", "size=1m"],
        )],
    );
    let r = ctx.report(&spec, &["/mnt/t"])?;
    let m =
        mount_at(&r, "/mnt/t").ok_or_else(|| fail("config.mounts.option-nosuid-suid", "a mount at /mnt/t", "none"))?;
    check_eq("runtime.create.apply-config", "fs type", "tmpfs", m.fs_type.as_str())?;
    for (flag, clause) in [
        ("nosuid", "config.mounts.option-nosuid-suid"),
        ("nodev", "config.mounts.option-nodev-dev"),
        ("noexec", "config.mounts.option-noexec-exec"),
    ] {
        check(
            m.options.iter().any(|o| o == flag),
            clause,
            format!("{flag} on /mnt/t"),
            format!("{:?}", m.options),
        )?;
    }
    check(
        m.super_options.iter().any(|o| o == "size=1024k"),
        "config.mounts.unknown-options-data",
        "size=1024k in the tmpfs's options (passed as data)",
        format!("{:?}", m.super_options),
    )?;
    let mode = r.paths.get("/mnt/t").map(|p| p.mode & 0o7777);
    check_eq(
        "config.mounts.unknown-options-data",
        "mode of /mnt/t",
        Some(0o750),
        mode,
    )
}

fn proc_extra(ctx: &mut Ctx) -> CaseResult {
    let spec = with_mounts(ctx, vec![mount("/extra-proc", "proc", "proc", &[])]);
    let r = ctx.report(&spec, &["/extra-proc/self/status"])?;
    let m = mount_at(&r, "/extra-proc")
        .ok_or_else(|| fail("runtime.create.apply-config", "a mount at /extra-proc", "none"))?;
    check_eq(
        "runtime.create.apply-config",
        "fs type at /extra-proc",
        "proc",
        m.fs_type.as_str(),
    )?;
    let readable = r
        .paths
        .get("/extra-proc/self/status")
        .is_some_and(|p| p.read_error.is_none());
    check(
        readable,
        "runtime.create.apply-config",
        "/extra-proc/self/status readable",
        "it is not",
    )
}

fn order(ctx: &mut Ctx) -> CaseResult {
    let src = host_dir(ctx, "below")?;
    // The tmpfs first, then a bind inside it: the other order would hide
    // the bind under the tmpfs.
    let spec = with_mounts(
        ctx,
        vec![
            mount("/data", "tmpfs", "tmpfs", &["size=1m"]),
            mount("/data/sub", "bind", &src, &["rbind", "ro"]),
        ],
    );
    let r = ctx.report(&spec, &["/data/sub/file"])?;
    let content = r.paths.get("/data/sub/file").and_then(|p| p.content.clone());
    check_eq(
        "config.mounts.order",
        "/data/sub/file",
        Some("below".to_string()),
        content,
    )?;
    let data = r.mounts.iter().position(|m| m.mount_point == "/data");
    let sub = r.mounts.iter().position(|m| m.mount_point == "/data/sub");
    check(
        matches!((data, sub), (Some(a), Some(b)) if a < b),
        "config.mounts.order",
        "/data mounted before /data/sub",
        format!("positions {data:?} and {sub:?} in mountinfo"),
    )
}

fn destination_created(ctx: &mut Ctx) -> CaseResult {
    let spec = with_mounts(ctx, vec![mount("/new/deep/dir", "tmpfs", "tmpfs", &[])]);
    let r = ctx.report(&spec, &["/new/deep/dir"])?;
    let fs = mount_at(&r, "/new/deep/dir").map(|m| m.fs_type.clone());
    check_eq(
        "runtime.create.apply-config",
        "filesystem at /new/deep/dir (missing from the rootfs)",
        Some("tmpfs".to_string()),
        fs,
    )
}

fn relative_source(ctx: &mut Ctx) -> CaseResult {
    let spec = with_mounts(ctx, vec![mount("/mnt/rel", "bind", "relsrc", &["rbind", "ro"])]);
    let b = ctx.bundle(&spec)?;
    put(&b.dir.join("relsrc/file"), b"in the bundle")?;
    let r = ctx.report_in(&b, &spec, &["/mnt/rel/file"])?;
    let content = r.paths.get("/mnt/rel/file").and_then(|p| p.content.clone());
    check_eq(
        "config.mounts.source-relative",
        "/mnt/rel/file",
        Some("in the bundle".to_string()),
        content,
    )
}

fn relative_destination(ctx: &mut Ctx) -> CaseResult {
    let cfg = {
        let mut v = ctx.spec_json();
        if let Some(m) = v.get_mut("mounts").and_then(|m| m.as_array_mut()) {
            m.push(serde_json::json!({"destination": "reldest", "type": "tmpfs", "source": "tmpfs"}));
        }
        v["process"]["args"] = serde_json::json!(["/probe", "report", "/reldest"]);
        v
    };
    let b = ctx.bundle_raw(&cfg)?;
    let c = ctx.create(&b)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    let r = crate::ctx::parse_report(&c.io.stdout())
        .map_err(|e| fail("config.mounts.destination-relative-root", "the probe's report", e))?;
    check(
        mount_at(&r, "/reldest").is_some(),
        "config.mounts.destination-relative-root",
        "the tmpfs at /reldest",
        format!(
            "mounts at {:?}",
            r.mounts
                .iter()
                .map(|m| m.mount_point.as_str())
                .filter(|p| p.contains("reldest"))
                .collect::<Vec<_>>()
        ),
    )
}

fn sysfs_extra(ctx: &mut Ctx) -> CaseResult {
    let spec = with_mounts(
        ctx,
        vec![mount(
            "/extra-sys",
            "sysfs",
            "sysfs",
            &["ro", "nosuid", "nodev", "noexec"],
        )],
    );
    let r = ctx.report(&spec, &["/extra-sys/kernel"])?;
    let m = mount_at(&r, "/extra-sys")
        .ok_or_else(|| fail("runtime.create.apply-config", "a mount at /extra-sys", "none"))?;
    check_eq(
        "runtime.create.apply-config",
        "fs type at /extra-sys",
        "sysfs",
        m.fs_type.as_str(),
    )?;
    let kind = r
        .paths
        .get("/extra-sys/kernel")
        .filter(|p| p.exists)
        .map(|p| p.kind.clone());
    check_eq(
        "runtime.create.apply-config",
        "/extra-sys/kernel",
        Some("d".to_string()),
        kind,
    )
}

fn symlink_stays_inside(ctx: &mut Ctx) -> CaseResult {
    // config.md: a mount's destination is a "path inside container". Two
    // symlinks in the rootfs lead out of it if followed on the host: an
    // absolute one naming a host directory, and a relative one climbing
    // with "..". Resolved as the container sees them (rootfs as /), both
    // land inside the rootfs; followed on the host, the runtime would
    // create the mount points in (and mount over) the host directory.
    const CLAUSE: &str = "config.mounts.destination-required";
    let victim = ctx.path("victim");
    std::fs::create_dir_all(&victim).map_err(|e| fail("harness", "to create the host directory", e))?;
    let victim_s = victim.display().to_string();
    let src = host_dir(ctx, "bound")?;
    let spec = with_mounts(
        ctx,
        vec![
            mount("/escape-abs/sub-abs", "bind", &src, &["rbind", "ro"]),
            mount("/escape-rel/sub-rel", "bind", &src, &["rbind", "ro"]),
        ],
    );
    let b = ctx.bundle(&spec)?;
    let rootfs = b.rootfs();
    // The symlinks' targets exist inside the rootfs too, so that a runtime
    // that resolves them correctly has nothing dangling to refuse: only the
    // last component (the mount point) is missing on both sides.
    std::fs::create_dir_all(rootfs.join(victim_s.trim_start_matches('/')))
        .map_err(|e| fail("harness", "to create the target inside the rootfs", e))?;
    let climb = format!("{}{}", "../".repeat(32), victim_s.trim_start_matches('/'));
    let linked = std::os::unix::fs::symlink(&victim, rootfs.join("escape-abs"))
        .and_then(|_| std::os::unix::fs::symlink(&climb, rootfs.join("escape-rel")));
    linked.map_err(|e| fail("harness", "to create the symlinks", e))?;
    let items = ["/escape-abs/sub-abs/file", "/escape-rel/sub-rel/file"];
    let r = ctx.report_in(&b, &spec, &items);
    let on_host: Vec<String> = std::fs::read_dir(&victim)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    check(
        on_host.is_empty(),
        CLAUSE,
        format!("the host directory {victim_s} left empty"),
        format!("the runtime made {on_host:?} in it: the mount destination escaped the rootfs"),
    )?;
    let r = r?;
    for item in items {
        let content = r.paths.get(item).and_then(|p| p.content.clone());
        check_eq(CLAUSE, item, Some("bound".to_string()), content)?;
    }
    // The mount points are inside the rootfs, where the container's view of
    // the symlinks leads.
    for sub in ["sub-abs", "sub-rel"] {
        let inside = rootfs.join(victim_s.trim_start_matches('/')).join(sub);
        check(
            inside.is_dir(),
            CLAUSE,
            format!("the mount point made inside the rootfs at {}", inside.display()),
            "not there",
        )?;
    }
    Ok(())
}
