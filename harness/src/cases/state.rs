//! The `state` operation and the State document (runtime.md, State and
//! Query State).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult, Need};
use crate::ctx::{Container, Ctx};

pub const CASES: &[Case] = &[
    Case {
        id: "state::created_fields",
        clauses: &[
            "runtime.state.oci-version",
            "runtime.state.id",
            "runtime.state.status-created",
            "runtime.state.pid",
            "runtime.state.bundle",
            "runtime.query.returns-state",
        ],
        needs: &[],
        summary: "state after create has ociVersion, the id, status created, the pid and the absolute bundle",
        run: created_fields,
    },
    Case {
        id: "state::running",
        clauses: &["runtime.state.status-running", "runtime.state.pid"],
        needs: &[],
        summary: "after start the status is running and the pid is unchanged",
        run: running,
    },
    Case {
        id: "state::stopped",
        clauses: &["runtime.state.status-stopped"],
        needs: &[],
        summary: "after the process exits the status is stopped",
        run: stopped,
    },
    Case {
        id: "state::pid_is_container_process",
        clauses: &["runtime.state.pid"],
        needs: &[Need::Unchanged("host-pid")],
        summary: "the pid in state is the container's process as the host sees it",
        run: pid_is_container_process,
    },
    Case {
        id: "state::annotations",
        clauses: &["runtime.state.annotations"],
        needs: &[],
        summary: "state carries the annotations of config.json",
        run: annotations,
    },
    Case {
        id: "state::annotations_empty",
        clauses: &["runtime.state.annotations-empty"],
        needs: &[],
        summary: "without annotations in the config, state's annotations are absent or empty",
        run: annotations_empty,
    },
    Case {
        id: "state::schema",
        clauses: &["runtime.state.schema", "runtime.state.status-values"],
        needs: &[],
        summary: "state output follows the state schema: required fields and their types",
        run: schema,
    },
    Case {
        id: "state::not_exist_error",
        clauses: &["runtime.query.not-exist-error"],
        needs: &[],
        summary: "state of an unknown id is an error",
        run: not_exist_error,
    },
    Case {
        id: "state::no_id_error",
        clauses: &["runtime.query.no-id-error"],
        needs: &[],
        summary: "state without an id is an error",
        run: no_id_error,
    },
];

/// A container whose process waits for a signal.
pub(crate) fn sleeper(ctx: &mut Ctx) -> Result<Container, crate::case::Verdict> {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "sleep", "inf"]);
    ctx.create_spec(&spec)
}

fn created_fields(ctx: &mut Ctx) -> CaseResult {
    let c = sleeper(ctx)?;
    let st = ctx.state(&c.id)?;
    check(
        st.oci_version.as_deref().is_some_and(|v| !v.is_empty()),
        "runtime.state.oci-version",
        "a non-empty ociVersion",
        format!("{:?}", st.oci_version),
    )?;
    check_eq("runtime.state.id", "id", Some(c.id.as_str()), st.id.as_deref())?;
    check_eq(
        "runtime.state.status-created",
        "status",
        Some("created"),
        st.status.as_deref(),
    )?;
    check(
        st.pid.is_some_and(|p| p > 0 && crate::reaper::alive(p as i32)),
        "runtime.state.pid",
        "the pid of a live process",
        format!("{:?}", st.pid),
    )?;
    let want = std::fs::canonicalize(&c.bundle.dir).unwrap_or(c.bundle.dir.clone());
    let got = st.bundle.clone().unwrap_or_default();
    let same = std::fs::canonicalize(&got).is_ok_and(|g| g == want);
    check(
        got.starts_with('/') && same,
        "runtime.state.bundle",
        format!("the absolute bundle path {}", want.display()),
        format!("{got:?}"),
    )
}

fn running(ctx: &mut Ctx) -> CaseResult {
    let c = sleeper(ctx)?;
    let before = ctx.state(&c.id)?.pid;
    ctx.start(&c)?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.state.status-running",
        "status",
        Some("running"),
        st.status.as_deref(),
    )?;
    check_eq("runtime.state.pid", "pid after start", before, st.pid)
}

fn stopped(ctx: &mut Ctx) -> CaseResult {
    let c = ctx.run_until_stopped(&ctx.spec())?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.state.status-stopped",
        "status",
        Some("stopped"),
        st.status.as_deref(),
    )
}

fn ns_inode(pid: &str, ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}")).ok().map(|m| m.ino())
}

