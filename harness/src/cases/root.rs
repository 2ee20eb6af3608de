//! The container's root filesystem (config.md, Root; config-linux.md,
//! Rootfs Mount Propagation).

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::Spec;
use probe::report::MountInfo;
use probe::Report;
use serde_json::json;

use crate::bundle::{Bundle, SpecExt};
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Need, Verdict};
use crate::ctx::Ctx;
use crate::runtime::CreateOpts;

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
        summary: "root.readonly false: / is mounted rw and the program can write to it",
        run: writable,
    },
    Case {
        id: "root::path_relative_to_bundle",
        clauses: &["config.root.path-relative", "config.root.path-required"],
        needs: &[],
        summary: "a relative root.path (not named rootfs) is resolved against the bundle directory",
        run: path_relative_to_bundle,
    },
    Case {
        id: "root::path_missing",
        clauses: &[
            "runtime.create.apply-error",
            "config.root.path-exists",
            "runtime.errors.no-side-effects",
        ],
        needs: &[],
        summary: "an absolute root.path that does not exist: create fails, creates nothing there, keeps no state",
        run: path_missing,
    },
    Case {
        id: "root::propagation_private",
        clauses: &["config-linux.rootfs-propagation.private"],
        needs: &[],
        summary: "rootfsPropagation private on a bundle in a shared mount: / has no shared: or master: tag",
        run: propagation_private,
    },
    Case {
        id: "root::propagation_slave",
        clauses: &["config-linux.rootfs-propagation.slave"],
        needs: &[Need::Unchanged("host-files")],
        summary: "rootfsPropagation slave on a bundle in a shared mount: / is master:N of the host's peer group",
        run: propagation_slave,
    },
    Case {
        id: "root::propagation_shared",
        clauses: &["config-linux.rootfs-propagation.shared"],
        needs: &[],
        summary: "rootfsPropagation shared: / belongs to a peer group (shared:N)",
        run: propagation_shared,
    },
    Case {
        id: "root::propagation_unbindable",
        clauses: &["config-linux.rootfs-propagation.unbindable"],
        needs: &[],
        summary: "rootfsPropagation unbindable: / is tagged unbindable and is in no peer group",
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

fn root_mount(r: &Report, clause: &str) -> Result<MountInfo, Verdict> {
    mount_at(r, "/")
        .cloned()
        .ok_or_else(|| fail(clause, "a mount at / in mountinfo", "none"))
}

fn readonly(ctx: &mut Ctx) -> CaseResult {
    // config.md: "If true then the root filesystem MUST be read-only inside
    // the container".
    let spec = with_readonly(ctx, true);
    let r = ctx.report(&spec, &["/"])?;
    let m = root_mount(&r, "config.root.readonly")?;
    check(
        m.options.iter().any(|o| o == "ro"),
        "config.root.readonly",
        "/ mounted ro",
        format!("options {:?}", m.options),
    )?;
    let w = r.paths.get("/").and_then(|p| p.write_error.clone());
    check_eq(
        "config.root.readonly",
        "error creating a file in /",
        Some("EROFS".to_string()),
        w,
    )
}

fn writable(ctx: &mut Ctx) -> CaseResult {
    // readonly defaults to false: the root must then not be made read-only.
    let spec = with_readonly(ctx, false);
    let r = ctx.report(&spec, &["/"])?;
    let m = root_mount(&r, "config.root.readonly")?;
    check(
        m.options.iter().any(|o| o == "rw"),
        "config.root.readonly",
        "/ mounted rw",
        format!("options {:?}", m.options),
    )?;
    let w = r.paths.get("/").and_then(|p| p.write_error.clone());
    check_eq("config.root.readonly", "error creating a file in /", None, w)
}

fn path_relative_to_bundle(ctx: &mut Ctx) -> CaseResult {
    // config.md: a relative root.path is relative to the bundle. The rootfs
    // is renamed to an unconventional name so that a runtime guessing
    // "rootfs" or resolving against its own working directory is caught.
    let b = ctx.bundle(&ctx.spec())?;
    let alt = b.dir.join("alt-root");
    std::fs::rename(b.rootfs(), &alt).map_err(|e| fail("harness", "to rename the rootfs", e))?;
    std::fs::write(alt.join("marker"), b"this rootfs").map_err(|e| fail("harness", "to write a marker", e))?;
    let mut spec = ctx.spec();
    if let Some(root) = spec.root_mut() {
        root.set_path(PathBuf::from("alt-root"));
    }
    let r = ctx.report_in(&b, &spec, &["/marker"])?;
    let content = r.paths.get("/marker").and_then(|p| p.content.clone());
    check_eq(
        "config.root.path-relative",
        "/marker inside the container",
        Some("this rootfs".to_string()),
        content,
    )
}

fn path_missing(ctx: &mut Ctx) -> CaseResult {
    // config.md: "A directory MUST exist at the path declared by the
    // field"; runtime.md: create MUST generate an error when the config
    // cannot be applied, and an error leaves no side effects.
    let absent = ctx.path("absent-root");
    let mut cfg = ctx.spec_json();
    cfg["root"]["path"] = json!(absent.display().to_string());
    let b = ctx.bundle_raw(&cfg)?;
    crate::cases::create::expect_refused(
        ctx,
        &b,
        "runtime.create.apply-error",
        &format!("root.path {}", absent.display()),
    )?;
    check(
        !absent.exists(),
        "runtime.errors.no-side-effects",
        format!("nothing created at {}", absent.display()),
        "the runtime created it",
    )
}

/// A tmpfs mounted in the host's mount namespace and made shared, so that
/// a bundle inside it sits on a mount with a peer group: only then can
/// private, slave and shared be told apart inside the container. It is
/// unmounted when dropped (before the leak sweep runs).
struct SharedMount {
    path: PathBuf,
    group: String,
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        // A shared mount can be stacked at its own path by propagation while
        // other cases create namespaces in parallel: detach until none is
        // left there (bounded), so the sweep sees only what runtimes left.
        for _ in 0..8 {
            let _ = crate::reaper::status(Command::new("umount").arg("-l").arg(&self.path));
            if !crate::cleanup::mounts_below(&self.path).contains(&self.path) {
                break;
            }
        }
    }
}

