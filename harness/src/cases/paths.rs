//! maskedPaths and readonlyPaths (config-linux.md).

use probe::report::PathInfo;
use probe::Report;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Verdict};
use crate::ctx::Ctx;
use crate::runtime::CreateOpts;

pub const CASES: &[Case] = &[
    Case {
        id: "paths::masked_file",
        clauses: &["config-linux.masked-paths"],
        needs: &[],
        summary: "a masked file reads as empty (or cannot be read)",
        run: masked_file,
    },
    Case {
        id: "paths::masked_directory",
        clauses: &["config-linux.masked-paths"],
        needs: &[],
        summary: "a masked directory shows no entries and the files below it are hidden",
        run: masked_directory,
    },
    Case {
        id: "paths::masked_missing_is_fine",
        clauses: &["config-linux.masked-paths"],
        needs: &[],
        summary: "a masked path that does not exist does not stop the container",
        run: masked_missing_is_fine,
    },
    Case {
        id: "paths::default_masked",
        clauses: &["config-linux.masked-paths"],
        needs: &[],
        summary: "the default config's masked /proc entries are really masked",
        run: default_masked,
    },
    Case {
        id: "paths::masked_relative",
        clauses: &[
            "config-linux.masked-paths",
            "config-linux.masked-paths.absolute",
            "config.valid-values.error",
        ],
        needs: &[],
        summary: "a relative maskedPaths entry is refused (leaving nothing) or masks that path under /, never ignored",
        run: masked_relative,
    },
    Case {
        id: "paths::readonly_relative",
        clauses: &[
            "config-linux.readonly-paths",
            "config-linux.readonly-paths.absolute",
            "config.valid-values.error",
        ],
        needs: &[],
        summary: "a relative readonlyPaths entry is refused (leaving nothing) or makes that path under / read-only",
        run: readonly_relative,
    },
    Case {
        id: "paths::readonly",
        clauses: &["config-linux.readonly-paths"],
        needs: &[],
        summary: "a readonlyPaths entry is readable but writes fail with EROFS",
        run: readonly,
    },
    Case {
        id: "paths::default_readonly",
        clauses: &["config-linux.readonly-paths"],
        needs: &[],
        summary: "the default config's read-only /proc entries refuse writes",
        run: default_readonly,
    },
];

/// Masked: nothing of the original can be read.
fn is_masked(p: &PathInfo) -> bool {
    if !p.exists {
        return true;
    }
    match p.kind.as_str() {
        "d" => p.dir_entries == Some(0) || p.read_error.is_some(),
        // A bind of /dev/null, or an unreadable file.
        "c" => (p.major, p.minor) == (1, 3) || p.read_error.is_some(),
        _ => p.read_error.is_some() || p.content.as_deref().is_some_and(str::is_empty),
    }
}

fn describe(p: &PathInfo) -> String {
    format!(
        "kind {} {}:{}, read_error {:?}, entries {:?}, content {:?}",
        p.kind,
        p.major,
        p.minor,
        p.read_error,
        p.dir_entries,
        p.content.as_deref().map(|c| c.chars().take(40).collect::<String>())
    )
}

/// What the probe saw at `path`; a report without it is the probe's (or
/// the runtime's) failure, never a pass.
fn info(r: &Report, path: &str, clause: &str) -> Result<PathInfo, Verdict> {
    r.paths
        .get(path)
        .cloned()
        .ok_or_else(|| fail(clause, format!("the probe to report {path}"), "no entry for it"))
}

/// Writes a file the case relies on; failing to is the harness's problem.
fn put(path: &std::path::Path, content: &[u8]) -> CaseResult {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("harness", format!("to create {}", dir.display()), e))?;
    }
    std::fs::write(path, content).map_err(|e| fail("harness", format!("to write {}", path.display()), e))
}

