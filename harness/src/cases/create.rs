//! The `create` operation's errors (runtime.md, Create and Errors): a refused
//! create must leave no container, state, process or cgroup behind.

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::case::{check, Case, CaseResult, Verdict};
use crate::ctx::Ctx;
use crate::runtime::CreateOpts;

pub const CASES: &[Case] = &[
    Case {
        id: "create::duplicate_id",
        clauses: &[
            "runtime.create.id-unique",
            "runtime.create.id-error-no-container",
            "runtime.state.id-unique",
        ],
        needs: &[],
        summary: "a second create with an id in use fails and leaves the first container as it was",
        run: duplicate_id,
    },
    Case {
        id: "create::no_id",
        clauses: &["runtime.create.missing-args-error"],
        needs: &[],
        summary: "create without a container id is an error",
        run: no_id,
    },
    Case {
        id: "create::missing_bundle",
        clauses: &["runtime.create.missing-args-error", "runtime.errors.no-side-effects"],
        needs: &[],
        summary: "create with a bundle path that does not exist is an error and leaves nothing",
        run: missing_bundle,
    },
    Case {
        id: "create::missing_config",
        clauses: &["bundle.config.required", "runtime.errors.no-side-effects"],
        needs: &[],
        summary: "a bundle without config.json is refused and leaves nothing",
        run: missing_config,
    },
    Case {
        id: "create::malformed_json",
        clauses: &["runtime.create.apply-error", "runtime.create.apply-error-no-container"],
        needs: &[],
        summary: "config.json that is not JSON is refused and leaves nothing",
        run: malformed_json,
    },
    Case {
        id: "create::unknown_namespace_type",
        clauses: &["config.valid-values.error", "runtime.create.apply-error-no-container"],
        needs: &[],
        summary: "an unknown namespace type is refused and leaves nothing",
        run: unknown_namespace_type,
    },
    Case {
        id: "create::missing_rootfs",
        clauses: &[
            "runtime.create.apply-error",
            "config.root.path-exists",
            "runtime.errors.no-side-effects",
        ],
        needs: &[],
        summary: "a root.path that does not exist is refused and leaves nothing",
        run: missing_rootfs,
    },
    Case {
        id: "create::missing_program",
        clauses: &[
            "runtime.lifecycle.create-environment-error",
            "runtime.create.apply-error",
        ],
        needs: &[],
        summary: "a program that does not exist in the rootfs makes create or start fail",
        run: missing_program,
    },
    Case {
        id: "create::unsupported_oci_version",
        clauses: &["config.valid-values.error", "config.oci-version.semver"],
        needs: &[],
        summary: "an ociVersion that is not SemVer is refused",
        run: unsupported_oci_version,
    },
];

/// Asserts a refused create of `bundle` under a fresh id: an error exit,
/// then no container known under the id and no state directory for it.
/// Processes, mounts and cgroups left behind are caught by the sweep.
pub(crate) fn expect_refused(ctx: &mut Ctx, bundle: &Bundle, clause: &str, what: &str) -> CaseResult {
    let id = ctx.new_id();
    let (out, _io) = ctx.create_raw(&id, bundle, &CreateOpts::default())?;
    check(
        !out.status.success(),
        clause,
        format!("create to fail for {what}"),
        format!("create exited 0 (stderr {:?})", crate::ctx::tail(&out.stderr, 200)),
    )?;
    expect_no_container(ctx, &id)
}

/// The runtime does not know `id` and kept no state directory for it.
pub(crate) fn expect_no_container(ctx: &mut Ctx, id: &str) -> CaseResult {
    let st = ctx.state_raw(id)?;
    check(
        !st.status.success(),
        "runtime.create.apply-error-no-container",
        format!("no container {id} after a failed create"),
        format!("state answered: {}", st.stdout.trim()),
    )?;
    let leftover = ctx.driver().root.join(id);
    check(
        !leftover.exists(),
        "runtime.errors.no-side-effects",
        "no state left after a failed create",
        format!("{} exists", leftover.display()),
    )
}

fn raw_bundle(ctx: &mut Ctx, config: &Value) -> Result<Bundle, Verdict> {
    ctx.bundle_raw(config)
}

