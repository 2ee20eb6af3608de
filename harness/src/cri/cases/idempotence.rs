//! The calls the CRI makes idempotent: stopping or removing twice.

use cri_api::v1 as api;

use crate::case::{fail, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::ctx::Ctx;

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "idempotence::stop_pod_twice",
        clauses: &["cri.StopPodSandbox"],
        summary: "stopping a stopped pod succeeds",
        run: stop_pod_twice,
    },
    CriCase {
        id: "idempotence::remove_pod_twice",
        clauses: &["cri.RemovePodSandbox"],
        summary: "removing a removed pod succeeds",
        run: remove_pod_twice,
    },
    CriCase {
        id: "idempotence::stop_container_twice",
        clauses: &["cri.StopContainer"],
        summary: "stopping an exited container succeeds",
        run: stop_container_twice,
    },
    CriCase {
        id: "idempotence::remove_container_twice",
        clauses: &["cri.RemoveContainer"],
        summary: "removing a removed container succeeds",
        run: remove_container_twice,
    },
];

fn again<T>(cx: &mut Ctx, clause: &str, what: &str, r: crate::cri::client::CallResult<T>) -> CaseResult {
    match cx.try_(what, r) {
        Ok(_) => Ok(()),
        Err(e) => Err(fail(clause, "success the second time", e)),
    }
}

fn stop_pod_twice(cx: &mut Ctx) -> CaseResult {
    let (id, _) = cx.pod("stop2")?;
    cx.stop_pod(&id)?;
    let r = cx
        .c()
        .with_deadline(cx.shared.timeout * 2)
        .stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id });
    again(cx, "cri.StopPodSandbox", "StopPodSandbox (again)", r)
}

fn remove_pod_twice(cx: &mut Ctx) -> CaseResult {
    let (id, _) = cx.pod("rm2")?;
    cx.stop_pod(&id)?;
    let req = api::RemovePodSandboxRequest {
        pod_sandbox_id: id.clone(),
    };
    let r = cx.c().remove_pod_sandbox(req.clone());
    cx.ok("RemovePodSandbox", r)?;
    let r = cx.c().remove_pod_sandbox(req);
    again(cx, "cri.RemovePodSandbox", "RemovePodSandbox (again)", r)
}

fn stop_container_twice(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("cstop2")?;
    let c = cx.container_config("c", &["sleep", "inf"]);
    let id = cx.run(&pod, &pcfg, &c)?;
    let req = api::StopContainerRequest {
        container_id: id,
        timeout: 0,
    };
    let r = cx.c().with_deadline(cx.shared.timeout * 2).stop_container(req.clone());
    cx.ok("StopContainer", r)?;
    let r = cx.c().with_deadline(cx.shared.timeout * 2).stop_container(req);
    again(cx, "cri.StopContainer", "StopContainer (again)", r)
}

fn remove_container_twice(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("crm2")?;
    let c = cx.container_config("c", &["true"]);
    let id = cx.run(&pod, &pcfg, &c)?;
    cx.wait_exit(&id)?;
    let req = api::RemoveContainerRequest { container_id: id };
    let r = cx.c().remove_container(req.clone());
    cx.ok("RemoveContainer", r)?;
    let r = cx.c().remove_container(req);
    again(cx, "cri.RemoveContainer", "RemoveContainer (again)", r)
}
