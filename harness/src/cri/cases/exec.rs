//! ExecSync (output, exit code, timeout) and the streaming calls' URLs.

use std::time::{Duration, Instant};

use cri_api::v1 as api;

use crate::case::{check, check_eq, fail, CaseResult};
use crate::cri::case::CriCase;
use crate::cri::ctx::{call_failed, Ctx};

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "exec::sync_output_exit_code",
        clauses: &["cri.ExecSync"],
        summary: "ExecSync returns stdout, stderr and the exit code, each kept apart",
        run: sync_output_exit_code,
    },
    CriCase {
        id: "exec::sync_timeout",
        clauses: &["cri.ExecSync"],
        summary: "ExecSync of a command outliving its timeout ends with DeadlineExceeded",
        run: sync_timeout,
    },
    CriCase {
        id: "exec::sync_in_container",
        clauses: &["cri.ExecSync", "cri.NamespaceOption"],
        summary: "an exec'd process is in the container's namespaces",
        run: sync_in_container,
    },
    CriCase {
        id: "exec::sync_exited_container",
        clauses: &["cri.ExecSync"],
        summary: "ExecSync in an exited container is an error",
        run: sync_exited_container,
    },
    CriCase {
        id: "exec::streaming_urls",
        clauses: &["cri.Exec", "cri.Attach", "cri.PortForward"],
        summary: "Exec, Attach and PortForward return an http(s) URL of a streaming server",
        run: streaming_urls,
    },
];

fn sleeper(cx: &mut Ctx, name: &str) -> Result<(String, String, api::PodSandboxConfig), crate::case::Verdict> {
    let (pod, pcfg) = cx.pod(name)?;
    let c = cx.container_config("c", &["sleep", "inf"]);
    let id = cx.run(&pod, &pcfg, &c)?;
    Ok((pod, id, pcfg))
}

fn sync_output_exit_code(cx: &mut Ctx) -> CaseResult {
    let (_, id, _) = sleeper(cx, "exec")?;
    let r = cx
        .exec(&id, &["/probe", "echo", "hello", "world"], 0)
        .map_err(|e| call_failed(&e))?;
    check_eq(
        "cri.ExecSync",
        "stdout",
        "hello world\n",
        &*String::from_utf8_lossy(&r.stdout),
    )?;
    check_eq("cri.ExecSync", "stderr", "", &*String::from_utf8_lossy(&r.stderr))?;
    check_eq("cri.ExecSync", "exit code", 0, r.exit_code)?;
    let r = cx.exec(&id, &["/probe", "exit", "7"], 0).map_err(|e| call_failed(&e))?;
    check_eq("cri.ExecSync", "exit code of probe exit 7", 7, r.exit_code)?;
    // An unknown probe command prints its usage on stderr and exits 2.
    let r = cx
        .exec(&id, &["/probe", "no-such-command"], 0)
        .map_err(|e| call_failed(&e))?;
    check_eq("cri.ExecSync", "exit code of a usage error", 2, r.exit_code)?;
    let err = String::from_utf8_lossy(&r.stderr);
    check(
        err.contains("unknown command") && r.stdout.is_empty(),
        "cri.ExecSync",
        "the usage error on stderr only",
        format!("stdout {:?}, stderr {:?}", String::from_utf8_lossy(&r.stdout), err),
    )
}

fn sync_timeout(cx: &mut Ctx) -> CaseResult {
    let (_, id, _) = sleeper(cx, "exectimeout")?;
    let start = Instant::now();
    let r = cx.exec(&id, &["/probe", "sleep", "60"], 1);
    let took = start.elapsed();
    match r {
        Err(e)
            if e.code() == tonic::Code::DeadlineExceeded
                && !matches!(e, crate::cri::client::CallError::Timeout { .. }) =>
        {
            check(
                took < Duration::from_secs(30),
                "cri.ExecSync",
                "the call to end soon after its 1s timeout",
                format!("{:.1}s", took.as_secs_f64()),
            )
        }
        Err(e) => Err(fail("cri.ExecSync", "DeadlineExceeded from the endpoint after 1s", e)),
        Ok(r) => Err(fail(
            "cri.ExecSync",
            "DeadlineExceeded after 1s",
            format!("a response after {:.1}s, exit code {}", took.as_secs_f64(), r.exit_code),
        )),
    }
}

fn sync_in_container(cx: &mut Ctx) -> CaseResult {
    let (_, id, _) = sleeper(cx, "execns")?;
    let rep = cx.exec_report(&id)?;
    let host = crate::cri::cases::host_namespaces();
    for ns in ["mnt", "pid"] {
        check(
            rep.namespaces.contains_key(ns) && rep.namespaces.get(ns) != host.get(ns),
            "cri.ExecSync",
            format!("the exec'd process in the container's {ns} namespace, not the host's"),
            format!("{:?} (host {:?})", rep.namespaces.get(ns), host.get(ns)),
        )?;
    }
    // PID 1 of the container is the probe sleeping: the exec'd process sees it.
    check(
        rep.pid != 1,
        "cri.ExecSync",
        "the exec'd process beside the container's init",
        format!("pid {}", rep.pid),
    )
}

fn sync_exited_container(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("execexited")?;
    let c = cx.container_config("c", &["true"]);
    let id = cx.run(&pod, &pcfg, &c)?;
    cx.wait_exit(&id)?;
    match cx.exec(&id, &["/probe", "true"], 0) {
        Err(_) => Ok(()),
        Ok(r) => Err(fail(
            "cri.ExecSync",
            "an error: the container is not running",
            format!("exit code {}", r.exit_code),
        )),
    }
}

fn url_ok(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://")) && u.len() > "http://".len() + 2
}

fn streaming_urls(cx: &mut Ctx) -> CaseResult {
    let (pod, id, _) = sleeper(cx, "stream")?;
    let r = cx.c().exec(api::ExecRequest {
        container_id: id.clone(),
        cmd: vec!["/probe".into(), "true".into()],
        stdout: true,
        ..Default::default()
    });
    let e = cx.ok("Exec", r)?;
    check(url_ok(&e.url), "cri.Exec", "an http(s) URL", format!("{:?}", e.url))?;
    let r = cx.c().attach(api::AttachRequest {
        container_id: id,
        stdout: true,
        ..Default::default()
    });
    let a = cx.ok("Attach", r)?;
    check(url_ok(&a.url), "cri.Attach", "an http(s) URL", format!("{:?}", a.url))?;
    let r = cx.c().port_forward(api::PortForwardRequest {
        pod_sandbox_id: pod,
        port: vec![80],
    });
    let p = cx.ok("PortForward", r)?;
    check(
        url_ok(&p.url),
        "cri.PortForward",
        "an http(s) URL",
        format!("{:?}", p.url),
    )
}