fn with_masked(ctx: &Ctx, masked: &[&str]) -> oci_spec::runtime::Spec {
    let mut spec = ctx.spec();
    let l = spec.linux_mut_or_default();
    let mut m = l.masked_paths().clone().unwrap_or_default();
    m.extend(masked.iter().map(|s| s.to_string()));
    l.set_masked_paths(Some(m));
    spec
}

fn masked_file(ctx: &mut Ctx) -> CaseResult {
    // A file of the rootfs with content, masked.
    let spec = with_masked(ctx, &["/etc/secret"]);
    let b = ctx.bundle(&spec)?;
    put(&b.rootfs().join("etc/secret"), b"do not read")?;
    let r = ctx.report_in(&b, &spec, &["/etc/secret"])?;
    let p = info(&r, "/etc/secret", "config-linux.masked-paths")?;
    check(
        is_masked(&p),
        "config-linux.masked-paths",
        "/etc/secret masked",
        describe(&p),
    )
}

fn masked_directory(ctx: &mut Ctx) -> CaseResult {
    let spec = with_masked(ctx, &["/etc/private"]);
    let b = ctx.bundle(&spec)?;
    put(&b.rootfs().join("etc/private/key"), b"k")?;
    let r = ctx.report_in(&b, &spec, &["/etc/private", "/etc/private/key"])?;
    let d = info(&r, "/etc/private", "config-linux.masked-paths")?;
    check(
        is_masked(&d),
        "config-linux.masked-paths",
        "/etc/private masked",
        describe(&d),
    )?;
    let k = info(&r, "/etc/private/key", "config-linux.masked-paths")?;
    check(
        !k.exists || is_masked(&k),
        "config-linux.masked-paths",
        "/etc/private/key hidden",
        describe(&k),
    )
}

fn masked_missing_is_fine(ctx: &mut Ctx) -> CaseResult {
    let spec = with_masked(ctx, &["/no/such/path"]);
    let r = ctx.report(&spec, &["/no/such/path"])?;
    check(
        r.paths.get("/no/such/path").is_some_and(|p| !p.exists || is_masked(p)),
        "config-linux.masked-paths",
        "the container to run, /no/such/path absent or masked",
        "it is readable",
    )
}

fn default_masked(ctx: &mut Ctx) -> CaseResult {
    let spec = ctx.spec();
    let masked: Vec<String> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    // Entries this kernel lacks (/proc/timer_stats, /proc/sched_debug...)
    // cannot be judged: they are left out, not failed.
    let (present, absent): (Vec<&str>, Vec<&str>) = masked
        .iter()
        .map(String::as_str)
        .partition(|p| std::path::Path::new(p).exists());
    if !absent.is_empty() {
        ctx.note(format!("not on this host, not judged: {absent:?}"));
    }
    if present.is_empty() {
        return Err(skip("none of the default masked paths exists on this host"));
    }
    let r = ctx.report(&spec, &present)?;
    for p in present {
        let i = info(&r, p, "config-linux.masked-paths")?;
        check(
            is_masked(&i),
            "config-linux.masked-paths",
            format!("{p} masked"),
            describe(&i),
        )?;
    }
    Ok(())
}

