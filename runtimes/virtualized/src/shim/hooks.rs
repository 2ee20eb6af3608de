//! The hooks a VM runtime runs on the host. The runtime namespace of a VM
//! runtime is the host's: prestart, createRuntime, poststart and poststop
//! hooks resolve their paths and run there, with the container library's
//! runner (the state on stdin as `state` prints it, args and env as given,
//! the timeout), at the points of runtime.md's lifecycle: prestart and
//! createRuntime in the shim during create, once the VM is up and before
//! the agent creates the container; poststart in `start` once the program
//! was executed; poststop in `delete`. createContainer and startContainer
//! hooks run in the container's namespaces, in the guest, by the native
//! runtime there (the guest's config holds only them: see
//! `vm::initramfs::rewrite_config`); what they write stays in the guest.

use container::hooks::{self, Error};
use oci_spec::runtime::{Hook, Hooks};
use serde_json::Value;

/// The hooks of one host-side kind (a name of `vm::initramfs::HOST_HOOKS`).
fn of(all: &Hooks, kind: &str) -> Vec<Hook> {
    let list = match kind {
        "prestart" => all.prestart(),
        "createRuntime" => all.create_runtime(),
        "poststart" => all.poststart(),
        "poststop" => all.poststop(),
        _ => &None,
    };
    list.clone().unwrap_or_default()
}

/// During create, once the VM is up and before the guest creates the
/// container: prestart, then createRuntime, stopping at the first failure
/// (which fails create).
pub fn create(all: &Hooks, state: &Value) -> Result<(), Error> {
    hooks::run_all("prestart", &of(all, "prestart"), state)?;
    hooks::run_all("createRuntime", &of(all, "createRuntime"), state)
}

/// After start has had the program executed; a failure fails start, and
/// the caller stops the container.
pub fn poststart(all: &Hooks, state: &Value) -> Result<(), Error> {
    hooks::run_all("poststart", &of(all, "poststart"), state)
}

/// When the container is deleted: every hook runs, failures are warnings.
pub fn poststop(all: &Hooks, state: &Value) -> Vec<Error> {
    hooks::run_all_warn("poststop", &of(all, "poststop"), state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::initramfs::HOST_HOOKS;

    fn hooks(json: Value) -> Hooks {
        serde_json::from_value(json).unwrap()
    }

    /// A hook that appends its label and the state's status to `out`.
    fn rec(out: &std::path::Path, label: &str, ok: bool) -> Value {
        let tail = if ok { "" } else { "; exit 1" };
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo {label} $(grep -o '\"status\":\"[a-z]*\"') >> {}{tail}", out.display())]
        })
    }

    #[test]
    fn every_host_kind_is_known() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let mut all = serde_json::Map::new();
        for k in HOST_HOOKS {
            all.insert(k.into(), serde_json::json!([rec(&out, k, true)]));
        }
        let all = hooks(Value::Object(all));
        for k in HOST_HOOKS {
            assert_eq!(of(&all, k).len(), 1, "{k}");
        }
        assert!(of(&all, "createContainer").is_empty());
    }

    #[test]
    fn create_runs_prestart_then_create_runtime_and_stops_at_a_failure() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let state = serde_json::json!({"id": "c", "status": "creating"});
        let all = hooks(serde_json::json!({
            "prestart": [rec(&out, "p1", true), rec(&out, "p2", true)],
            "createRuntime": [rec(&out, "cr", true)],
        }));
        create(&all, &state).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "p1 \"status\":\"creating\"\np2 \"status\":\"creating\"\ncr \"status\":\"creating\"\n"
        );
        std::fs::remove_file(&out).unwrap();
        let all = hooks(serde_json::json!({
            "prestart": [rec(&out, "p1", false)],
            "createRuntime": [rec(&out, "cr", true)],
        }));
        let e = create(&all, &state).unwrap_err().to_string();
        assert!(e.contains("hooks.prestart[0] (/bin/sh)"), "{e}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "p1 \"status\":\"creating\"\n");
    }

    #[test]
    fn poststop_failures_are_collected_and_the_rest_run() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let all = hooks(serde_json::json!({
            "poststop": [rec(&out, "a", false), rec(&out, "b", true)],
        }));
        let errs = poststop(&all, &serde_json::json!({"status": "stopped"}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("hooks.poststop[0]"));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "a \"status\":\"stopped\"\nb \"status\":\"stopped\"\n"
        );
    }
}