fn run_quiet(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::reaper::status(cmd).is_ok_and(|s| s.success())
}

/// The `shared:N` peer group of the host mount at `path`.
fn host_peer_group(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_str()?;
    text.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(want))
        .and_then(|l| {
            l.split(" - ")
                .next()?
                .split(' ')
                .skip(6)
                .find_map(|f| f.strip_prefix("shared:").map(str::to_string))
        })
}

fn shared_mount(ctx: &mut Ctx) -> Result<SharedMount, Verdict> {
    let path = ctx.path("shared-mnt");
    std::fs::create_dir_all(&path).map_err(|e| fail("harness", "to create a mount point", e))?;
    if !run_quiet(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m,mode=755", "harness-shared"])
            .arg(&path),
    ) {
        return Err(skip("cannot mount a tmpfs on the host (mount(8) failed)"));
    }
    let mut m = SharedMount {
        path,
        group: String::new(),
    };
    if !run_quiet(Command::new("mount").arg("--make-shared").arg(&m.path)) {
        return Err(skip("cannot make a host mount shared"));
    }
    m.group = host_peer_group(&m.path).ok_or_else(|| skip("the host mount did not join a peer group"))?;
    Ok(m)
}

/// What a container with `rootfsPropagation: mode`, from a bundle inside a
/// shared host mount, saw: its `/`, and whether a tmpfs the host mounted
/// below the rootfs after start reached it.
struct Observed {
    root: MountInfo,
    group: String,
    host_mount_seen: bool,
}

fn propagation(ctx: &mut Ctx, mode: &str) -> Result<Observed, Verdict> {
    let clause = ctx.clause;
    let shared = shared_mount(ctx)?;
    let b = Bundle::prepare(&shared.path.join("bundle"), &ctx.shared.probe)
        .map_err(|e| fail("harness", "to prepare a bundle in the shared mount", e))?;
    let event = b.rootfs().join("mnt/event");
    std::fs::create_dir_all(&event).map_err(|e| fail("harness", "to create mnt/event", e))?;
    let mut spec = ctx.spec();
    spec.linux_mut_or_default()
        .set_rootfs_propagation(Some(mode.to_string()));
    spec.set_args(&["/probe", "sleep", "inf"]);
    b.write_spec(&spec)
        .map_err(|e| fail("harness", "to write config.json", e))?;
    ctx.note(format!(
        "host peer group of the bundle's mount: shared:{}",
        shared.group
    ));
    let id = ctx.new_id();
    let (out, _io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        // config.md, Valid values: a runtime MAY support a subset of the
        // valid values, refusing the others with an error. A refusal that
        // names the propagation setting is such a choice (runsc: "root mount
        // propagation option must specify private or slave"); any other
        // failure to create is the runtime's fault.
        let reason = out.reason();
        if reason.to_lowercase().contains("propagation") {
            return Err(skip(format!(
                "the runtime does not support rootfsPropagation {mode:?}: {reason}"
            )));
        }
        return Err(fail(
            clause,
            "create to succeed",
            format!("create: {}: {reason}", out.status),
        ));
    }
    let st = ctx.start_raw(&id)?;
    if !st.status.success() {
        return Err(fail(
            clause,
            "start to succeed",
            format!("start: {}: {}", st.status, st.reason()),
        ));
    }
    // A mount event on the host, below the rootfs, after the container is
    // set up: a slave receives it, a private mount does not.
    let mounted = crate::reaper::output(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "harness-event"])
            .arg(&event),
    )
    .map_err(|e| fail("harness", "to run mount(8)", e))?;
    if !mounted.status.success() {
        return Err(fail(
            "harness",
            format!("to mount a tmpfs on the host at {}", event.display()),
            String::from_utf8_lossy(&mounted.stderr).trim().to_string(),
        ));
    }
    let out = ctx.exec("exec", &[id.as_str(), "/probe", "report", "/mnt/event"])?;
    if !out.status.success() {
        return Err(fail(
            clause,
            "exec of the probe in the running container",
            format!("exec: {}: {}", out.status, out.reason()),
        ));
    }
    let r = crate::ctx::parse_report(&out.stdout).map_err(|e| fail(clause, "the probe's report", e))?;
    let _ = ctx.kill(&id, "KILL");
    Ok(Observed {
        root: root_mount(&r, clause)?,
        group: shared.group.clone(),
        host_mount_seen: mount_at(&r, "/mnt/event").is_some_and(|m| m.source == "harness-event"),
    })
}

