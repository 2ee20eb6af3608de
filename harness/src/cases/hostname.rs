//! Hostname and domainname (config.md, Hostname and Domainname): set in the
//! container's UTS namespace, seen by the process, and never leaking into the
//! host's.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxNamespaceType;

use crate::bundle::SpecExt;
use crate::case::{check, check_eq, fail, Case, CaseResult, Need, Verdict};
use crate::ctx::Ctx;
use crate::runtime::CreateOpts;

pub const CASES: &[Case] = &[
    Case {
        id: "hostname::hostname_set",
        clauses: &["config.hostname"],
        needs: &[Need::Namespace("uts")],
        summary: "the process sees config hostname in its new uts namespace",
        run: hostname_set,
    },
    Case {
        id: "hostname::domainname_set",
        clauses: &["config.domainname", "config.hostname"],
        needs: &[Need::Namespace("uts")],
        summary: "the process sees config domainname (and the hostname beside it)",
        run: domainname_set,
    },
    Case {
        id: "hostname::host_unchanged",
        clauses: &["config-linux.namespaces.uts", "config.hostname", "config.domainname"],
        needs: &[Need::Namespace("uts")],
        summary: "while a container with its own hostname and domainname runs, the host's are unchanged",
        run: host_unchanged,
    },
    Case {
        id: "hostname::joined_uts_namespace",
        clauses: &["config.hostname", "config-linux.namespaces.path-join"],
        needs: &[Need::Namespace("uts"), Need::Unchanged("host-namespaces")],
        summary: "with a uts namespace given by path the hostname is set in that namespace, not the host's",
        run: joined_uts_namespace,
    },
    Case {
        id: "hostname::without_uts_namespace",
        clauses: &[
            "config.hostname",
            "runtime.create.apply-error-no-container",
            "runtime.errors.no-side-effects",
        ],
        needs: &[Need::Namespace("uts")],
        summary: "hostname without a uts namespace is applied to the shared namespace or refused leaving nothing",
        run: without_uts_namespace,
    },
];

fn read_host(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn hostname_set(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_hostname(Some("conform-host-1".to_string()));
    let r = ctx.report(&spec, &[])?;
    check_eq("config.hostname", "hostname", "conform-host-1", r.hostname.as_str())
}

fn domainname_set(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.set_hostname(Some("conform-host-2".to_string()));
    spec.set_domainname(Some("conform.example.test".to_string()));
    let r = ctx.report(&spec, &[])?;
    check_eq(
        "config.domainname",
        "domainname",
        "conform.example.test",
        r.domainname.as_str(),
    )?;
    check_eq("config.hostname", "hostname", "conform-host-2", r.hostname.as_str())
}

fn host_unchanged(ctx: &mut Ctx) -> CaseResult {
    let (host, domain) = (read_host("hostname"), read_host("domainname"));
    let mut spec = ctx.spec();
    spec.set_hostname(Some("conform-host-3".to_string()));
    spec.set_domainname(Some("conform3.example.test".to_string()));
    spec.set_args(&["/probe", "sleep", "inf"]);
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    check_eq(
        "config-linux.namespaces.uts",
        "the host's hostname while the container runs",
        host.as_str(),
        read_host("hostname").as_str(),
    )?;
    check_eq(
        "config-linux.namespaces.uts",
        "the host's domainname while the container runs",
        domain.as_str(),
        read_host("domainname").as_str(),
    )
}

/// The inode of a namespace file.
fn ns_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Starts `unshare --uts sleep 60` and waits until it holds a uts
/// namespace of its own; returns its pid.
fn uts_holder(ctx: &mut Ctx) -> Result<u32, Verdict> {
    let host = ns_inode(Path::new("/proc/self/ns/uts"))
        .ok_or_else(|| fail("harness", "/proc/self/ns/uts readable", "it is not"))?;
    let pid = ctx.spawn_helper(Command::new("unshare").args(["--uts", "sleep", "60"]))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(ino) = ns_inode(Path::new(&format!("/proc/{pid}/ns/uts"))) {
            if ino != host {
                return Ok(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(fail(
        "harness",
        "the uts namespace holder to unshare",
        format!("pid {pid} still in the host's uts namespace"),
    ))
}

fn joined_uts_namespace(ctx: &mut Ctx) -> CaseResult {
    let host = read_host("hostname");
    let holder = uts_holder(ctx)?;
    let path = format!("/proc/{holder}/ns/uts");
    let ino = ns_inode(Path::new(&path)).ok_or_else(|| fail("harness", format!("{path} readable"), "it is not"))?;
    let mut spec = ctx.spec();
    spec.set_namespace(LinuxNamespaceType::Uts, Some(Path::new(&path)));
    spec.set_hostname(Some("conform-joined".to_string()));
    let r = ctx.report(&spec, &[])?;
    // The probe reads /proc/self/ns/uts; a runtime whose sandbox has no
    // such file is judged by the host-side check below alone.
    if let Some(seen) = r.namespaces.get("uts").copied() {
        check_eq("config-linux.namespaces.path-join", "uts namespace inode", ino, seen)?;
    }
    check_eq("config.hostname", "hostname", "conform-joined", r.hostname.as_str())?;
    // From the host: the name was set in the namespace at the path, so the
    // holder now carries it.
    let out = crate::reaper::output(Command::new("nsenter").args([
        "--uts=".to_string() + &path,
        "cat".into(),
        "/proc/sys/kernel/hostname".into(),
    ]))
    .map_err(|e| fail("harness", "to run nsenter", e))?;
    check(
        out.status.success(),
        "harness",
        "nsenter into the holder's uts namespace",
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )?;
    check_eq(
        "config-linux.namespaces.path-join",
        "hostname of the namespace at the path",
        "conform-joined",
        String::from_utf8_lossy(&out.stdout).trim(),
    )?;
    check_eq(
        "config.hostname",
        "the host's hostname",
        host.as_str(),
        read_host("hostname").as_str(),
    )
}

fn without_uts_namespace(ctx: &mut Ctx) -> CaseResult {
    // config.md (v1.3.0): "Depending on your namespace configuration, the
    // container UTS namespace may be the runtime UTS namespace": a hostname
    // without a uts namespace of its own is not an error by the spec (runc
    // refuses it all the same). Both answers are judged: a refusal must
    // leave nothing, an acceptance must show the hostname. The hostname
    // asked for is the host's own, so that accepting it cannot rename the
    // host under the other cases.
    let host = read_host("hostname");
    ctx.require(!host.is_empty(), "the host's hostname")?;
    let mut spec = ctx.spec();
    spec.remove_namespace(LinuxNamespaceType::Uts);
    spec.set_hostname(Some(host.clone()));
    spec.set_args(&["/probe", "report"]);
    let b = ctx.bundle(&spec)?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        ctx.note(format!("create refused: {}", out.reason()));
        return crate::cases::create::expect_no_container(ctx, &id);
    }
    let start = ctx.start_raw(&id)?;
    check(
        start.status.success(),
        "config.hostname",
        "start to succeed after create accepted the config",
        format!("start: {}: {}", start.status, start.reason()),
    )?;
    if !io.wait_eof(ctx.shared.timeout) {
        return Err(fail("config.hostname", "the process to exit", "it is still running"));
    }
    let r = crate::ctx::parse_report(&io.stdout())
        .map_err(|e| fail("config.hostname", "the probe to print its report", e))?;
    check_eq("config.hostname", "hostname", host.as_str(), r.hostname.as_str())
}
