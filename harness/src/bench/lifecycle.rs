//! Lifecycle latency: each runtime verb on its own (create, start, state,
//! kill, delete of a container that sleeps) and `run` of `probe true` end to
//! end. Runtimes take turns iteration by iteration. The time the harness
//! spends between the runtime's invocations (building argv, parsing state,
//! bookkeeping) is measured too: it must stay small next to the figures.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use super::results::{Phase, Unit, HOST};
use super::timed::{self, Stdout, Timed};
use super::{interrupted, ns, turn_order, Error, Recorder, Subject, GIVE_UP_AFTER};
use crate::bundle::Bundle;
use crate::runtime::State;

/// The operations measured, in the order they run.
pub const OPS: &[&str] = &["create", "start", "state", "kill", "delete", "run"];

fn what(op: &str) -> &'static str {
    match op {
        "create" => "`create` of a container running `probe sleep inf`, runtime invocation to exit",
        "start" => "`start` of the created container",
        "state" => "`state` of the running container",
        "kill" => "`kill ID KILL` of the running container",
        "delete" => "`delete` of the stopped container",
        _ => "`run` of `probe true`: create, start, wait for exit, remove",
    }
}

/// The field of a state document where a VM runtime puts its boot's
/// breakdown (the bundled virtualized runtime does).
pub const VM_BOOT_KEY: &str = "org.ociharness.vm.boot";

