//! Bad input: unknown ids, a container in a removed pod, malformed requests
//! and an unknown runtime handler get the right gRPC code.

use cri_api::v1 as api;

use crate::case::{fail, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::client::CallResult;
use crate::cri::ctx::Ctx;

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "bad_input::unknown_pod",
        clauses: &["cri.PodSandboxStatus"],
        summary: "the status of an unknown pod is NotFound",
        run: unknown_pod,
    },
    CriCase {
        id: "bad_input::unknown_container",
        clauses: &["cri.ContainerStatus", "cri.StartContainer"],
        summary: "status and start of an unknown container are NotFound",
        run: unknown_container,
    },
    CriCase {
        id: "bad_input::container_in_removed_pod",
        clauses: &["cri.CreateContainer"],
        summary: "creating a container in a removed pod is NotFound",
        run: container_in_removed_pod,
    },
    CriCase {
        id: "bad_input::pod_without_metadata",
        clauses: &["cri.RunPodSandbox"],
        summary: "a pod config without metadata is InvalidArgument",
        run: pod_without_metadata,
    },
    CriCase {
        id: "bad_input::container_without_metadata",
        clauses: &["cri.CreateContainer"],
        summary: "a container config without metadata is InvalidArgument",
        run: container_without_metadata,
    },
    CriCase {
        id: "bad_input::unknown_runtime_handler",
        clauses: &["cri.RunPodSandbox"],
        summary: "a pod asking for a runtime handler that does not exist is refused",
        run: unknown_runtime_handler,
    },
];

const UNKNOWN: &str = "0000000000000000000000000000000000000000000000000000000000000bad";

fn expect_code<T>(cx: &mut Ctx, clause: &str, what: &str, code: tonic::Code, r: CallResult<T>) -> CaseResult {
    match cx.try_(what, r) {
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(fail(clause, format!("{code:?}"), e)),
        Ok(_) => Err(fail(clause, format!("{code:?}"), "success")),
    }
}

fn unknown_pod(cx: &mut Ctx) -> CaseResult {
    let r = cx.c().pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: UNKNOWN.into(),
        verbose: false,
    });
    expect_code(
        cx,
        "cri.PodSandboxStatus",
        "PodSandboxStatus (unknown)",
        tonic::Code::NotFound,
        r,
    )
}

fn unknown_container(cx: &mut Ctx) -> CaseResult {
    let r = cx.c().container_status(api::ContainerStatusRequest {
        container_id: UNKNOWN.into(),
        verbose: false,
    });
    expect_code(
        cx,
        "cri.ContainerStatus",
        "ContainerStatus (unknown)",
        tonic::Code::NotFound,
        r,
    )?;
    let r = cx.c().start_container(api::StartContainerRequest {
        container_id: UNKNOWN.into(),
    });
    expect_code(
        cx,
        "cri.StartContainer",
        "StartContainer (unknown)",
        tonic::Code::NotFound,
        r,
    )
}

fn container_in_removed_pod(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("gone")?;
    cx.stop_and_remove_pod(&pod)?;
    let c = cx.container_config("c", &["true"]);
    let r = cx.c().create_container(api::CreateContainerRequest {
        pod_sandbox_id: pod,
        config: Some(c),
        sandbox_config: Some(pcfg),
    });
    expect_code(
        cx,
        "cri.CreateContainer",
        "CreateContainer (removed pod)",
        tonic::Code::NotFound,
        r,
    )
}

fn pod_without_metadata(cx: &mut Ctx) -> CaseResult {
    let mut cfg = cx.pod_config("nometa");
    cfg.metadata = None;
    let r = cx.c().run_pod_sandbox(api::RunPodSandboxRequest {
        config: Some(cfg),
        runtime_handler: cx.shared.handler.clone(),
    });
    if let Ok(ok) = &r {
        // Not to leak it if the endpoint took it.
        let id = ok.pod_sandbox_id.clone();
        let _ = cx.c().stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        });
        let _ = cx
            .c()
            .remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id });
    }
    expect_code(
        cx,
        "cri.RunPodSandbox",
        "RunPodSandbox (no metadata)",
        tonic::Code::InvalidArgument,
        r,
    )
}

fn container_without_metadata(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("cnometa")?;
    let mut c = cx.container_config("c", &["true"]);
    c.metadata = None;
    let r = cx.c().create_container(api::CreateContainerRequest {
        pod_sandbox_id: pod,
        config: Some(c),
        sandbox_config: Some(pcfg),
    });
    if let Ok(ok) = &r {
        let _ = cx.c().remove_container(api::RemoveContainerRequest {
            container_id: ok.container_id.clone(),
        });
    }
    expect_code(
        cx,
        "cri.CreateContainer",
        "CreateContainer (no metadata)",
        tonic::Code::InvalidArgument,
        r,
    )
}

fn unknown_runtime_handler(cx: &mut Ctx) -> CaseResult {
    let cfg = cx.pod_config("nohandler");
    let r = cx.c().run_pod_sandbox(api::RunPodSandboxRequest {
        config: Some(cfg),
        runtime_handler: "oci-harness-no-such-handler".into(),
    });
    match cx.try_("RunPodSandbox (unknown handler)", r) {
        Err(_) => Ok(()),
        Ok(ok) => {
            let id = ok.pod_sandbox_id;
            let _ = cx.c().stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            });
            let _ = cx
                .c()
                .remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id });
            Err(fail(
                "cri.RunPodSandbox",
                "an error for an unknown runtime handler",
                "a pod",
            ))
        }
    }
}