fn duplicate_id(ctx: &mut Ctx) -> CaseResult {
    let first = crate::cases::state::sleeper(ctx)?;
    let before = ctx.state(&first.id)?;
    let b = ctx.bundle(&ctx.spec())?;
    let (out, _io) = ctx.create_raw(&first.id, &b, &CreateOpts::default())?;
    check(
        !out.status.success(),
        "runtime.create.id-unique",
        "create with an id in use to fail",
        "it succeeded",
    )?;
    let after = ctx.state_raw(&first.id)?;
    let after = crate::runtime::State::parse(&after.stdout).map_err(|e| {
        crate::case::fail(
            "runtime.create.id-error-no-container",
            "the first container still there",
            format!("state of it failed after the refused create: {e}"),
        )
    })?;
    check(
        after.pid == before.pid && after.status == before.status && after.bundle == before.bundle,
        "runtime.create.id-error-no-container",
        format!(
            "the first container unchanged ({:?}, pid {:?})",
            before.status, before.pid
        ),
        format!("{:?}, pid {:?}, bundle {:?}", after.status, after.pid, after.bundle),
    )
}

fn no_id(ctx: &mut Ctx) -> CaseResult {
    let b = ctx.bundle(&ctx.spec())?;
    let bundle = b.dir.display().to_string();
    let out = ctx.exec("create", &["--bundle", &bundle])?;
    check(
        !out.status.success(),
        "runtime.create.missing-args-error",
        "an error when no id is given",
        format!("{}", out.status),
    )?;
    let left: Vec<_> = std::fs::read_dir(&ctx.driver().root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    check(
        left.is_empty(),
        "runtime.errors.no-side-effects",
        "no state after the refused create",
        format!("{left:?}"),
    )
}

fn missing_bundle(ctx: &mut Ctx) -> CaseResult {
    let nowhere = Bundle {
        dir: ctx.path("no-such-bundle"),
    };
    expect_refused(ctx, &nowhere, "runtime.create.missing-args-error", "a missing bundle")
}

fn missing_config(ctx: &mut Ctx) -> CaseResult {
    let b = ctx.bundle(&ctx.spec())?;
    let _ = std::fs::remove_file(b.config_path());
    expect_refused(ctx, &b, "bundle.config.required", "a bundle without config.json")
}

fn malformed_json(ctx: &mut Ctx) -> CaseResult {
    let b = ctx.bundle(&ctx.spec())?;
    let _ = std::fs::write(b.config_path(), b"{\"ociVersion\": \"1.0.2\", \"process\": {");
    expect_refused(ctx, &b, "runtime.create.apply-error", "config.json that is not JSON")
}

fn unknown_namespace_type(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    if let Some(ns) = cfg.pointer_mut("/linux/namespaces").and_then(Value::as_array_mut) {
        ns.push(json!({"type": "harness-bogus"}));
    }
    let b = raw_bundle(ctx, &cfg)?;
    expect_refused(ctx, &b, "config.valid-values.error", "namespace type \"harness-bogus\"")
}

fn missing_rootfs(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    cfg["root"]["path"] = json!("no-such-rootfs");
    let b = raw_bundle(ctx, &cfg)?;
    expect_refused(ctx, &b, "runtime.create.apply-error", "root.path \"no-such-rootfs\"")
}

fn missing_program(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    cfg["process"]["args"] = json!(["/no/such/program"]);
    let b = raw_bundle(ctx, &cfg)?;
    let id = ctx.new_id();
    // The runtime may notice at create (runc checks the path) or only when
    // start cannot exec it; either must be an error, not a silent exit.
    let (out, _io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        return expect_no_container(ctx, &id);
    }
    let start = ctx.start_raw(&id)?;
    check(
        !start.status.success(),
        "runtime.lifecycle.create-environment-error",
        "create or start to fail for a program that does not exist",
        "both succeeded",
    )
}

fn unsupported_oci_version(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    cfg["ociVersion"] = json!("not-a-version");
    let b = raw_bundle(ctx, &cfg)?;
    expect_refused(ctx, &b, "config.valid-values.error", "ociVersion \"not-a-version\"")
}
