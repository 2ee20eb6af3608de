//! The `features` document (features.md, features-linux.md). Providing it is
//! optional; a runtime that has the command must keep to its format.

use serde_json::Value;

use crate::case::{check, skip, Case, CaseResult, Verdict};
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    Case {
        id: "features::oci_versions",
        clauses: &[
            "features.oci-version-min",
            "features.oci-version-max",
            "features.oci-version-max.not-less",
        ],
        needs: &[],
        summary: "ociVersionMin and ociVersionMax are SemVer and min <= max",
        run: oci_versions,
    },
    Case {
        id: "features::known_properties",
        clauses: &["features.no-undefined-properties"],
        needs: &[],
        summary: "the document has only the properties features.md defines",
        run: known_properties,
    },
    Case {
        id: "features::hooks",
        clauses: &["features.hooks"],
        needs: &[],
        summary: "hooks lists only the spec's hook kinds",
        run: hooks,
    },
    Case {
        id: "features::mount_options",
        clauses: &["features.mount-options", "features.mount-options.no-fs-specific"],
        needs: &[],
        summary: "mountOptions holds generic options, not filesystem-specific ones",
        run: mount_options,
    },
    Case {
        id: "features::linux_namespaces",
        clauses: &["features-linux.namespaces"],
        needs: &[],
        summary: "linux.namespaces lists namespace types the spec defines",
        run: linux_namespaces,
    },
    Case {
        id: "features::linux_capabilities",
        clauses: &["features-linux.capabilities"],
        needs: &[],
        summary: "linux.capabilities lists CAP_ names",
        run: linux_capabilities,
    },
    Case {
        id: "features::linux_seccomp",
        clauses: &[
            "features-linux.seccomp.actions",
            "features-linux.seccomp.operators",
            "features-linux.seccomp.archs",
        ],
        needs: &[],
        summary: "linux.seccomp actions, operators and archs are values the spec defines",
        run: linux_seccomp,
    },
];

fn document(ctx: &mut Ctx) -> Result<Value, Verdict> {
    let out = ctx.exec("features", &[])?;
    if !out.status.success() {
        return Err(skip(format!("the runtime has no features command ({})", out.reason())));
    }
    serde_json::from_str(&out.stdout).map_err(|e| {
        crate::case::fail(
            "features.provide",
            "features output to be JSON",
            format!("{e}: {:?}", crate::ctx::tail(&out.stdout, 200)),
        )
    })
}

/// (major, minor, patch) of a SemVer string, ignoring pre-release and build
/// for ordering (enough to compare 1.0.0 with 1.0.2-dev).
fn semver(v: &str) -> Option<(u64, u64, u64, bool)> {
    let core = v.split('+').next()?;
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, !p.is_empty()),
        None => (core, false),
    };
    let mut it = core.split('.');
    let n = |s: Option<&str>| s.and_then(|x| x.parse::<u64>().ok());
    let r = (n(it.next())?, n(it.next())?, n(it.next())?, pre);
    it.next().is_none().then_some(r)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn oci_versions(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    let min = doc.get("ociVersionMin").and_then(Value::as_str).unwrap_or("");
    let max = doc.get("ociVersionMax").and_then(Value::as_str).unwrap_or("");
    let (pmin, pmax) = (semver(min), semver(max));
    check(
        pmin.is_some(),
        "features.oci-version-min",
        "ociVersionMin as SemVer",
        format!("{min:?}"),
    )?;
    check(
        pmax.is_some(),
        "features.oci-version-max",
        "ociVersionMax as SemVer",
        format!("{max:?}"),
    )?;
    let (a, b) = (pmin.unwrap_or_default(), pmax.unwrap_or_default());
    check(
        (a.0, a.1, a.2) <= (b.0, b.1, b.2),
        "features.oci-version-max.not-less",
        "ociVersionMax >= ociVersionMin",
        format!("min {min}, max {max}"),
    )
}

fn known_properties(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    let known = [
        "ociVersionMin",
        "ociVersionMax",
        "hooks",
        "mountOptions",
        "linux",
        "annotations",
        "potentiallyUnsafeConfigAnnotations",
    ];
    let extra: Vec<String> = doc
        .as_object()
        .map(|o| o.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect())
        .unwrap_or_default();
    check(
        extra.is_empty(),
        "features.no-undefined-properties",
        "no properties beyond features.md",
        extra.join(", "),
    )
}

fn hooks(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    let kinds = crate::cases::hooks::ALL_KINDS;
    let odd: Vec<String> = strings(doc.get("hooks"))
        .into_iter()
        .filter(|h| !kinds.contains(&h.as_str()))
        .collect();
    check(
        odd.is_empty(),
        "features.hooks",
        "only the spec's hook kinds",
        odd.join(", "),
    )
}

fn mount_options(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    // Options that belong to one filesystem (tmpfs, overlay...), which the
    // spec says the list must not carry.
    let fs_specific = [
        "size",
        "mode",
        "uid",
        "gid",
        "nr_inodes",
        "lowerdir",
        "upperdir",
        "workdir",
        "data",
    ];
    let opts = strings(doc.get("mountOptions"));
    let bad: Vec<&String> = opts
        .iter()
        .filter(|o| fs_specific.contains(&o.split('=').next().unwrap_or(o)))
        .collect();
    check(
        bad.is_empty(),
        "features.mount-options.no-fs-specific",
        "no filesystem-specific options",
        format!("{bad:?}"),
    )
}

fn linux_namespaces(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    let known = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];
    let odd: Vec<String> = strings(doc.pointer("/linux/namespaces"))
        .into_iter()
        .filter(|n| !known.contains(&n.as_str()))
        .collect();
    check(
        odd.is_empty(),
        "features-linux.namespaces",
        "only spec namespace types",
        odd.join(", "),
    )
}

fn linux_capabilities(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    let odd: Vec<String> = strings(doc.pointer("/linux/capabilities"))
        .into_iter()
        .filter(|c| !(c.starts_with("CAP_") && c[4..].chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')))
        .collect();
    check(
        odd.is_empty(),
        "features-linux.capabilities",
        "CAP_ names only",
        odd.join(", "),
    )
}

fn linux_seccomp(ctx: &mut Ctx) -> CaseResult {
    let doc = document(ctx)?;
    let actions = strings(doc.pointer("/linux/seccomp/actions"));
    let bad: Vec<&String> = actions.iter().filter(|a| !a.starts_with("SCMP_ACT_")).collect();
    check(
        bad.is_empty(),
        "features-linux.seccomp.actions",
        "SCMP_ACT_ values",
        format!("{bad:?}"),
    )?;
    let ops = strings(doc.pointer("/linux/seccomp/operators"));
    let bad: Vec<&String> = ops.iter().filter(|a| !a.starts_with("SCMP_CMP_")).collect();
    check(
        bad.is_empty(),
        "features-linux.seccomp.operators",
        "SCMP_CMP_ values",
        format!("{bad:?}"),
    )?;
    let archs = strings(doc.pointer("/linux/seccomp/archs"));
    let bad: Vec<&String> = archs.iter().filter(|a| !a.starts_with("SCMP_ARCH_")).collect();
    check(
        bad.is_empty(),
        "features-linux.seccomp.archs",
        "SCMP_ARCH_ values",
        format!("{bad:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_orders_dev_versions() {
        assert_eq!(semver("1.0.2-dev"), Some((1, 0, 2, true)));
        assert_eq!(semver("1.2.0"), Some((1, 2, 0, false)));
        assert_eq!(semver("1.2"), None);
        assert_eq!(semver("x.y.z"), None);
    }
}