fn tags(m: &MountInfo) -> String {
    format!("optional fields of / {:?}", m.optional)
}

fn propagation_private(ctx: &mut Ctx) -> CaseResult {
    // "private: the rootfs mount doesn't receive mount propagation events
    // from the host": no master, no peer group, and the host's mount does
    // not show.
    let o = propagation(ctx, "private")?;
    check(
        !o.host_mount_seen,
        "config-linux.rootfs-propagation.private",
        "a tmpfs mounted on the host below the rootfs after start not to reach the container",
        "it appeared at /mnt/event",
    )?;
    check(
        !o.root
            .optional
            .iter()
            .any(|t| t.starts_with("shared:") || t.starts_with("master:")),
        "config-linux.rootfs-propagation.private",
        "no shared: or master: tag on /",
        tags(&o.root),
    )
}

fn propagation_slave(ctx: &mut Ctx) -> CaseResult {
    // "slave: the rootfs mount receives propagation events from the host
    // (e.g. if something is mounted on the host it will also appear in the
    // container) but not the other way around". runc 1.1.5 maps "slave" to
    // a non-recursive MS_SLAVE of the old /, then makes the bundle's shared
    // parent mount private before binding the rootfs, so the rootfs ends up
    // private: host mounts never reach it (runc's "rslave" would work).
    // crun 1.8.1 binds the rootfs private as well: both depart.
    let o = propagation(ctx, "slave")?;
    check(
        o.host_mount_seen,
        "config-linux.rootfs-propagation.slave",
        "a tmpfs mounted on the host below the rootfs after start to appear at /mnt/event",
        format!("it did not; {}", tags(&o.root)),
    )?;
    check(
        o.root.optional.iter().any(|t| t.starts_with("master:")),
        "config-linux.rootfs-propagation.slave",
        format!("a master:N tag on / (the host mount is shared:{})", o.group),
        tags(&o.root),
    )?;
    check(
        !o.root.optional.iter().any(|t| t.starts_with("shared:")),
        "config-linux.rootfs-propagation.slave",
        "no shared: tag on /",
        tags(&o.root),
    )
}

fn propagation_shared(ctx: &mut Ctx) -> CaseResult {
    // "shared: the rootfs mount belongs to a new peer group".
    // runc 1.1.5 applies MS_SHARED to the old / and then makes the rootfs's
    // parent private before its bind, so the rootfs is private (runc#1755,
    // fixed by runc#4724 in 1.2.7/1.3): a departure.
    let o = propagation(ctx, "shared")?;
    check(
        o.root.optional.iter().any(|t| t.starts_with("shared:")),
        "config-linux.rootfs-propagation.shared",
        "a shared:N tag on /",
        tags(&o.root),
    )
}

fn propagation_unbindable(ctx: &mut Ctx) -> CaseResult {
    // "unbindable: the rootfs mount is a private mount that cannot be
    // bind-mounted". runc 1.1.5 applies MS_UNBINDABLE to the old / only
    // (and, for a bundle on /, then fails to bind the rootfs with EINVAL),
    // so / is never unbindable (runc#1755, fixed by runc#4724): a departure.
    let o = propagation(ctx, "unbindable")?;
    check(
        o.root.optional.iter().any(|t| t == "unbindable"),
        "config-linux.rootfs-propagation.unbindable",
        "/ tagged unbindable",
        tags(&o.root),
    )?;
    check(
        !o.host_mount_seen
            && !o
                .root
                .optional
                .iter()
                .any(|t| t.starts_with("shared:") || t.starts_with("master:")),
        "config-linux.rootfs-propagation.unbindable",
        "a private / (no shared:/master: tag, no host mount event)",
        format!("{}, host mount seen {}", tags(&o.root), o.host_mount_seen),
    )
}
