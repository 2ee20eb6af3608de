//! Pod lifecycle: run, status, list with filters, stop, remove.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cri_api::v1 as api;

use crate::case::{check, check_eq, fail, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::ctx::Ctx;

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "pod::run_and_status",
        clauses: &["cri.RunPodSandbox", "cri.PodSandboxStatus"],
        summary: "a new pod is READY, with its metadata, labels, annotations and creation time in its status",
        run: run_and_status,
    },
    CriCase {
        id: "pod::list_filters",
        clauses: &["cri.ListPodSandbox"],
        summary: "ListPodSandbox filters by id, state and label selector",
        run: list_filters,
    },
    CriCase {
        id: "pod::stop_not_ready",
        clauses: &["cri.StopPodSandbox"],
        summary: "a stopped pod is NOTREADY",
        run: stop_not_ready,
    },
    CriCase {
        id: "pod::stop_stops_containers",
        clauses: &["cri.StopPodSandbox"],
        summary: "stopping a pod stops its running containers",
        run: stop_stops_containers,
    },
    CriCase {
        id: "pod::remove_forgets",
        clauses: &["cri.RemovePodSandbox", "cri.PodSandboxStatus"],
        summary: "a removed pod is not listed and its status is NotFound",
        run: remove_forgets,
    },
    CriCase {
        id: "pod::remove_removes_containers",
        clauses: &["cri.RemovePodSandbox"],
        summary: "removing a pod removes its containers",
        run: remove_removes_containers,
    },
    CriCase {
        id: "pod::network_ip",
        clauses: &["cri.RunPodSandbox", "cri.PodSandboxStatus"],
        summary:
            "a pod off the node's network gets an address on the node's pod network, in its status and in its namespace",
        run: network_ip,
    },
    CriCase {
        id: "pod::hostname",
        clauses: &["cri.RunPodSandbox", "cri.NamespaceOption"],
        summary: "containers of a pod see the pod's hostname",
        run: hostname,
    },
];

const READY: i32 = api::PodSandboxState::SandboxReady as i32;
const NOT_READY: i32 = api::PodSandboxState::SandboxNotready as i32;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn run_and_status(cx: &mut Ctx) -> CaseResult {
    let before = now_ns();
    let (id, cfg) = cx.pod("status")?;
    let st = cx.pod_status(&id)?;
    check_eq("cri.PodSandboxStatus", "id", id.as_str(), st.id.as_str())?;
    check_eq("cri.PodSandboxStatus", "state", READY, st.state)?;
    check_eq(
        "cri.PodSandboxStatus",
        "metadata",
        cfg.metadata.as_ref(),
        st.metadata.as_ref(),
    )?;
    check_eq("cri.PodSandboxStatus", "labels", &cfg.labels, &st.labels)?;
    check_eq("cri.PodSandboxStatus", "annotations", &cfg.annotations, &st.annotations)?;
    // Clocks: allow a minute of slack either way (the endpoint may stamp
    // the creation a little before the call returns).
    let slack = Duration::from_secs(60).as_nanos() as i64;
    check(
        st.created_at > before - slack && st.created_at < now_ns() + slack,
        "cri.PodSandboxStatus",
        format!("created_at near {before} (ns since the epoch)"),
        st.created_at,
    )
}

fn list(cx: &mut Ctx, filter: api::PodSandboxFilter) -> Result<Vec<String>, crate::case::Verdict> {
    let r = cx
        .c()
        .list_pod_sandbox(api::ListPodSandboxRequest { filter: Some(filter) });
    let mut ids: Vec<String> = cx.ok("ListPodSandbox", r)?.items.into_iter().map(|p| p.id).collect();
    ids.sort();
    Ok(ids)
}

fn list_filters(cx: &mut Ctx) -> CaseResult {
    let mut a_cfg = cx.pod_config("a");
    a_cfg.labels.insert("oci-harness.which".into(), "a".into());
    let a = cx.run_pod(&a_cfg)?;
    let mut b_cfg = cx.pod_config("b");
    b_cfg.labels.insert("oci-harness.which".into(), "b".into());
    let b = cx.run_pod(&b_cfg)?;
    let mine = cx.labels();
    let by_id = list(
        cx,
        api::PodSandboxFilter {
            id: a.clone(),
            ..Default::default()
        },
    )?;
    check_eq("cri.ListPodSandbox", "ids listed by id filter", vec![a.clone()], by_id)?;
    let mut sel = mine.clone();
    sel.insert("oci-harness.which".into(), "b".into());
    let by_label = list(
        cx,
        api::PodSandboxFilter {
            label_selector: sel,
            ..Default::default()
        },
    )?;
    check_eq(
        "cri.ListPodSandbox",
        "ids listed by label selector",
        vec![b.clone()],
        by_label,
    )?;
    let r = cx.c().stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: b.clone(),
    });
    cx.ok("StopPodSandbox", r)?;
    let state = |s: i32| api::PodSandboxFilter {
        state: Some(api::PodSandboxStateValue { state: s }),
        label_selector: mine.clone(),
        ..Default::default()
    };
    let ready = list(cx, state(READY))?;
    check_eq("cri.ListPodSandbox", "READY pods", vec![a.clone()], ready)?;
    let not_ready = list(cx, state(NOT_READY))?;
    check_eq("cri.ListPodSandbox", "NOTREADY pods", vec![b.clone()], not_ready)?;
    let mut all = vec![a, b];
    all.sort();
    let both = list(
        cx,
        api::PodSandboxFilter {
            label_selector: mine,
            ..Default::default()
        },
    )?;
    check_eq("cri.ListPodSandbox", "pods with the case's labels", all, both)
}

