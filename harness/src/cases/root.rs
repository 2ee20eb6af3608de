//! The container's root filesystem (config.md, Root; config-linux.md,
//! rootfsPropagation).

use oci_spec::runtime::Spec;

use probe::report::MountInfo;
use probe::Report;

use crate::case::{check, check_eq, fail, Case, CaseResult};
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "root::readonly",
        clauses: &["config.root.readonly"],
        needs: &[],
        summary: "root.readonly true: / is mounted ro and a write to it fails with EROFS",
        run: readonly,
    },
    Case {
        id: "root::writable",
        clauses: &["config.root.readonly"],
        needs: &[],
        summary: "root.readonly false: / is rw and the program can write to it",
        run: writable,
    },
    Case {
        id: "root::path_relative_to_bundle",
        clauses: &["config.root.path-relative", "config.root.path-required"],
        needs: &[],
        summary: "a relative root.path is the bundle's directory: the program sees that rootfs",
        run: path_relative_to_bundle,
    },
    Case {
        id: "root::propagation_private",
        clauses: &["config-linux.rootfs-propagation.private"],
        needs: &[],
        summary: "rootfsPropagation private: / carries no shared or master peer group",
        run: propagation_private,
    },
    Case {
        id: "root::propagation_slave",
        clauses: &["config-linux.rootfs-propagation.slave"],
        needs: &[],
        summary: "rootfsPropagation slave: / receives from a master and shares nothing",
        run: propagation_slave,
    },
    Case {
        id: "root::propagation_unbindable",
        clauses: &["config-linux.rootfs-propagation.unbindable"],
        needs: &[],
        summary: "rootfsPropagation unbindable: / is unbindable",
        run: propagation_unbindable,
    },
];

/// The mount that is in effect at `path` (the last one listed there).
pub(crate) fn mount_at<'a>(r: &'a Report, path: &str) -> Option<&'a MountInfo> {
    r.mounts.iter().rev().find(|m| m.mount_point == path)
}

fn with_readonly(ctx: &Ctx, ro: bool) -> Spec {
    let mut spec = ctx.spec();
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(ro));
    }
    spec
}

fn readonly(ctx: &mut Ctx) -> CaseResult {
    let spec = with_readonly(ctx, true);
    let r = ctx.report(&spec, &["/"])?;
    let m = mount_at(&r, "/").ok_or_else(|| fail("config.root.readonly", "a mount at /", "none"))?;
    check(
        m.options.iter().any(|o| o == "ro"),
        "config.root.readonly",
        "/ mounted ro",
        format!("options {:?}", m.options),
    )?;
    let w = r.paths.get("/").and_then(|p| p.write_error.clone());
    check_eq(
        "config.root.readonly",
        "error writing to /",
        Some("EROFS".to_string()),
        w,
    )
}

fn writable(ctx: &mut Ctx) -> CaseResult {
    let spec = with_readonly(ctx, false);
    let r = ctx.report(&spec, &["/"])?;
    let w = r.paths.get("/").and_then(|p| p.write_error.clone());
    check_eq("config.root.readonly", "error writing to /", None, w)
}

fn path_relative_to_bundle(ctx: &mut Ctx) -> CaseResult {
    // The bundle's rootfs gets a marker file; the program must see it at /.
    let spec = ctx.spec();
    let b = ctx.bundle(&spec)?;
    let _ = std::fs::write(b.rootfs().join("marker"), b"this rootfs");
    let r = ctx.report_in(&b, &spec, &["/marker"])?;
    let content = r.paths.get("/marker").and_then(|p| p.content.clone());
    check_eq(
        "config.root.path-relative",
        "/marker inside the container",
        Some("this rootfs".to_string()),
        content,
    )
}

fn propagation(ctx: &mut Ctx, mode: &str) -> Result<MountInfo, crate::case::Verdict> {
    let mut spec = ctx.spec();
    spec.linux_mut()
        .get_or_insert_with(Default::default)
        .set_rootfs_propagation(Some(mode.to_string()));
    let clause = ctx.clause;
    let r = ctx.report(&spec, &[])?;
    mount_at(&r, "/")
        .cloned()
        .ok_or_else(|| fail(clause, "a mount at /", "none in mountinfo"))
}

fn propagation_private(ctx: &mut Ctx) -> CaseResult {
    let m = propagation(ctx, "private")?;
    check(
        !m.optional
            .iter()
            .any(|o| o.starts_with("shared:") || o.starts_with("master:")),
        "config-linux.rootfs-propagation.private",
        "no shared: or master: tag on /",
        format!("{:?}", m.optional),
    )
}

fn propagation_slave(ctx: &mut Ctx) -> CaseResult {
    let m = propagation(ctx, "slave")?;
    check(
        !m.optional.iter().any(|o| o.starts_with("shared:")),
        "config-linux.rootfs-propagation.slave",
        "no shared: tag on / (a slave does not propagate back)",
        format!("{:?}", m.optional),
    )
}

fn propagation_unbindable(ctx: &mut Ctx) -> CaseResult {
    let m = propagation(ctx, "unbindable")?;
    check(
        m.optional.iter().any(|o| o == "unbindable"),
        "config-linux.rootfs-propagation.unbindable",
        "/ tagged unbindable",
        format!("{:?}", m.optional),
    )
}