fn pid_is_container_process(ctx: &mut Ctx) -> CaseResult {
    let c = sleeper(ctx)?;
    ctx.start(&c)?;
    let st = ctx.state(&c.id)?;
    let pid = st
        .pid
        .ok_or_else(|| fail("runtime.state.pid", "a pid while running", "no pid"))?;
    // The pid names the process that runs the container's program as the
    // host sees it: alive, and inside the container's own pid and mount
    // namespaces (for a sandboxed runtime, the sandbox that runs it).
    check(
        crate::reaper::alive(pid as i32),
        "runtime.state.pid",
        format!("process {pid} alive while running"),
        "no such process",
    )?;
    let pid = pid.to_string();
    for ns in ["pid", "mnt"] {
        check(
            ns_inode(&pid, ns) != ns_inode("self", ns),
            "runtime.state.pid",
            format!("the state pid in the container's {ns} namespace"),
            format!("the host's {ns} namespace"),
        )?;
    }
    Ok(())
}

fn annotations(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    let want: BTreeMap<String, String> = [
        ("org.opencontainers.harness.one".to_string(), "1".to_string()),
        (
            "org.opencontainers.harness.two".to_string(),
            "a value with spaces".to_string(),
        ),
    ]
    .into();
    spec.set_annotations(Some(want.clone().into_iter().collect()));
    let c = ctx.create_spec(&spec)?;
    let st = ctx.state(&c.id)?;
    let got: BTreeMap<String, String> = st
        .annotations
        .into_iter()
        .filter(|(k, _)| want.contains_key(k))
        .collect();
    check_eq("runtime.state.annotations", "annotations", want, got)
}

fn annotations_empty(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_annotations(None);
    let c = ctx.create_spec(&spec)?;
    let st = ctx.state(&c.id)?;
    match st.raw.get("annotations") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.is_empty() => Ok(()),
        Some(other) => Err(fail(
            "runtime.state.annotations-empty",
            "annotations absent or an empty map",
            other.to_string(),
        )),
    }
}

/// Checks the types the state schema requires (schema/state-schema.json:
/// ociVersion, id, status and bundle are required strings; pid an integer;
/// annotations a map of strings).
pub(crate) fn schema_errors(raw: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(obj) = raw.as_object() else {
        return vec!["not an object".into()];
    };
    for k in ["ociVersion", "id", "status", "bundle"] {
        match obj.get(k) {
            Some(Value::String(_)) => {}
            Some(v) => errs.push(format!("{k} is not a string: {v}")),
            None => errs.push(format!("{k} is missing")),
        }
    }
    if let Some(s) = obj.get("status").and_then(Value::as_str) {
        if !["creating", "created", "running", "stopped"].contains(&s) {
            errs.push(format!("status {s:?} is not a defined value"));
        }
    }
    if let Some(p) = obj.get("pid") {
        if !p.is_i64() {
            errs.push(format!("pid is not an integer: {p}"));
        }
    }
    if let Some(a) = obj.get("annotations") {
        match a {
            Value::Object(m) if m.values().all(Value::is_string) => {}
            Value::Null => {}
            other => errs.push(format!("annotations is not a map of strings: {other}")),
        }
    }
    errs
}

fn schema(ctx: &mut Ctx) -> CaseResult {
    let c = sleeper(ctx)?;
    let mut seen = Vec::new();
    let created = ctx.state(&c.id)?;
    seen.push(("created", created.raw));
    ctx.start(&c)?;
    let running = ctx.state(&c.id)?;
    seen.push(("running", running.raw));
    ctx.kill(&c.id, "KILL")?;
    let stopped = ctx.wait_status(&c.id, "stopped")?;
    seen.push(("stopped", stopped.raw));
    for (when, raw) in seen {
        let errs = schema_errors(&raw);
        check(
            errs.is_empty(),
            "runtime.state.schema",
            format!("state ({when}) valid against the state schema"),
            errs.join("; "),
        )?;
    }
    Ok(())
}

fn not_exist_error(ctx: &mut Ctx) -> CaseResult {
    let id = ctx.new_id();
    let out = ctx.state_raw(&id)?;
    check(
        !out.status.success(),
        "runtime.query.not-exist-error",
        "an error for an unknown id",
        format!("{} with stdout {:?}", out.status, out.stdout.trim()),
    )
}

fn no_id_error(ctx: &mut Ctx) -> CaseResult {
    let out = ctx.exec("state", &[])?;
    check(
        !out.status.success(),
        "runtime.query.no-id-error",
        "an error when no id is given",
        format!("{} with stdout {:?}", out.status, out.stdout.trim()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_check_accepts_runc_and_rejects_bad_types() {
        let ok: Value = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","id":"a","status":"running","pid":3,"bundle":"/b","annotations":{"k":"v"}}"#,
        )
        .unwrap();
        assert!(schema_errors(&ok).is_empty());
        let bad: Value = serde_json::from_str(r#"{"ociVersion":"1","id":"a","status":"paused?","pid":"3"}"#).unwrap();
        let e = schema_errors(&bad).join("; ");
        assert!(e.contains("bundle is missing"), "{e}");
        assert!(e.contains("not a defined value"), "{e}");
        assert!(e.contains("pid is not an integer"), "{e}");
    }
}
