//! The `delete` operation (runtime.md, Delete): only stopped containers go,
//! what create made goes with them, and what it did not make stays.

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, Case, CaseResult, Need};
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "delete::stopped_removes",
        clauses: &["runtime.delete.remove-resources", "runtime.lifecycle.destroy"],
        needs: &[],
        summary: "deleting a stopped container removes it: state fails, its process and cgroups are gone",
        run: stopped_removes,
    },
    Case {
        id: "delete::running_error",
        clauses: &[
            "runtime.delete.not-stopped-error",
            "runtime.delete.not-stopped-no-effect",
        ],
        needs: &[],
        summary: "delete of a running container is an error and leaves it running",
        run: running_error,
    },
    Case {
        id: "delete::created_error",
        clauses: &[
            "runtime.delete.not-stopped-error",
            "runtime.delete.not-stopped-no-effect",
        ],
        needs: &[],
        summary: "delete of a created container is an error and leaves it created",
        run: created_error,
    },
    Case {
        id: "delete::id_reuse",
        clauses: &["runtime.delete.id-reuse"],
        needs: &[],
        summary: "after delete the id can be used for a new container",
        run: id_reuse,
    },
    Case {
        id: "delete::keeps_foreign_resources",
        clauses: &["runtime.delete.keep-foreign-resources"],
        needs: &[Need::Unchanged("host-files")],
        summary: "delete leaves what the container did not create: a bind-mounted host directory and its files",
        run: keeps_foreign_resources,
    },
    Case {
        id: "delete::no_id_error",
        clauses: &["runtime.delete.no-id-error"],
        needs: &[],
        summary: "delete without an id is an error",
        run: no_id_error,
    },
];

fn stopped_removes(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    let cg = ctx.cgroup_path("delete");
    spec.linux_mut_or_default().set_cgroups_path(Some(cg.clone().into()));
    let c = ctx.run_until_stopped(&spec)?;
    let out = ctx.delete(&c.id, false)?;
    check(
        out.status.success(),
        "runtime.lifecycle.destroy",
        "delete of a stopped container to succeed",
        out.reason(),
    )?;
    let st = ctx.state_raw(&c.id)?;
    check(
        !st.status.success(),
        "runtime.delete.remove-resources",
        "state to fail for a deleted container",
        format!("state answered {}", st.stdout.trim()),
    )?;
    if let Some(pid) = c.pid {
        check(
            !crate::reaper::alive(pid),
            "runtime.delete.remove-resources",
            format!("process {pid} gone"),
            "it still runs",
        )?;
    }
    let left: Vec<String> = ["memory", "pids", "cpu", "devices", "hugetlb"]
        .iter()
        .filter_map(|ctrl| ctx.host().cgroup_dir(ctrl, &cg))
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    check(
        left.is_empty(),
        "runtime.delete.remove-resources",
        "the container's cgroups removed",
        left.join(", "),
    )
}

fn running_error(ctx: &mut Ctx) -> CaseResult {
    let c = crate::cases::state::sleeper(ctx)?;
    ctx.start(&c)?;
    let out = ctx.delete(&c.id, false)?;
    check(
        !out.status.success(),
        "runtime.delete.not-stopped-error",
        "delete of a running container to fail",
        "it succeeded",
    )?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.delete.not-stopped-no-effect",
        "status",
        Some("running"),
        st.status.as_deref(),
    )?;
    check(
        c.pid.is_some_and(crate::reaper::alive),
        "runtime.delete.not-stopped-no-effect",
        "the process still running",
        "it was killed",
    )
}

fn created_error(ctx: &mut Ctx) -> CaseResult {
    let c = crate::cases::state::sleeper(ctx)?;
    let out = ctx.delete(&c.id, false)?;
    check(
        !out.status.success(),
        "runtime.delete.not-stopped-error",
        "delete of a created container to fail",
        "it succeeded (the container was destroyed)",
    )?;
    let st = ctx.state(&c.id)?;
    check_eq(
        "runtime.delete.not-stopped-no-effect",
        "status",
        Some("created"),
        st.status.as_deref(),
    )
}

fn id_reuse(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_args(&["/probe", "echo", "first"]);
    let c = ctx.run_until_stopped(&spec)?;
    let out = ctx.delete(&c.id, false)?;
    check(
        out.status.success(),
        "runtime.delete.id-reuse",
        "delete to succeed",
        out.reason(),
    )?;
    spec.set_args(&["/probe", "echo", "second"]);
    let b = ctx.bundle(&spec)?;
    let (out, io) = ctx.create_raw(&c.id, &b, &Default::default())?;
    check(
        out.status.success(),
        "runtime.delete.id-reuse",
        "create with the freed id to succeed",
        out.reason(),
    )?;
    ctx.start_raw(&c.id)?;
    io.wait_eof(ctx.shared.timeout);
    check_eq(
        "runtime.delete.id-reuse",
        "output of the new container",
        "second",
        io.stdout().trim(),
    )
}

fn keeps_foreign_resources(ctx: &mut Ctx) -> CaseResult {
    let shared = ctx.path("shared");
    let _ = std::fs::create_dir_all(&shared);
    let _ = std::fs::write(shared.join("keep"), b"mine");
    let mut spec = ctx.spec();
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination("/shared".into());
    m.set_typ(Some("bind".into()));
    m.set_source(Some(shared.clone()));
    m.set_options(Some(vec!["rbind".into(), "rw".into()]));
    spec.mounts_mut_or_default().push(m);
    spec.set_args(&["/probe", "write", "/shared/made", "by the container"]);
    let c = ctx.run_until_stopped(&spec)?;
    let out = ctx.delete(&c.id, false)?;
    check(
        out.status.success(),
        "runtime.lifecycle.destroy",
        "delete to succeed",
        out.reason(),
    )?;
    let keep = std::fs::read_to_string(shared.join("keep")).unwrap_or_default();
    check_eq(
        "runtime.delete.keep-foreign-resources",
        "host file in the bind mount",
        "mine",
        keep.as_str(),
    )?;
    check(
        shared.join("made").exists(),
        "runtime.delete.keep-foreign-resources",
        "the file the container wrote to the host directory kept",
        "it was removed",
    )
}

fn no_id_error(ctx: &mut Ctx) -> CaseResult {
    let out = ctx.exec("delete", &[])?;
    check(
        !out.status.success(),
        "runtime.delete.no-id-error",
        "an error when no id is given",
        format!("{}", out.status),
    )
}
