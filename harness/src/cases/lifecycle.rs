//! The lifecycle (runtime.md, Lifecycle and Operations): what create, start
//! and the process's exit do to the container's status and its program.

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult};
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "lifecycle::create_does_not_run_process",
        clauses: &["runtime.lifecycle.create-no-user-program", "runtime.create.args-deferred"],
        needs: &[],
        summary: "after create the status is created and the program has not run",
        run: create_does_not_run_process,
    },
    Case {
        id: "lifecycle::start_runs_process",
        clauses: &["runtime.start.run-program", "runtime.lifecycle.run-program"],
        needs: &[],
        summary: "start runs the program given in process",
        run: start_runs_process,
    },
    Case {
        id: "lifecycle::stopped_after_exit",
        clauses: &["runtime.state.status-stopped", "runtime.lifecycle.exit-causes"],
        needs: &[],
        summary: "once the program exits the status becomes stopped",
        run: stopped_after_exit,
    },
    Case {
        id: "lifecycle::config_change_after_create",
        clauses: &["runtime.lifecycle.config-snapshot"],
        needs: &[],
        summary: "editing config.json after create does not change the container",
        run: config_change_after_create,
    },
];

/// A spec whose program leaves a mark in the (writable) rootfs.
fn marking_spec(ctx: &Ctx, mark: &str) -> oci_spec::runtime::Spec {
    let mut spec = ctx.spec();
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    spec.set_args(&["/probe", "write", mark, "ran"]);
    spec
}

fn create_does_not_run_process(ctx: &mut Ctx) -> CaseResult {
    let spec = marking_spec(ctx, "/ran");
    let c = ctx.create_spec(&spec)?;
    let st = ctx.state(&c.id)?;
    check_eq("runtime.state.status", "status after create", Some("created"), st.status.as_deref())?;
    // Give a program that was wrongly started time to leave its mark.
    std::thread::sleep(std::time::Duration::from_millis(100));
    check(
        !c.bundle.rootfs().join("ran").exists(),
        "runtime.lifecycle.create-no-user-program",
        "no mark from the program before start",
        "the program ran during create",
    )
}

fn start_runs_process(ctx: &mut Ctx) -> CaseResult {
    let spec = marking_spec(ctx, "/ran");
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    let mark = std::fs::read_to_string(c.bundle.rootfs().join("ran")).unwrap_or_default();
    check_eq("runtime.start.run-program", "content written by the program", "ran", mark.as_str())
}

fn stopped_after_exit(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "exit", "3"]);
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    let st = ctx.wait_status(&c.id, "stopped")?;
    check_eq("runtime.state.status", "status", Some("stopped"), st.status.as_deref())
}

fn config_change_after_create(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "echo", "original"]);
    let c = ctx.create_spec(&spec)?;
    let mut changed = spec.clone();
    changed.set_args(&["/probe", "echo", "changed"]);
    c.bundle
        .write_spec(&changed)
        .map_err(|e| fail("harness", "to rewrite config.json", e))?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    check_eq(
        "runtime.lifecycle.config-snapshot",
        "program output",
        "original",
        c.io.stdout().trim(),
    )
}
