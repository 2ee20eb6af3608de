//! maskedPaths and readonlyPaths (config-linux.md).

use probe::report::PathInfo;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, skip, Case, CaseResult};
use crate::ctx::Ctx;

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
        summary: "a masked directory shows no entries and cannot be written",
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
    let _ = std::fs::write(b.rootfs().join("etc/secret"), b"do not read");
    let r = ctx.report_in(&b, &spec, &["/etc/secret"])?;
    let p = r.paths.get("/etc/secret").cloned().unwrap_or_default();
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
    let _ = std::fs::create_dir_all(b.rootfs().join("etc/private"));
    let _ = std::fs::write(b.rootfs().join("etc/private/key"), b"k");
    let r = ctx.report_in(&b, &spec, &["/etc/private", "/etc/private/key"])?;
    let d = r.paths.get("/etc/private").cloned().unwrap_or_default();
    check(
        is_masked(&d),
        "config-linux.masked-paths",
        "/etc/private masked",
        describe(&d),
    )?;
    let k = r.paths.get("/etc/private/key").cloned().unwrap_or_default();
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
    let present: Vec<&str> = masked
        .iter()
        .map(String::as_str)
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    if present.is_empty() {
        return Err(skip("none of the default masked paths exists on this host"));
    }
    let r = ctx.report(&spec, &present)?;
    for p in present {
        let info = r.paths.get(p).cloned().unwrap_or_default();
        check(
            is_masked(&info),
            "config-linux.masked-paths",
            format!("{p} masked"),
            describe(&info),
        )?;
    }
    Ok(())
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
    let _ = std::fs::write(b.rootfs().join("etc/config"), b"keep");
    let r = ctx.report_in(&b, &spec, &["/etc", "/etc/config", "/tmp"])?;
    let f = r.paths.get("/etc/config").cloned().unwrap_or_default();
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
        let info = r.paths.get(p).cloned().unwrap_or_default();
        check(
            // Absent inside the container is as good: nothing to write.
            !info.exists || info.fs_readonly || info.write_error.as_deref() == Some("EROFS"),
            "config-linux.readonly-paths",
            format!("{p} on a read-only mount"),
            format!("fs_readonly {}, write error {:?}", info.fs_readonly, info.write_error),
        )?;
    }
    Ok(())
}