fn stop_not_ready(cx: &mut Ctx) -> CaseResult {
    let (id, _) = cx.pod("stop")?;
    cx.stop_pod(&id)?;
    let st = cx.pod_status(&id)?;
    check_eq("cri.StopPodSandbox", "state after stop", NOT_READY, st.state)
}

fn stop_stops_containers(cx: &mut Ctx) -> CaseResult {
    let (pod, cfg) = cx.pod("stopc")?;
    let c = cx.container_config("sleeper", &["sleep", "inf"]);
    let id = cx.run(&pod, &cfg, &c)?;
    cx.stop_pod(&pod)?;
    let st = cx.container_status(&id)?;
    check_eq(
        "cri.StopPodSandbox",
        "container state after the pod's stop",
        crate::cri::ctx::state_name(api::ContainerState::ContainerExited as i32),
        crate::cri::ctx::state_name(st.state),
    )
}

fn remove_forgets(cx: &mut Ctx) -> CaseResult {
    let (id, _) = cx.pod("remove")?;
    cx.stop_and_remove_pod(&id)?;
    let listed = list(
        cx,
        api::PodSandboxFilter {
            id: id.clone(),
            ..Default::default()
        },
    )?;
    check(
        listed.is_empty(),
        "cri.RemovePodSandbox",
        "the pod no longer listed",
        format!("{listed:?}"),
    )?;
    let r = cx.c().pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: id,
        verbose: false,
    });
    match cx.try_("PodSandboxStatus (removed)", r) {
        Err(e) if e.code() == tonic::Code::NotFound => Ok(()),
        Err(e) => Err(fail("cri.PodSandboxStatus", "NotFound", e)),
        Ok(_) => Err(fail("cri.PodSandboxStatus", "NotFound", "a status")),
    }
}

fn remove_removes_containers(cx: &mut Ctx) -> CaseResult {
    let (pod, cfg) = cx.pod("removec")?;
    let c1 = cx.container_config("running", &["sleep", "inf"]);
    let c2 = cx.container_config("created", &["true"]);
    let running = cx.run(&pod, &cfg, &c1)?;
    let created = cx.create(&pod, &cfg, &c2)?;
    cx.stop_and_remove_pod(&pod)?;
    let r = cx.c().list_containers(api::ListContainersRequest {
        filter: Some(api::ContainerFilter {
            pod_sandbox_id: pod,
            ..Default::default()
        }),
    });
    let left: Vec<String> = cx
        .ok("ListContainers", r)?
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect();
    check(
        left.is_empty(),
        "cri.RemovePodSandbox",
        "no container of the pod left",
        format!("{left:?}"),
    )?;
    for id in [running, created] {
        let r = cx.c().container_status(api::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        });
        match cx.try_("ContainerStatus (pod removed)", r) {
            Err(e) if e.code() == tonic::Code::NotFound => {}
            Err(e) => return Err(fail("cri.RemovePodSandbox", format!("{id}: NotFound"), e)),
            Ok(_) => return Err(fail("cri.RemovePodSandbox", format!("{id}: NotFound"), "a status")),
        }
    }
    Ok(())
}

fn hostname(cx: &mut Ctx) -> CaseResult {
    let (pod, cfg) = cx.pod("host")?;
    let c = cx.container_config("report", &[]);
    let rep = cx.report_in(&pod, &cfg, c)?;
    check_eq(
        "cri.RunPodSandbox",
        "hostname",
        cfg.hostname.as_str(),
        rep.hostname.as_str(),
    )
}

fn network_ip(cx: &mut Ctx) -> CaseResult {
    let st = cx.c().status(api::StatusRequest { verbose: false });
    let st = cx.ok("Status", st)?;
    let conds = st.status.map(|s| s.conditions).unwrap_or_default();
    if let Some(c) = conds.iter().find(|c| c.r#type == "NetworkReady" && !c.status) {
        return Err(crate::case::skip(format!(
            "the endpoint says its pod network is not ready: {} {}",
            c.reason, c.message
        )));
    }
    let (pod, pcfg) = cx.pod("net")?;
    let status = cx.pod_status(&pod)?;
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let addr: Option<std::net::IpAddr> = ip.parse().ok();
    check(
        addr.is_some_and(|a| !a.is_loopback() && !a.is_unspecified()),
        "cri.PodSandboxStatus",
        "the pod's address in network.ip",
        format!("{ip:?}"),
    )?;
    if !addr.is_some_and(|a| a.is_ipv4()) {
        cx.note(format!("{ip} is not IPv4: not looked for in /proc/net/fib_trie"));
        return Ok(());
    }
    // The address is the pod's: its network namespace has it as a local
    // address.
    let c = cx.container_config("c", &["report", "/proc/net/fib_trie"]);
    let rep = cx.report_in(&pod, &pcfg, c)?;
    let fib = rep
        .paths
        .get("/proc/net/fib_trie")
        .and_then(|p| p.content.clone())
        .unwrap_or_default();
    check(
        fib.split_whitespace().any(|w| w == ip),
        "cri.RunPodSandbox",
        format!("{ip} among the addresses of the pod's network namespace"),
        format!("/proc/net/fib_trie: {}", fib.chars().take(300).collect::<String>()),
    )
}
