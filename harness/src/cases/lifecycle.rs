//! The lifecycle (runtime.md, Lifecycle and Operations): what create, start
//! and the process's exit do to the container's status and its program.

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult, Need};
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "lifecycle::create_does_not_run_process",
        clauses: &[
            "runtime.lifecycle.create-no-user-program",
            "runtime.create.args-deferred",
        ],
        needs: &[],
        summary: "after create the status is created and the program has not run",
        run: create_does_not_run_process,
    },
    Case {
        id: "lifecycle::start_runs_process",
        clauses: &["runtime.start.run-program", "runtime.lifecycle.run-program"],
        needs: &[Need::Unchanged("host-files")],
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
    Case {
        id: "lifecycle::start_running_error",
        clauses: &["runtime.start.not-created-error", "runtime.start.not-created-no-effect"],
        needs: &[],
        summary: "start on a running container is an error and does not run the program again",
        run: start_running_error,
    },
    Case {
        id: "lifecycle::start_stopped_error",
        clauses: &["runtime.start.not-created-error", "runtime.start.not-created-no-effect"],
        needs: &[],
        summary: "start on a stopped container is an error and leaves it stopped",
        run: start_stopped_error,
    },
    Case {
        id: "lifecycle::start_no_id_error",
        clauses: &["runtime.start.no-id-error"],
        needs: &[],
        summary: "start without an id is an error",
        run: start_no_id_error,
    },
    Case {
        id: "lifecycle::no_process_error",
        clauses: &["runtime.start.no-process-error", "config.process.required-on-start"],
        needs: &[],
        summary: "a config without process cannot be started: create or start fails",
        run: no_process_error,
    },
    Case {
        id: "lifecycle::pid_file",
        clauses: &["runtime.state.pid"],
        needs: &[],
        summary: "--pid-file holds the container process's pid, the same as state reports",
        run: pid_file,
    },
    Case {
        id: "lifecycle::run_foreground",
        clauses: &["runtime.lifecycle.run-program", "runtime.start.run-program"],
        needs: &[],
        summary: "run creates and starts in one step and passes the program's output through",
        run: run_foreground,
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
    check_eq(
        "runtime.state.status",
        "status after create",
        Some("created"),
        st.status.as_deref(),
    )?;
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
    check_eq(
        "runtime.start.run-program",
        "content written by the program",
        "ran",
        mark.as_str(),
    )
}

fn stopped_after_exit(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "exit", "3"]);
    let c = ctx.run_until_stopped(&spec)?;
    let st = ctx.state(&c.id)?;
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

fn start_running_error(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "signals"]);
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    let pid = ctx.state(&c.id)?.pid;
    let out = ctx.start_raw(&c.id)?;
    check(
        !out.status.success(),
        "runtime.start.not-created-error",
        "a second start to fail",
        "it succeeded",
    )?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.start.not-created-no-effect",
        "status",
        Some("running"),
        st.status.as_deref(),
    )?;
    check_eq("runtime.start.not-created-no-effect", "pid", pid, st.pid)?;
    // The program printed `ready` once; a second run would print it again.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let readies = c.io.stdout().lines().filter(|l| l.trim() == "ready").count();
    check(
        readies <= 1,
        "runtime.start.not-created-no-effect",
        "the program started once",
        format!("{readies} starts"),
    )
}

fn start_stopped_error(ctx: &mut Ctx) -> CaseResult {
    let c = ctx.run_until_stopped(&ctx.spec())?;
    let out = ctx.start_raw(&c.id)?;
    check(
        !out.status.success(),
        "runtime.start.not-created-error",
        "start of a stopped container to fail",
        "it succeeded",
    )?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.start.not-created-no-effect",
        "status",
        Some("stopped"),
        st.status.as_deref(),
    )
}

fn start_no_id_error(ctx: &mut Ctx) -> CaseResult {
    let out = ctx.exec("start", &[])?;
    check(
        !out.status.success(),
        "runtime.start.no-id-error",
        "an error when no id is given",
        format!("{}", out.status),
    )
}

fn no_process_error(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    if let Some(o) = cfg.as_object_mut() {
        o.remove("process");
    }
    let b = ctx.bundle_raw(&cfg)?;
    let id = ctx.new_id();
    let (out, _io) = ctx.create_raw(&id, &b, &Default::default())?;
    if !out.status.success() {
        return crate::cases::create::expect_no_container(ctx, &id);
    }
    let start = ctx.start_raw(&id)?;
    check(
        !start.status.success(),
        "runtime.start.no-process-error",
        "start to fail without process",
        "create and start both succeeded",
    )
}

fn pid_file(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "sleep", "inf"]);
    let b = ctx.bundle(&spec)?;
    let pid_file = ctx.path("pidfile");
    let opts = crate::runtime::CreateOpts {
        pid_file: Some(pid_file.clone()),
        ..Default::default()
    };
    let c = ctx.create_with(&b, &opts)?;
    let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let from_file: Option<i64> = text.trim().parse().ok();
    let st = ctx.state(&c.id)?;
    check(
        from_file.is_some(),
        "runtime.state.pid",
        format!("a pid in {}", pid_file.display()),
        format!("{text:?}"),
    )?;
    check_eq("runtime.state.pid", "pid-file against state", st.pid, from_file)
}

fn run_foreground(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "echo", "from", "run"]);
    let b = ctx.bundle(&spec)?;
    let id = ctx.new_id();
    let (out, io) = ctx
        .driver()
        .run(&id, &b.dir, &Default::default())
        .map_err(|e| fail("runtime.lifecycle.run-program", "run to finish", e))?;
    ctx.note(format!("run {id}: {}", out.status));
    check(
        out.status.success(),
        "runtime.lifecycle.run-program",
        "run to succeed",
        out.reason(),
    )?;
    io.wait_eof(ctx.shared.timeout);
    check_eq("runtime.start.run-program", "output", "from run", io.stdout().trim())
}
