//! Several containers in one pod: shared network, IPC and UTS namespaces,
//! private mount namespaces, independent lifecycles.

use cri_api::v1 as api;

use crate::case::{check, check_eq, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::ctx::{state_name, Ctx};

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "multi::shared_namespaces",
        clauses: &["cri.NamespaceOption"],
        summary: "containers of a pod share network, IPC and UTS namespaces and have their own mount namespace",
        run: shared_namespaces,
    },
    CriCase {
        id: "multi::independent_lifecycle",
        clauses: &["cri.StopContainer", "cri.RemoveContainer"],
        summary: "stopping and removing one container of a pod leaves the other running",
        run: independent_lifecycle,
    },
];

fn shared_namespaces(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("multi")?;
    let a_cfg = cx.container_config("a", &["sleep", "inf"]);
    let b_cfg = cx.container_config("b", &["sleep", "inf"]);
    let a = cx.run(&pod, &pcfg, &a_cfg)?;
    let b = cx.run(&pod, &pcfg, &b_cfg)?;
    let ra = cx.exec_report(&a)?;
    let rb = cx.exec_report(&b)?;
    for ns in ["net", "ipc", "uts"] {
        check(
            ra.namespaces.contains_key(ns) && ra.namespaces.get(ns) == rb.namespaces.get(ns),
            "cri.NamespaceOption",
            format!("one {ns} namespace for both containers"),
            format!("{:?} and {:?}", ra.namespaces.get(ns), rb.namespaces.get(ns)),
        )?;
    }
    check(
        ra.namespaces.get("mnt") != rb.namespaces.get("mnt"),
        "cri.NamespaceOption",
        "a mount namespace each",
        format!("both {:?}", ra.namespaces.get("mnt")),
    )?;
    check_eq(
        "cri.NamespaceOption",
        "hostname of b",
        ra.hostname.as_str(),
        rb.hostname.as_str(),
    )
}

fn independent_lifecycle(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("indep")?;
    let a_cfg = cx.container_config("a", &["sleep", "inf"]);
    let b_cfg = cx.container_config("b", &["sleep", "inf"]);
    let a = cx.run(&pod, &pcfg, &a_cfg)?;
    let b = cx.run(&pod, &pcfg, &b_cfg)?;
    let r = cx
        .c()
        .with_deadline(cx.shared.timeout * 2)
        .stop_container(api::StopContainerRequest {
            container_id: a.clone(),
            timeout: 0,
        });
    cx.ok("StopContainer", r)?;
    let r = cx.c().remove_container(api::RemoveContainerRequest { container_id: a });
    cx.ok("RemoveContainer", r)?;
    let st = cx.container_status(&b)?;
    check_eq(
        "cri.StopContainer",
        "state of the other container",
        state_name(api::ContainerState::ContainerRunning as i32),
        state_name(st.state),
    )?;
    let r = cx
        .exec(&b, &["/probe", "true"], 0)
        .map_err(|e| crate::cri::ctx::call_failed(&e))?;
    check_eq("cri.ExecSync", "exit code in the other container", 0, r.exit_code)
}