/// config-linux.md: maskedPaths and readonlyPaths values "MUST be absolute
/// paths in the container namespace". A relative entry is an invalid value,
/// which config.md (Valid values) says runtimes MUST refuse with an error;
/// runc and others accept it and resolve it against the container's `/`.
/// Either is taken here, but never silently dropping the entry: refused,
/// nothing may be left; accepted, the path must be protected as if it
/// had been written absolute. Returns the report when it ran.
fn relative_entry(ctx: &mut Ctx, field: &str, entry: &str, look: &str) -> Result<Option<Report>, Verdict> {
    let clause = ctx.clause;
    let mut cfg = ctx.spec_json();
    cfg["linux"][field] = serde_json::json!([entry]);
    cfg["root"]["readonly"] = serde_json::json!(false);
    cfg["process"]["args"] = serde_json::json!(["/probe", "report", look]);
    let b = ctx.bundle_raw(&cfg)?;
    put(&b.rootfs().join("etc/secret"), b"do not read")?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        ctx.note(format!("refused: {}", out.reason()));
        crate::cases::create::expect_no_container(ctx, &id)?;
        return Ok(None);
    }
    ctx.note(format!("{field} [{entry:?}] accepted; judged as {look}"));
    let st = ctx.start_raw(&id)?;
    check(
        st.status.success(),
        clause,
        "start to succeed once create accepted the config",
        format!("start: {}: {}", st.status, st.reason()),
    )?;
    if !io.wait_eof(ctx.shared.timeout) {
        return Err(fail(clause, "the probe to finish", "still running"));
    }
    crate::ctx::parse_report(&io.stdout())
        .map(Some)
        .map_err(|e| fail(clause, "the probe's report", e))
}

fn masked_relative(ctx: &mut Ctx) -> CaseResult {
    let Some(r) = relative_entry(ctx, "maskedPaths", "etc/secret", "/etc/secret")? else {
        return Ok(());
    };
    let p = info(&r, "/etc/secret", "config-linux.masked-paths")?;
    check(
        is_masked(&p),
        "config-linux.masked-paths",
        "maskedPaths \"etc/secret\" refused, or /etc/secret masked",
        format!("accepted and /etc/secret is readable: {}", describe(&p)),
    )
}

fn readonly_relative(ctx: &mut Ctx) -> CaseResult {
    let Some(r) = relative_entry(ctx, "readonlyPaths", "etc", "/etc")? else {
        return Ok(());
    };
    let w = r.paths.get("/etc").and_then(|p| p.write_error.clone());
    check(
        w.as_deref() == Some("EROFS"),
        "config-linux.readonly-paths",
        "readonlyPaths \"etc\" refused, or /etc read-only (EROFS)",
        format!("accepted and creating a file in /etc gives {w:?}"),
    )
}

fn readonly(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    let l = spec.linux_mut_or_default();
    let mut ro = l.readonly_paths().clone().unwrap_or_default();
    ro.push("/etc".into());
    l.set_readonly_paths(Some(ro));
    let b = ctx.bundle(&spec)?;
    put(&b.rootfs().join("etc/config"), b"keep")?;
    let r = ctx.report_in(&b, &spec, &["/etc", "/etc/config"])?;
    let f = info(&r, "/etc/config", "config-linux.readonly-paths")?;
    check_eq(
        "config-linux.readonly-paths",
        "/etc/config content",
        Some("keep".to_string()),
        f.content.clone(),
    )?;
    check_eq(
        "config-linux.readonly-paths",
        "error writing /etc/config",
        Some("EROFS".to_string()),
        f.write_error,
    )?;
    let d = r.paths.get("/etc").and_then(|p| p.write_error.clone());
    check_eq(
        "config-linux.readonly-paths",
        "error creating a file in /etc",
        Some("EROFS".to_string()),
        d,
    )
}

fn default_readonly(ctx: &mut Ctx) -> CaseResult {
    let spec = ctx.spec();
    let ro: Vec<String> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default();
    // Only entries that exist on this host and would be writable as root.
    let present: Vec<&str> = ro
        .iter()
        .map(String::as_str)
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    if present.is_empty() {
        return Err(skip("none of the default read-only paths exists on this host"));
    }
    let r = ctx.report(&spec, &present)?;
    for p in present {
        let i = info(&r, p, "config-linux.readonly-paths")?;
        check(
            // Absent inside the container is as good: nothing to write.
            !i.exists || i.fs_readonly || i.write_error.as_deref() == Some("EROFS"),
            "config-linux.readonly-paths",
            format!("{p} on a read-only mount"),
            format!("fs_readonly {}, write error {:?}", i.fs_readonly, i.write_error),
        )?;
    }
    Ok(())
}
