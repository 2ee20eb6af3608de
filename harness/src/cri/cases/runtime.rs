//! Runtime info: Version and Status.

use cri_api::v1 as api;

use crate::case::{check, fail, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::ctx::Ctx;

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "runtime::version",
        clauses: &["cri.Version"],
        summary: "Version names the runtime and its version, and speaks CRI v1",
        run: version,
    },
    CriCase {
        id: "runtime::status_conditions",
        clauses: &["cri.Status"],
        summary: "Status reports RuntimeReady (true) and NetworkReady conditions",
        run: status_conditions,
    },
    CriCase {
        id: "runtime::network_ready",
        clauses: &["cri.Status"],
        summary: "Status says NetworkReady, so that pods without host networking can run",
        run: network_ready,
    },
];

fn version(cx: &mut Ctx) -> CaseResult {
    let r = cx.c().version(api::VersionRequest {
        version: cri_api::API_VERSION.into(),
    });
    let v = cx.ok("Version", r)?;
    check(
        !v.runtime_name.is_empty() && !v.runtime_version.is_empty(),
        "cri.Version",
        "runtime_name and runtime_version set",
        format!("{:?} {:?}", v.runtime_name, v.runtime_version),
    )?;
    check(
        v.runtime_api_version.starts_with("v1"),
        "cri.Version",
        "runtime_api_version v1",
        format!("{:?}", v.runtime_api_version),
    )
}

fn status(cx: &mut Ctx) -> Result<Vec<api::RuntimeCondition>, crate::case::Verdict> {
    let r = cx.c().status(api::StatusRequest { verbose: false });
    let s = cx.ok("Status", r)?;
    Ok(s.status.map(|s| s.conditions).unwrap_or_default())
}

fn status_conditions(cx: &mut Ctx) -> CaseResult {
    let conds = status(cx)?;
    let find = |t: &str| conds.iter().find(|c| c.r#type == t);
    let Some(rt) = find("RuntimeReady") else {
        return Err(fail("cri.Status", "a RuntimeReady condition", format!("{conds:?}")));
    };
    check(
        rt.status,
        "cri.Status",
        "RuntimeReady true",
        format!("false: {} {}", rt.reason, rt.message),
    )?;
    check(
        find("NetworkReady").is_some(),
        "cri.Status",
        "a NetworkReady condition",
        format!("{conds:?}"),
    )
}

fn network_ready(cx: &mut Ctx) -> CaseResult {
    let conds = status(cx)?;
    match conds.iter().find(|c| c.r#type == "NetworkReady") {
        Some(c) => check(
            c.status,
            "cri.Status",
            "NetworkReady true",
            format!("false: {} {}", c.reason, c.message),
        ),
        None => Err(fail("cri.Status", "a NetworkReady condition", format!("{conds:?}"))),
    }
}
