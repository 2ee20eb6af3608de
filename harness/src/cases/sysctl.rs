//! linux.sysctl (config-linux.md, Sysctl): kernel parameters set for the
//! container, in its own namespaces, with the host's values left alone, and
//! an error for a parameter that cannot be set.

use std::collections::HashMap;

use oci_spec::runtime::Spec;

use crate::bundle::SpecExt;
use crate::case::{check_eq, fail, Case, CaseResult, Need, Verdict};
use crate::cases::create::expect_refused;
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "sysctl::net_in_new_netns",
        clauses: &["config-linux.sysctl"],
        needs: &[
            Need::Namespace("net"),
            Need::HostPath("/proc/sys/net/ipv4/ip_forward"),
            Need::HostPath("/proc/sys/net/ipv4/ip_default_ttl"),
        ],
        summary: "net.ipv4.ip_forward and net.ipv4.ip_default_ttl are set in the container's network namespace only",
        run: net_in_new_netns,
    },
    Case {
        id: "sysctl::ipc_in_new_ipcns",
        clauses: &["config-linux.sysctl"],
        needs: &[
            Need::Namespace("ipc"),
            Need::HostPath("/proc/sys/kernel/msgmax"),
            Need::HostPath("/proc/sys/kernel/shmmax"),
        ],
        summary: "kernel.msgmax and kernel.shmmax are set in the container's ipc namespace only",
        run: ipc_in_new_ipcns,
    },
    Case {
        id: "sysctl::unknown_key_error",
        clauses: &["runtime.create.apply-error", "runtime.create.apply-error-no-container"],
        needs: &[Need::Namespace("net")],
        summary: "a sysctl that does not exist is a create error and leaves nothing",
        run: unknown_key_error,
    },
];

fn host_sysctl(key: &str) -> Result<String, Verdict> {
    let p = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| fail("harness", format!("{p} readable"), e))
}

fn with_sysctls(ctx: &Ctx, kv: &[(&str, &str)]) -> Spec {
    let mut spec = ctx.spec();
    let map: HashMap<String, String> = kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    spec.linux_mut_or_default().set_sysctl(Some(map));
    spec
}

/// Sets `kv` in the container, reads them back from inside, and checks the
/// host's values did not change. Each value differs from the kernel's
/// default, so a runtime that ignores `sysctl` is caught.
fn set_and_observe(ctx: &mut Ctx, kv: &[(&str, &str)]) -> CaseResult {
    let before: Vec<String> = kv.iter().map(|(k, _)| host_sysctl(k)).collect::<Result<_, _>>()?;
    let spec = with_sysctls(ctx, kv);
    let items: Vec<String> = kv.iter().map(|(k, _)| format!("sysctl:{k}")).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let r = ctx.report(&spec, &items)?;
    for (k, v) in kv {
        let seen = r
            .sysctls
            .get(*k)
            .cloned()
            .or_else(|| r.sysctl_errors.get(*k).map(|e| format!("unreadable: {e}")));
        check_eq(
            "config-linux.sysctl",
            &format!("{k} in the container"),
            Some(v.to_string()),
            seen,
        )?;
    }
    // The parameters belong to the container's namespaces: the runtime's
    // must keep their values.
    for ((k, _), was) in kv.iter().zip(before) {
        let now = host_sysctl(k)?;
        check_eq("config-linux.sysctl", &format!("{k} on the host"), was, now)?;
    }
    Ok(())
}

fn net_in_new_netns(ctx: &mut Ctx) -> CaseResult {
    // A new network namespace starts with ip_default_ttl 64; ip_forward is
    // the spec's own example.
    set_and_observe(ctx, &[("net.ipv4.ip_forward", "1"), ("net.ipv4.ip_default_ttl", "77")])
}

fn ipc_in_new_ipcns(ctx: &mut Ctx) -> CaseResult {
    // New ipc namespaces start with msgmax 8192 and a huge shmmax.
    set_and_observe(ctx, &[("kernel.msgmax", "12345"), ("kernel.shmmax", "123456789")])
}

fn unknown_key_error(ctx: &mut Ctx) -> CaseResult {
    // In the network namespace's tree, so a runtime that checks which
    // namespace a key belongs to accepts it and must fail to write it.
    let spec = with_sysctls(ctx, &[("net.ipv4.harness_no_such_sysctl", "1")]);
    let b = ctx.bundle(&spec)?;
    expect_refused(
        ctx,
        &b,
        "runtime.create.apply-error",
        "sysctl net.ipv4.harness_no_such_sysctl",
    )
}