/// The boot breakdown in a state document: every `*_ms` figure of
/// [`VM_BOOT_KEY`], nested objects included, as `lifecycle.vm.<path>` in
/// nanoseconds. Nothing for a runtime without one.
pub fn vm_boot(state: &serde_json::Value) -> Vec<(String, f64)> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, f64)>) {
        let Some(obj) = v.as_object() else {
            return;
        };
        for (k, x) in obj {
            if let Some(name) = k.strip_suffix("_ms") {
                if let Some(ms) = x.as_f64() {
                    out.push((format!("{prefix}.{name}"), ms * 1e6));
                }
            } else if x.is_object() {
                walk(x, &format!("{prefix}.{k}"), out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(b) = state.get(VM_BOOT_KEY) {
        walk(b, "lifecycle.vm", &mut out);
    }
    out
}

/// One iteration's timings, or the operation that failed and why.
struct Iteration {
    ops: Vec<(&'static str, Duration)>,
    /// What the runtime's `state` said the create's VM boot cost (see
    /// [`vm_boot`]), as (metric id, nanoseconds).
    boot: Vec<(String, f64)>,
    /// Time inside the harness between invocations, excluding the waits for
    /// a killed container to stop and for the post-`run` clean-up.
    harness: Duration,
}

struct Failure {
    op: &'static str,
    reason: String,
}

fn fail(op: &'static str, t: &Timed) -> Failure {
    Failure {
        op,
        reason: format!("{}: {}", t.status, t.reason),
    }
}

fn io_fail(op: &'static str, e: crate::runtime::Error) -> Failure {
    Failure {
        op,
        reason: e.to_string(),
    }
}

/// Polls `state` until the container is `stopped` (runtimes differ in how
/// soon they notice a killed init), bounded by the operation timeout.
fn settle_stopped(s: &Subject, id: &str) -> Result<(), String> {
    let deadline = Instant::now() + s.driver.runtime.timeout;
    loop {
        let out = s.driver.state(id).map_err(|e| e.to_string())?;
        if out.status.success() && State::parse(&out.stdout).is_ok_and(|st| st.status.as_deref() == Some("stopped")) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("not `stopped` {:.0?} after kill", s.driver.runtime.timeout));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn iteration(s: &mut Subject, sleeper: &Bundle, trivial: &Bundle) -> Result<Iteration, Failure> {
    let begin = Instant::now();
    let mut settle = Duration::ZERO;
    let mut ops = Vec::with_capacity(OPS.len());
    let id = s.id("l");
    let err = s.err_file.clone();
    let d = s.driver.clone();
    let arg = |x: &str| OsString::from(x);

    let bundle_args = |b: &Bundle, id: &str| vec![arg("--bundle"), b.dir.clone().into_os_string(), arg(id)];
    let t =
        timed::verb(&d, "create", &bundle_args(sleeper, &id), Stdout::Null, &err).map_err(|e| io_fail("create", e))?;
    if !t.ok() {
        return Err(fail("create", &t));
    }
    ops.push(("create", t.wall));
    let step = |op: &'static str, args: Vec<OsString>, out: Stdout| -> Result<Timed, Failure> {
        let t = timed::verb(&d, op, &args, out, &err).map_err(|e| io_fail(op, e))?;
        if t.ok() {
            Ok(t)
        } else {
            Err(fail(op, &t))
        }
    };
    let t = step("start", vec![arg(&id)], Stdout::Null)?;
    ops.push(("start", t.wall));
    let t = step("state", vec![arg(&id)], Stdout::Capture)?;
    ops.push(("state", t.wall));
    let state = State::parse(&t.stdout).map_err(|e| Failure {
        op: "state",
        reason: format!("output is not a state document: {e}"),
    })?;
    let boot = vm_boot(&state.raw);
    let t = step("kill", vec![arg(&id), arg("KILL")], Stdout::Null)?;
    ops.push(("kill", t.wall));
    let waited = Instant::now();
    if !timed::wait_gone(state.pid.unwrap_or(0) as i32, d.runtime.timeout) {
        return Err(Failure {
            op: "kill",
            reason: format!("pid {:?} still alive after SIGKILL", state.pid),
        });
    }
    settle_stopped(s, &id).map_err(|reason| Failure { op: "kill", reason })?;
    settle += waited.elapsed();
    let t = step("delete", vec![arg(&id)], Stdout::Null)?;
    ops.push(("delete", t.wall));

    let run_id = s.id("r");
    let t = step("run", bundle_args(trivial, &run_id), Stdout::Null)?;
    ops.push(("run", t.wall));
    // runc, crun and runsc remove the container when `run` returns; others
    // may keep it stopped. Not timed: it is not part of `run`.
    let cleanup = Instant::now();
    s.discard(&run_id);
    settle += cleanup.elapsed();

    let runtime_time: Duration = ops.iter().map(|(_, d)| *d).sum();
    let harness = begin.elapsed().saturating_sub(runtime_time + settle);
    Ok(Iteration { ops, boot, harness })
}

pub(super) fn run(subjects: &mut [Subject], rec: &mut Recorder, work: &Path) -> Result<(), Error> {
    let probe = rec.options.probe.clone();
    let mut bundles = Vec::new();
    for s in subjects.iter() {
        let sleeper = s.bundle("sleeper", &s.spec(&["/probe", "sleep", "inf"]), &probe)?;
        let trivial = s.bundle("trivial", &s.spec(&["/probe", "true"]), &probe)?;
        bundles.push((sleeper, trivial));
    }
    let (warmup, iterations) = (rec.options.warmup, rec.options.iterations);
    let mut consecutive = vec![0usize; subjects.len()];
    let floor_err = work.join("spawn-floor.err");
    let floor_args = [OsString::from("true")];
    for it in 0..warmup + iterations {
        let measured = it >= warmup;
        for i in turn_order(subjects.len(), it) {
            if interrupted() {
                return Ok(());
            }
            let s = &mut subjects[i];
            if consecutive[i] >= GIVE_UP_AFTER {
                continue;
            }
            let label = if measured {
                format!("iteration {}", it - warmup + 1)
            } else {
                format!("warm-up {}", it + 1)
            };
            rec.warm();
            match iteration(s, &bundles[i].0, &bundles[i].1) {
                Ok(r) => {
                    consecutive[i] = 0;
                    if measured {
                        for (op, d) in &r.ops {
                            rec.push(
                                &format!("lifecycle.{op}"),
                                Phase::Lifecycle,
                                &s.name,
                                Unit::Ns,
                                what(op),
                                ns(*d),
                            );
                        }
                        for (id, v) in &r.boot {
                            rec.push(
                                id,
                                Phase::Lifecycle,
                                &s.name,
                                Unit::Ns,
                                "part of `create`: the VM boot's breakdown, as the runtime's state reports it",
                                *v,
                            );
                        }
                        rec.push(
                            "harness.overhead",
                            Phase::Harness,
                            &s.name,
                            Unit::Ns,
                            "harness time between runtime invocations, per operation",
                            ns(r.harness) / r.ops.len() as f64,
                        );
                    }
                }
                Err(f) => {
                    consecutive[i] += 1;
                    rec.missing(&s.name, Phase::Lifecycle, format!("{label}: {}", f.op), f.reason);
                    crate::cleanup::kill_all(&crate::cleanup::marked_processes(&s.prefix));
                    if let Ok(rd) = std::fs::read_dir(&s.driver.root) {
                        for e in rd.flatten() {
                            s.discard(&e.file_name().to_string_lossy());
                        }
                    }
                    if consecutive[i] == GIVE_UP_AFTER {
                        rec.missing(
                            &s.name,
                            Phase::Lifecycle,
                            "the remaining iterations",
                            format!("given up after {GIVE_UP_AFTER} failures in a row"),
                        );
                    }
                }
            }
            rec.quiesce();
            let name = s.name.clone();
            rec.step(format!("lifecycle {label} {name}"));
        }
        if measured {
            // The floor under every figure: spawning a static no-op and
            // reaping it through the same timed path.
            if let Ok(t) = timed::run(
                &probe,
                &floor_args,
                &[],
                Stdout::Null,
                &floor_err,
                Duration::from_secs(10),
            ) {
                rec.push(
                    "harness.spawn",
                    Phase::Harness,
                    HOST,
                    Unit::Ns,
                    "spawn and reap of `probe true` on the host, through the timed path",
                    ns(t.wall),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vm_boot_breakdown_becomes_metrics_in_ns() {
        let st = serde_json::json!({
            "id": "a",
            VM_BOOT_KEY: {"ready_ms": 1900, "machine": "microvm", "guest": {"agent_start_ms": 961, "kernel": "6.1"}}
        });
        let mut got = vm_boot(&st);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("lifecycle.vm.guest.agent_start".to_string(), 961e6),
                ("lifecycle.vm.ready".to_string(), 1900e6)
            ]
        );
        assert!(vm_boot(&serde_json::json!({"id": "a"})).is_empty());
    }
}
