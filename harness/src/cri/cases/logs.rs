//! Container logs: the CRI log format at the path kubelet gives, and
//! ReopenContainerLog.

use cri_api::v1 as api;

use crate::case::{check, check_eq, fail, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::cases::container::wait_for_line;
use crate::cri::ctx::{read_log, stream_text, Ctx};

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "logs::cri_format",
        clauses: &["cri.LogFormat"],
        summary: "stdout and stderr land in log_directory/log_path, one `TIME STREAM F|P TEXT` line each",
        run: cri_format,
    },
    CriCase {
        id: "logs::reopen",
        clauses: &["cri.ReopenContainerLog"],
        summary: "after the log is renamed, ReopenContainerLog makes the container write a new file at the path",
        run: reopen,
    },
    CriCase {
        id: "logs::reopen_not_running",
        clauses: &["cri.ReopenContainerLog"],
        summary: "ReopenContainerLog of a container that is not running is an error",
        run: reopen_not_running,
    },
];

fn cri_format(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("logs")?;
    let out = cx.container_config("out", &["echo", "hello", "log"]);
    let err = cx.container_config("err", &["no-such-command"]);
    let a = cx.run(&pod, &pcfg, &out)?;
    let b = cx.run(&pod, &pcfg, &err)?;
    cx.wait_exit(&a)?;
    cx.wait_exit(&b)?;
    let lines = read_log(&Ctx::log_file(&pcfg, &out)).map_err(|e| fail("cri.LogFormat", "CRI log lines", e))?;
    check_eq(
        "cri.LogFormat",
        "stdout",
        "hello log\n",
        stream_text(&lines, "stdout").as_str(),
    )?;
    check(
        lines.iter().all(|l| l.tag == "F"),
        "cri.LogFormat",
        "short lines tagged F",
        format!("{lines:?}"),
    )?;
    let lines = read_log(&Ctx::log_file(&pcfg, &err)).map_err(|e| fail("cri.LogFormat", "CRI log lines", e))?;
    let e = stream_text(&lines, "stderr");
    check(
        e.contains("unknown command") && stream_text(&lines, "stdout").is_empty(),
        "cri.LogFormat",
        "the usage error as stderr lines",
        format!("{lines:?}"),
    )
}

fn reopen(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("reopen")?;
    let c = cx.container_config("c", &["signals"]);
    let id = cx.run(&pod, &pcfg, &c)?;
    let path = Ctx::log_file(&pcfg, &c);
    wait_for_line(cx, &path, "ready")?;
    let rotated = path.with_extension("log.1");
    std::fs::rename(&path, &rotated).map_err(|e| fail("harness", "to rename the log", e))?;
    let r = cx.c().reopen_container_log(api::ReopenContainerLogRequest {
        container_id: id.clone(),
    });
    cx.ok("ReopenContainerLog", r)?;
    check(
        path.exists(),
        "cri.ReopenContainerLog",
        format!("a new {}", path.display()),
        "no file",
    )?;
    // SIGTERM makes the probe print a line: it must go to the new file.
    let r = cx
        .c()
        .with_deadline(cx.shared.timeout + std::time::Duration::from_secs(1))
        .stop_container(api::StopContainerRequest {
            container_id: id,
            timeout: 1,
        });
    cx.ok("StopContainer", r)?;
    let new = read_log(&path).map_err(|e| fail("cri.ReopenContainerLog", "CRI log lines in the new file", e))?;
    check(
        stream_text(&new, "stdout").lines().any(|l| l == "SIGTERM"),
        "cri.ReopenContainerLog",
        "output after the reopen in the new file",
        format!("{new:?}"),
    )
}

fn reopen_not_running(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("reopen2")?;
    let c = cx.container_config("c", &["true"]);
    let id = cx.run(&pod, &pcfg, &c)?;
    cx.wait_exit(&id)?;
    let r = cx
        .c()
        .reopen_container_log(api::ReopenContainerLogRequest { container_id: id });
    match cx.try_("ReopenContainerLog (exited)", r) {
        Err(_) => Ok(()),
        Ok(_) => Err(fail(
            "cri.ReopenContainerLog",
            "an error for an exited container",
            "success",
        )),
    }
}
