//! ExecSync (output, exit code, timeout), the streaming calls' URLs, and
//! sessions on them: Exec and Attach streams spoken with the cri-api
//! client (stdin, stdout and stderr apart, the exit code on the status
//! channel, a terminal).

use std::time::{Duration, Instant};

use cri_api::streaming::{Event, Output, PortEvent, PortForwardClient, Status, StreamClient, TerminalSize};

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
    CriCase {
        id: "exec::stream_stdin_stdout",
        clauses: &["cri.Exec"],
        summary: "an Exec session carries stdin to the command and its stdout back, and reports success",
        run: stream_stdin_stdout,
    },
    CriCase {
        id: "exec::stream_stderr_exit_code",
        clauses: &["cri.Exec"],
        summary: "an Exec session keeps stderr apart and reports a non-zero exit code on the status channel",
        run: stream_stderr_exit_code,
    },
    CriCase {
        id: "exec::stream_tty",
        clauses: &["cri.Exec"],
        summary: "an Exec session with tty runs the command on a terminal",
        run: stream_tty,
    },
    CriCase {
        id: "exec::attach_stdin_once",
        clauses: &["cri.Attach", "cri.ContainerConfig"],
        summary:
            "Attach to a stdin_once container: what is sent reaches it, its output comes back, closing stdin ends it",
        run: attach_stdin_once,
    },
    CriCase {
        id: "exec::attach_tty",
        clauses: &["cri.Attach", "cri.ContainerConfig"],
        summary: "Attach to a tty container: its terminal echoes input, and leaving does not stop it",
        run: attach_tty,
    },
    CriCase {
        id: "exec::port_forward_data",
        clauses: &["cri.PortForward"],
        summary: "PortForward carries bytes to a port listening in the pod's network and back",
        run: port_forward_data,
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

/// The port the pod's echo server listens on.
const ECHO_PORT: u16 = 8080;

fn port_forward_data(cx: &mut Ctx) -> CaseResult {
    let (pod, pcfg) = cx.pod("pf")?;
    let port = ECHO_PORT.to_string();
    let c = cx.container_config("echo", &["listen", &port]);
    cx.run(&pod, &pcfg, &c)?;
    // Listening once it says so in its log.
    let log = Ctx::log_file(&pcfg, &c);
    let start = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("listening") {
        if start.elapsed() > cx.shared.timeout {
            return Err(fail(
                "cri.PortForward",
                "the echo server's `listening` in its log",
                format!("{} without it", log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = cx.c().port_forward(api::PortForwardRequest {
        pod_sandbox_id: pod,
        port: vec![i32::from(ECHO_PORT)],
    });
    let url = cx.ok("PortForward", r)?.url;
    const SENT: &[u8] = b"through the forwarded port";
    let back = within("cri.PortForward", "a port-forward session", move || {
        let mut pf = PortForwardClient::connect(&url).map_err(|e| format!("{url}: {e}"))?;
        pf.send(0, SENT).map_err(|e| format!("sending: {e}"))?;
        let mut got = Vec::new();
        while got.len() < SENT.len() {
            match pf.next_event().map_err(|e| format!("reading: {e}"))? {
                PortEvent::Data { data, .. } => got.extend(data),
                PortEvent::Error { message, port, .. } => return Err(format!("port {port}: {message}")),
                PortEvent::End => break,
            }
        }
        Ok(got)
    })?;
    check_eq("cri.PortForward", "the bytes echoed back", text(SENT), text(&back))
}

/// How long a streaming session may take before the case fails.
const SESSION: Duration = Duration::from_secs(30);

/// Runs `f` on a thread so a session that never ends fails the case
/// instead of hanging the run (the client has no deadlines of its own).
fn within<T: Send + 'static>(
    clause: &'static str,
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, crate::case::Verdict> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(SESSION) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(fail(clause, format!("{what} to work"), e)),
        Err(_) => Err(fail(
            clause,
            format!("{what} within {}s", SESSION.as_secs()),
            "no end of the session",
        )),
    }
}

/// Connects to `url` and runs the session to its end, sending `stdin`
/// (closed after it only on v5: pass None to v4 sessions that must end).
fn session(
    clause: &'static str,
    what: &str,
    url: String,
    stdin: Option<Vec<u8>>,
) -> Result<Output, crate::case::Verdict> {
    within(clause, what, move || {
        StreamClient::connect(&url)
            .and_then(|c| c.run(stdin))
            .map_err(|e| format!("{url}: {e}"))
    })
}

/// The status channel said Success.
fn success(clause: &str, status: Option<Status>) -> CaseResult {
    check(
        status.as_ref().is_some_and(|s| s.status == Status::success().status),
        clause,
        "a Success status on the status channel",
        format!("{status:?}"),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn exec_url(cx: &mut Ctx, id: &str, cmd: &[&str], tty: bool, stdin: bool) -> Result<String, crate::case::Verdict> {
    let r = cx.c().exec(api::ExecRequest {
        container_id: id.to_string(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    });
    Ok(cx.ok(&format!("Exec {cmd:?}"), r)?.url)
}

/// What an [`echo_session`] saw.
struct Echo {
    protocol: String,
    stdout: String,
    stderr: String,
    /// The status, when stdin could be closed (v5) and the session ended.
    status: Option<Option<Status>>,
}

/// Sends `sent` on stdin and reads until stdout has echoed it; then, when
/// the protocol can say so (v5), closes stdin and reads to the end. v4
/// has no way to end stdin: the client leaves instead.
fn echo_session(
    clause: &'static str,
    what: &str,
    url: String,
    sent: &'static str,
) -> Result<Echo, crate::case::Verdict> {
    within(clause, what, move || {
        let mut c = StreamClient::connect(&url).map_err(|e| format!("{url}: {e}"))?;
        let mut e = Echo {
            protocol: c.protocol().to_string(),
            stdout: String::new(),
            stderr: String::new(),
            status: None,
        };
        c.stdin(sent.as_bytes()).map_err(|e| format!("sending stdin: {e}"))?;
        let mut status = None;
        let mut ended = false;
        while !e.stdout.contains(sent) {
            match c.next_event().map_err(|e| e.to_string())? {
                Event::Stdout(d) => e.stdout.push_str(&text(&d)),
                Event::Stderr(d) => e.stderr.push_str(&text(&d)),
                Event::Status(s) => status = Some(s),
                Event::End => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            return Err(format!(
                "the session ended before the echo: stdout {:?}, stderr {:?}, status {status:?}",
                e.stdout, e.stderr
            ));
        }
        if e.protocol == cri_api::streaming::V5 {
            c.close_stdin().map_err(|e| format!("closing stdin: {e}"))?;
            loop {
                match c.next_event().map_err(|e| e.to_string())? {
                    Event::Stdout(d) => e.stdout.push_str(&text(&d)),
                    Event::Stderr(d) => e.stderr.push_str(&text(&d)),
                    Event::Status(s) => status = Some(s),
                    Event::End => break,
                }
            }
            e.status = Some(status);
        }
        Ok(e)
    })
}

fn stream_stdin_stdout(cx: &mut Ctx) -> CaseResult {
    let (_, id, _) = sleeper(cx, "execstream")?;
    let url = exec_url(cx, &id, &["/probe", "cat"], false, true)?;
    let sent = "one line through exec\nand a second\n";
    let e = echo_session("cri.Exec", "an exec session echoing stdin", url, sent)?;
    cx.note(format!("  exec session protocol {}", e.protocol));
    check_eq("cri.Exec", "stdout", sent, e.stdout.as_str())?;
    check_eq("cri.Exec", "stderr", "", e.stderr.as_str())?;
    match e.status {
        Some(status) => success("cri.Exec", status),
        None => {
            cx.note("  the protocol cannot close stdin: the end of cat is not checked");
            Ok(())
        }
    }
}

fn stream_stderr_exit_code(cx: &mut Ctx) -> CaseResult {
    let (_, id, _) = sleeper(cx, "execstatus")?;
    // An unknown probe command: usage on stderr, exit code 2.
    let url = exec_url(cx, &id, &["/probe", "no-such-command"], false, false)?;
    let out = session("cri.Exec", "an exec session", url, None)?;
    let err = text(&out.stderr);
    check(
        err.contains("unknown command") && out.stdout.is_empty(),
        "cri.Exec",
        "the usage error on stderr only",
        format!("stdout {:?}, stderr {err:?}", text(&out.stdout)),
    )?;
    let status = out.status.unwrap_or_default();
    check_eq("cri.Exec", "status reason", "NonZeroExitCode", status.reason.as_str())?;
    check_eq(
        "cri.Exec",
        "exit code on the status channel",
        Some(2),
        status.exit_code(),
    )?;
    let url = exec_url(cx, &id, &["/probe", "exit", "7"], false, false)?;
    let out = session("cri.Exec", "an exec session", url, None)?;
    check_eq(
        "cri.Exec",
        "exit code of probe exit 7",
        Some(7),
        out.status.and_then(|s| s.exit_code()),
    )
}

fn stream_tty(cx: &mut Ctx) -> CaseResult {
    let (_, id, _) = sleeper(cx, "exectty")?;
    let url = exec_url(cx, &id, &["/probe", "tty"], true, true)?;
    let out = session("cri.Exec", "a tty exec session", url, Some(Vec::new()))?;
    let said = text(&out.stdout);
    check(
        said.contains("\"stdin_tty\":true") && said.contains("\"stdout_tty\":true"),
        "cri.Exec",
        "probe tty to find a terminal on stdin and stdout",
        format!("stdout {said:?}, status {:?}", out.status),
    )?;
    success("cri.Exec", out.status)
}

/// A running `/probe ARGS` container with the given stdio settings.
fn stdio_container(
    cx: &mut Ctx,
    pod_name: &str,
    args: &[&str],
    tty: bool,
    stdin_once: bool,
) -> Result<String, crate::case::Verdict> {
    let (pod, pcfg) = cx.pod(pod_name)?;
    let mut c = cx.container_config("c", args);
    c.stdin = true;
    c.stdin_once = stdin_once;
    c.tty = tty;
    cx.run(&pod, &pcfg, &c)
}

fn attach_url(cx: &mut Ctx, id: &str, tty: bool) -> Result<String, crate::case::Verdict> {
    let r = cx.c().attach(api::AttachRequest {
        container_id: id.to_string(),
        stdin: true,
        tty,
        stdout: true,
        stderr: !tty,
    });
    Ok(cx.ok("Attach", r)?.url)
}

fn attach_stdin_once(cx: &mut Ctx) -> CaseResult {
    let id = stdio_container(cx, "attachcat", &["cat"], false, true)?;
    let url = attach_url(cx, &id, false)?;
    let sent = "sent through attach\n";
    // Closing stdin (v5) or leaving (v4) ends the container's stdin.
    let e = echo_session("cri.Attach", "an attach session echoing stdin", url, sent)?;
    cx.note(format!("  attach session protocol {}", e.protocol));
    check_eq("cri.Attach", "stdout", sent, e.stdout.as_str())?;
    // The session's status is the endpoint's business (kubelet reports an
    // attach that ended as success); it is logged, not judged.
    cx.note(format!("  attach status: {:?}", e.status));
    let st = cx.wait_exit(&id)?;
    check_eq(
        "cri.ContainerConfig",
        "exit code of cat once stdin_once's stdin closed",
        0,
        st.exit_code,
    )
}

fn attach_tty(cx: &mut Ctx) -> CaseResult {
    let id = stdio_container(cx, "attachtty", &["cat"], true, false)?;
    let url = attach_url(cx, &id, true)?;
    let seen = within("cri.Attach", "the terminal's echo of a line", move || {
        let mut c = StreamClient::connect(&url).map_err(|e| format!("{url}: {e}"))?;
        let send = |c: &StreamClient| {
            c.resize(TerminalSize { width: 100, height: 40 })?;
            c.stdin(b"typed\n")
        };
        send(&c).map_err(|e| format!("sending: {e}"))?;
        let mut out = String::new();
        // The line discipline echoes the line, then cat writes it back.
        while out.matches("typed").count() < 2 {
            match c.next_event() {
                Ok(Event::Stdout(d)) => out.push_str(&text(&d)),
                Ok(Event::Stderr(d)) => return Err(format!("stderr {:?} on a terminal", text(&d))),
                other => return Err(format!("the session ended ({other:?}) after {out:?}")),
            }
        }
        Ok(out)
    })?;
    check(
        seen.contains("typed\r\n"),
        "cri.Attach",
        "a terminal's output (CR LF line ends)",
        format!("{seen:?}"),
    )?;
    // The client left (its connection dropped with the thread): without
    // stdin_once the container keeps running.
    std::thread::sleep(Duration::from_millis(300));
    let st = cx.container_status(&id)?;
    check_eq(
        "cri.Attach",
        "the container's state after the client left",
        api::ContainerState::ContainerRunning as i32,
        st.state,
    )
}
