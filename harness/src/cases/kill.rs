//! The `kill` operation (runtime.md, Kill): the signal reaches the
//! container's process, and only created or running containers take one.

use std::time::{Duration, Instant};

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult};
use crate::ctx::{Container, Ctx};

pub const CASES: &[Case] = &[
    Case {
        id: "kill::term_delivered",
        clauses: &["runtime.kill.send-signal"],
        needs: &[],
        summary: "kill TERM delivers SIGTERM to the container's process",
        run: term_delivered,
    },
    Case {
        id: "kill::usr1_by_number",
        clauses: &["runtime.kill.send-signal"],
        needs: &[],
        summary: "kill 10 delivers SIGUSR1 and the process keeps running",
        run: usr1_by_number,
    },
    Case {
        id: "kill::kill_stops_container",
        clauses: &["runtime.kill.send-signal", "runtime.lifecycle.exit-causes"],
        needs: &[],
        summary: "kill KILL ends the process and the status becomes stopped",
        run: kill_stops_container,
    },
    Case {
        id: "kill::created_container",
        clauses: &["runtime.kill.send-signal"],
        needs: &[],
        summary: "a created container that was never started takes a KILL and stops",
        run: created_container,
    },
    Case {
        id: "kill::stopped_error",
        clauses: &["runtime.kill.not-running-error", "runtime.kill.not-running-no-effect"],
        needs: &[],
        summary: "kill on a stopped container is an error and changes nothing",
        run: stopped_error,
    },
    Case {
        id: "kill::no_id_error",
        clauses: &["runtime.kill.no-id-error"],
        needs: &[],
        summary: "kill without an id is an error",
        run: no_id_error,
    },
];

/// A started container running `probe signals`, once it says `ready`.
fn signal_catcher(ctx: &mut Ctx) -> Result<Container, crate::case::Verdict> {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "signals"]);
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    wait_line(ctx, &c, "ready")?;
    Ok(c)
}

/// Waits until the container printed `line` on a line of its own.
fn wait_line(ctx: &Ctx, c: &Container, line: &str) -> CaseResult {
    let deadline = Instant::now() + ctx.shared.timeout;
    while Instant::now() < deadline {
        if c.io.stdout().lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(fail(
        ctx.clause,
        format!("the container to print {line:?}"),
        format!("stdout {:?}", c.io.stdout()),
    ))
}

fn term_delivered(ctx: &mut Ctx) -> CaseResult {
    let c = signal_catcher(ctx)?;
    let out = ctx.kill(&c.id, "TERM")?;
    check(
        out.status.success(),
        "runtime.kill.send-signal",
        "kill TERM to succeed",
        out.reason(),
    )?;
    wait_line(ctx, &c, "SIGTERM")
}

fn usr1_by_number(ctx: &mut Ctx) -> CaseResult {
    let c = signal_catcher(ctx)?;
    let out = ctx.kill(&c.id, "10")?;
    check(
        out.status.success(),
        "runtime.kill.send-signal",
        "kill 10 to succeed",
        out.reason(),
    )?;
    wait_line(ctx, &c, "SIGUSR1")?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.kill.send-signal",
        "status after a caught signal",
        Some("running"),
        st.status.as_deref(),
    )
}

fn kill_stops_container(ctx: &mut Ctx) -> CaseResult {
    let c = signal_catcher(ctx)?;
    let out = ctx.kill(&c.id, "KILL")?;
    check(
        out.status.success(),
        "runtime.kill.send-signal",
        "kill KILL to succeed",
        out.reason(),
    )?;
    let status = ctx.wait_exit(&c)?;
    ctx.wait_status(&c.id, "stopped")?;
    // Killed by the signal; a sandboxed runtime's supervisor may report it
    // as the shell convention 128 + 9 instead.
    use crate::runtime::ExitStatus;
    match status {
        None | Some(ExitStatus::Signal(libc::SIGKILL)) | Some(ExitStatus::Code(137)) => Ok(()),
        Some(other) => Err(fail("runtime.kill.send-signal", "death by SIGKILL", other)),
    }
}

fn created_container(ctx: &mut Ctx) -> CaseResult {
    let c = crate::cases::state::sleeper(ctx)?;
    let out = ctx.kill(&c.id, "KILL")?;
    check(
        out.status.success(),
        "runtime.kill.send-signal",
        "kill of a created container to succeed",
        out.reason(),
    )?;
    ctx.wait_status(&c.id, "stopped").map(|_| ())
}

fn stopped_error(ctx: &mut Ctx) -> CaseResult {
    let c = ctx.run_until_stopped(&ctx.spec())?;
    let before = ctx.state(&c.id)?;
    let out = ctx.kill(&c.id, "KILL")?;
    check(
        !out.status.success(),
        "runtime.kill.not-running-error",
        "kill of a stopped container to fail",
        "it succeeded",
    )?;
    let after = ctx.state(&c.id)?;
    check_eq(
        "runtime.kill.not-running-no-effect",
        "status",
        before.status,
        after.status,
    )
}

fn no_id_error(ctx: &mut Ctx) -> CaseResult {
    let out = ctx.exec("kill", &[])?;
    check(
        !out.status.success(),
        "runtime.kill.no-id-error",
        "an error when no id is given",
        format!("{}", out.status),
    )
}
