//! The process (config.md, Process, POSIX process, Linux Process and
//! POSIX-platform User): argv, environment, working directory, user and
//! groups, umask, no_new_privs, oom_score_adj, rlimits, capabilities and the
//! terminal, each observed from inside the container by the probe.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{BoxBuilder, LinuxCapabilities, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec};
use serde_json::{json, Value};

use crate::bundle::{Bundle, SpecExt, PROBE};
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Need, Verdict};
use crate::cases::create::expect_refused;
use crate::ctx::{parse_report, tail, Ctx};
use crate::runtime::CreateOpts;
use crate::unix::{recv_with_fds, OneShotListener};

pub const CASES: &[Case] = &[
    Case {
        id: "process::args_exact",
        clauses: &["config.process.args"],
        needs: &[],
        summary: "argv is process.args exactly, including empty and space-holding entries",
        run: args_exact,
    },
    Case {
        id: "process::args_path_lookup",
        clauses: &["config.process.args-file", "config.process.args"],
        needs: &[],
        summary: "a bare args[0] is found through the PATH of process.env and kept as argv[0]",
        run: args_path_lookup,
    },
    Case {
        id: "process::args_missing_error",
        clauses: &["config.process.args-required", "runtime.create.apply-error"],
        needs: &[],
        summary: "a process without args (absent or empty) makes create or start fail",
        run: args_missing_error,
    },
    Case {
        id: "process::env_exact",
        clauses: &["config.process.env"],
        needs: &[],
        summary: "the environment is exactly process.env (empty values, '=' in values, spaces)",
        run: env_exact,
    },
    Case {
        id: "process::cwd_existing",
        clauses: &["config.process.cwd"],
        needs: &[],
        summary: "the process starts in process.cwd, a directory of the rootfs with a space in its name",
        run: cwd_existing,
    },
    Case {
        id: "process::cwd_missing",
        clauses: &["config.process.cwd", "runtime.create.apply-error-no-container"],
        needs: &[],
        summary: "a cwd missing from the rootfs is either created and used or refused cleanly, never ignored",
        run: cwd_missing,
    },
    Case {
        id: "process::user_uid_gid",
        clauses: &[
            "config.process.user-uid",
            "config.process.user-gid",
            "config.process.additional-gids",
        ],
        needs: &[],
        summary: "uid and gid 1000:1000 apply (real and effective) without /etc/passwd, with no extra groups",
        run: user_uid_gid,
    },
    Case {
        id: "process::user_root_other_gid",
        clauses: &["config.process.user-gid", "config.process.user-uid"],
        needs: &[],
        summary: "uid 0 with gid 1234 runs with gid 1234: the gid is not derived from the uid",
        run: user_root_other_gid,
    },
    Case {
        id: "process::additional_gids",
        clauses: &["config.process.additional-gids", "config.process.user-gid"],
        needs: &[],
        summary: "getgroups returns exactly additionalGids (plus the gid, which POSIX allows)",
        run: additional_gids,
    },
    Case {
        id: "process::umask_set",
        clauses: &["config.process.umask"],
        needs: &[],
        summary: "user.umask 0o027 is the process's umask",
        run: umask_set,
    },
    Case {
        id: "process::umask_unset",
        clauses: &["config.process.umask-unset"],
        needs: &[],
        summary: "without user.umask the process has the umask of the caller of the runtime",
        run: umask_unset,
    },
    Case {
        id: "process::no_new_privileges_true",
        clauses: &["config.process.no-new-privileges"],
        needs: &[],
        summary: "noNewPrivileges true sets no_new_privs",
        run: no_new_privileges_true,
    },
    Case {
        id: "process::no_new_privileges_false",
        clauses: &["config.process.no-new-privileges"],
        needs: &[],
        summary: "noNewPrivileges false leaves no_new_privs clear (the flag follows the field)",
        run: no_new_privileges_false,
    },
    Case {
        id: "process::oom_score_adj_set",
        clauses: &["config.process.oom-score-adj"],
        needs: &[Need::Unchanged("host-pid")],
        summary: "oomScoreAdj above the harness's own is the process's oom_score_adj, inside and from the host",
        run: oom_score_adj_set,
    },
    Case {
        id: "process::oom_score_adj_unset",
        clauses: &["config.process.oom-score-adj-unset"],
        needs: &[],
        summary: "without oomScoreAdj the process keeps the oom_score_adj of the caller of the runtime",
        run: oom_score_adj_unset,
    },
    Case {
        id: "process::rlimits_applied",
        clauses: &[
            "config.process.rlimits-soft",
            "config.process.rlimits-hard",
            "config.process.rlimits-getrlimit",
        ],
        needs: &[],
        summary: "RLIMIT_NOFILE 512/1024 and RLIMIT_CORE 0/0 are the process's soft and hard limits",
        run: rlimits_applied,
    },
    Case {
        id: "process::rlimits_above_caller",
        clauses: &[
            "runtime.create.apply-error",
            "runtime.create.apply-error-no-container",
            "runtime.errors.no-side-effects",
            "config.process.rlimits-hard",
        ],
        needs: &[],
        summary: "a hard rlimit above the caller's is applied, or (without CAP_SYS_RESOURCE) refused leaving nothing",
        run: rlimits_above_caller,
    },
    Case {
        id: "process::rlimits_invalid_type_error",
        clauses: &[
            "config.process.rlimits-invalid-error",
            "runtime.create.apply-error-no-container",
            "runtime.errors.no-side-effects",
        ],
        needs: &[],
        summary: "an rlimit type that maps to no resource (RLIMIT_BOGUS) is a create error and leaves nothing",
        run: rlimits_invalid_type_error,
    },
    Case {
        id: "process::rlimits_duplicate_error",
        clauses: &[
            "config.process.rlimits-duplicate-error",
            "runtime.create.apply-error-no-container",
            "runtime.errors.no-side-effects",
        ],
        needs: &[],
        summary: "rlimits listing RLIMIT_NOFILE twice is a create error and leaves nothing",
        run: rlimits_duplicate_error,
    },
    Case {
        id: "process::caps_grant_sys_admin",
        clauses: &[
            "config.process.capabilities-effective",
            "config.process.capabilities-permitted",
            "config.process.capabilities-bounding",
            "config.process.capabilities-inheritable",
            "config.process.capabilities-ambient",
        ],
        needs: &[],
        summary: "CAP_SYS_ADMIN and CAP_CHOWN in bounding, effective and permitted give exactly those bits",
        run: caps_grant_sys_admin,
    },
    Case {
        id: "process::caps_drop_all",
        clauses: &[
            "config.process.capabilities-effective",
            "config.process.capabilities-permitted",
            "config.process.capabilities-bounding",
            "config.process.capabilities-inheritable",
            "config.process.capabilities-ambient",
        ],
        needs: &[],
        summary: "empty capability sets leave a root process with no capability in any set",
        run: caps_drop_all,
    },
    Case {
        id: "process::caps_inheritable_ambient",
        clauses: &[
            "config.process.capabilities-inheritable",
            "config.process.capabilities-ambient",
            "config.process.capabilities-bounding",
        ],
        needs: &[],
        summary: "inheritable and ambient sets smaller than bounding are applied as given",
        run: caps_inheritable_ambient,
    },
    Case {
        id: "process::caps_ambient_non_root",
        clauses: &[
            "config.process.capabilities-ambient",
            "config.process.capabilities-effective",
            "config.process.capabilities-permitted",
            "config.process.capabilities-bounding",
            "config.process.capabilities-inheritable",
        ],
        needs: &[],
        summary: "a uid 1000 process keeps its configured capabilities through ambient, bounding stays larger",
        run: caps_ambient_non_root,
    },
    Case {
        id: "process::terminal",
        clauses: &["config.process.terminal"],
        needs: &[],
        summary: "terminal true sends a pty master over --console-socket and the process's stdio are ttys",
        run: terminal,
    },
    Case {
        id: "process::console_size",
        clauses: &["config.process.console-size", "config.process.terminal"],
        needs: &[],
        summary: "consoleSize 37x101 is the terminal's rows and columns",
        run: console_size,
    },
    Case {
        id: "process::console_size_without_terminal",
        clauses: &["config.process.console-size-ignore"],
        needs: &[],
        summary: "consoleSize without terminal is ignored: the process runs, with no tty",
        run: console_size_without_terminal,
    },
];

/// Capability numbers (linux/capability.h) of the names the cases use.
const CAP_BITS: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_RAW", 13),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_AUDIT_WRITE", 29),
];

fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| {
            let bit = CAP_BITS
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, b)| *b)
                .unwrap_or_else(|| panic!("unknown capability {n} in the case table"));
            1u64 << bit
        })
        .fold(0, |a, b| a | b)
}

/// Capability names of the bits set in `mask`, for readable failures.
fn cap_names(mask: u64) -> String {
    let mut names = Vec::new();
    for bit in 0..64 {
        if mask & (1 << bit) != 0 {
            match CAP_BITS.iter().find(|(_, b)| *b == bit) {
                Some((n, _)) => names.push(n.to_string()),
                None => names.push(format!("cap{bit}")),
            }
        }
    }
    format!("{mask:#x} [{}]", names.join(" "))
}

/// The five sets as the config gives them: bounding, effective, inheritable,
/// permitted, ambient.
struct CapSets<'a> {
    bounding: &'a [&'a str],
    effective: &'a [&'a str],
    inheritable: &'a [&'a str],
    permitted: &'a [&'a str],
    ambient: &'a [&'a str],
}

fn set_caps(spec: &mut Spec, sets: &CapSets) -> Result<(), Verdict> {
    let caps: LinuxCapabilities = serde_json::from_value(json!({
        "bounding": sets.bounding,
        "effective": sets.effective,
        "inheritable": sets.inheritable,
        "permitted": sets.permitted,
        "ambient": sets.ambient,
    }))
    .map_err(|e| fail("harness", "a capabilities object", e))?;
    spec.process_mut_or_default().set_capabilities(Some(caps));
    Ok(())
}

/// Compares each set the probe saw with the mask the case expects.
fn expect_caps(r: &probe::Report, want: [u64; 5]) -> CaseResult {
    let seen = [
        ("config.process.capabilities-bounding", "bounding", r.caps.bounding),
        ("config.process.capabilities-effective", "effective", r.caps.effective),
        (
            "config.process.capabilities-inheritable",
            "inheritable",
            r.caps.inheritable,
        ),
        ("config.process.capabilities-permitted", "permitted", r.caps.permitted),
        ("config.process.capabilities-ambient", "ambient", r.caps.ambient),
    ];
    for ((clause, set, got), want) in seen.into_iter().zip(want) {
        check(
            got == want,
            clause,
            format!("{set} = {}", cap_names(want)),
            format!("{set} = {}", cap_names(got)),
        )?;
    }
    Ok(())
}

/// A field of the harness's own /proc/self/status (`Umask`, `NoNewPrivs`...).
fn own_status(field: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The harness's own limits of `resource` (soft, hard).
fn own_rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct to the valid pointer it is
    // given and has no other effect.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    (rc == 0).then_some((lim.rlim_cur, lim.rlim_max))
}

fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .expect("every field of the rlimit is set")
}

/// A consoleSize of `height` rows and `width` columns.
fn console_box(height: u64, width: u64) -> oci_spec::runtime::Box {
    BoxBuilder::default()
        .height(height)
        .width(width)
        .build()
        .expect("every field of the box is set")
}

/// Runs `spec` (whose args must print a report) to its end after `prepare`
/// has put what it needs into the rootfs, and parses the report.
fn report_prepared(
    ctx: &mut Ctx,
    spec: &Spec,
    prepare: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<probe::Report, Verdict> {
    let b = ctx.bundle(spec)?;
    prepare(&b.rootfs()).map_err(|e| fail("harness", "to prepare the rootfs", e))?;
    let c = ctx.create(&b)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    let out = c.io.stdout();
    parse_report(&out).map_err(|e| {
        fail(
            ctx.clause,
            "the probe to print its report",
            format!("{e}; stderr: {:?}", tail(&c.io.stderr(), 300)),
        )
    })
}

/// Runs `probe report` with exactly `args` as process.args.
fn report_with_args(ctx: &mut Ctx, spec: &Spec, args: &[&str]) -> Result<probe::Report, Verdict> {
    let mut spec = spec.clone();
    spec.set_args(args);
    report_prepared(ctx, &spec, |_| Ok(()))
}

/// Creates a container from a raw config that the runtime must refuse
/// (at create, or failing that at start); a refusal at create must leave
/// nothing behind.
fn expect_create_or_start_error(ctx: &mut Ctx, cfg: &Value, clause: &str, what: &str) -> CaseResult {
    let b = ctx.bundle_raw(cfg)?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        return crate::cases::create::expect_no_container(ctx, &id);
    }
    let start = ctx.start_raw(&id)?;
    if start.status.success() {
        // What became of the process tells the reader what the runtime did.
        io.wait_eof(Duration::from_millis(500));
        return Err(fail(
            clause,
            format!("create or start to fail for {what}"),
            format!(
                "create and start both succeeded; the container's stderr {:?}",
                tail(&io.stderr(), 200)
            ),
        ));
    }
    Ok(())
}

/// Expects create to refuse `cfg` and leave nothing behind.
fn expect_create_error(ctx: &mut Ctx, cfg: &Value, clause: &str, what: &str) -> CaseResult {
    let b: Bundle = ctx.bundle_raw(cfg)?;
    expect_refused(ctx, &b, clause, what)
}

fn args_exact(ctx: &mut Ctx) -> CaseResult {
    // Everything after `report` is also an item the probe looks up as a
    // path; that does no harm, and the argv it prints is what matters.
    let args = [
        PROBE,
        "report",
        "with space",
        "",
        "tab\there",
        "--looks-like=a-flag",
        "$HOME",
        "ünïcødé",
        "'quoted'",
    ];
    let r = report_with_args(ctx, &ctx.spec(), &args)?;
    let want: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    check_eq("config.process.args", "argv", want, r.args)
}

fn args_path_lookup(ctx: &mut Ctx) -> CaseResult {
    // config.md: args[0] is resolved like execvp's file: a name without a
    // slash is searched in PATH (the process's own environment, where the
    // probe sits at the root of the rootfs).
    let mut spec = ctx.spec();
    let env = spec.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
    env.retain(|e| !e.starts_with("PATH="));
    env.push("PATH=/nonexistent:/".to_string());
    let r = report_with_args(ctx, &spec, &["probe", "report"])?;
    check_eq(
        "config.process.args",
        "argv",
        vec!["probe".to_string(), "report".to_string()],
        r.args,
    )
}

fn args_missing_error(ctx: &mut Ctx) -> CaseResult {
    // config.md: on Linux args MUST have at least one entry; without one
    // there is no program for start to run.
    let mut absent = ctx.spec_json();
    if let Some(p) = absent.pointer_mut("/process").and_then(Value::as_object_mut) {
        p.remove("args");
    }
    expect_create_or_start_error(ctx, &absent, "config.process.args-required", "a process without args")?;
    let mut empty = ctx.spec_json();
    if let Some(p) = empty.pointer_mut("/process").and_then(Value::as_object_mut) {
        p.insert("args".into(), json!([]));
    }
    expect_create_or_start_error(ctx, &empty, "config.process.args-required", "process.args = []")
}

fn env_exact(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    let mut want: Vec<String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    want.extend(
        [
            "OCI_PLAIN=value",
            "OCI_EMPTY=",
            "OCI_EQUALS=a=b=c",
            "OCI_SPACES=one two  three",
            "OCI_QUOTES=\"x\" 'y'",
        ]
        .map(String::from),
    );
    spec.process_mut_or_default().set_env(Some(want.clone()));
    let r = ctx.report(&spec, &[])?;
    for w in &want {
        check(
            r.env.contains(w),
            "config.process.env",
            format!("{w:?} in the environment"),
            format!("environment {:?}", r.env),
        )?;
    }
    // HOME and PATH are given, so a runtime has nothing to fill in: every
    // other variable is one the config did not ask for.
    let want_set: BTreeSet<&String> = want.iter().collect();
    let extra: Vec<&String> = r.env.iter().filter(|e| !want_set.contains(e)).collect();
    check(
        extra.is_empty(),
        "config.process.env",
        "no variable beyond process.env",
        format!("extra {extra:?}"),
    )
}

fn cwd_existing(ctx: &mut Ctx) -> CaseResult {
    let dir = "/work dir/inner";
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_cwd(dir.into());
    spec.set_args(&[PROBE, "report"]);
    let r = report_prepared(ctx, &spec, |rootfs| {
        std::fs::create_dir_all(rootfs.join(dir.trim_start_matches('/')))
    })?;
    if let Some(e) = r.errors.get("getcwd") {
        return Err(fail(
            "config.process.cwd",
            format!("cwd {dir}"),
            format!("getcwd failed: {e}"),
        ));
    }
    check_eq("config.process.cwd", "cwd", dir, r.cwd.as_str())
}

fn cwd_missing(ctx: &mut Ctx) -> CaseResult {
    // config.md does not say what a runtime does with a cwd the rootfs lacks
    // (runc creates it). Either way the process must not start somewhere
    // else: it runs in the cwd, or create fails and leaves nothing.
    let dir = "/not there/yet";
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_cwd(dir.into());
    spec.set_args(&[PROBE, "report"]);
    let b = ctx.bundle(&spec)?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        ctx.note(format!("create refused the missing cwd: {}", out.reason()));
        return crate::cases::create::expect_no_container(ctx, &id);
    }
    let start = ctx.start_raw(&id)?;
    if !start.status.success() {
        ctx.note(format!("start refused the missing cwd: {}", start.reason()));
        return Ok(());
    }
    if !io.wait_eof(ctx.shared.timeout) {
        return Err(fail("config.process.cwd", "the process to exit", "it is still running"));
    }
    let r = parse_report(&io.stdout()).map_err(|e| {
        fail(
            "config.process.cwd",
            "the probe to print its report",
            format!("{e}; stderr: {:?}", tail(&io.stderr(), 300)),
        )
    })?;
    check_eq("config.process.cwd", "cwd", dir, r.cwd.as_str())
}

fn set_user(spec: &mut Spec, uid: u32, gid: u32, additional: Option<Vec<u32>>) {
    let user = spec.process_mut_or_default().user_mut();
    user.set_uid(uid);
    user.set_gid(gid);
    user.set_additional_gids(additional);
}

fn expect_ids(r: &probe::Report, uid: u32, gid: u32) -> CaseResult {
    check_eq("config.process.user-uid", "uid", uid, r.ids.uid)?;
    check_eq("config.process.user-uid", "euid", uid, r.ids.euid)?;
    check_eq("config.process.user-gid", "gid", gid, r.ids.gid)?;
    check_eq("config.process.user-gid", "egid", gid, r.ids.egid)
}

/// getgroups(2) must hold exactly `additional`; POSIX leaves it open whether
/// the effective gid is listed too, so `gid` may appear as well.
fn expect_groups(r: &probe::Report, gid: u32, additional: &[u32]) -> CaseResult {
    let want: BTreeSet<u32> = additional.iter().copied().collect();
    let seen: BTreeSet<u32> = r
        .ids
        .groups
        .iter()
        .copied()
        .filter(|g| *g != gid || want.contains(g))
        .collect();
    check(
        seen == want,
        "config.process.additional-gids",
        format!("groups {want:?} (the gid {gid} allowed besides)"),
        format!("groups {:?}", r.ids.groups),
    )
}

fn user_uid_gid(ctx: &mut Ctx) -> CaseResult {
    // The rootfs has no /etc/passwd or /etc/group: the ids are numbers only.
    let mut spec = ctx.spec();
    set_user(&mut spec, 1000, 1000, None);
    let r = ctx.report(&spec, &[])?;
    expect_ids(&r, 1000, 1000)?;
    expect_groups(&r, 1000, &[])
}

fn user_root_other_gid(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    set_user(&mut spec, 0, 1234, None);
    let r = ctx.report(&spec, &[])?;
    expect_ids(&r, 0, 1234)
}

fn additional_gids(ctx: &mut Ctx) -> CaseResult {
    let extra = vec![10, 2000, 3000];
    let mut spec = ctx.spec();
    set_user(&mut spec, 1000, 1000, Some(extra.clone()));
    let r = ctx.report(&spec, &[])?;
    expect_ids(&r, 1000, 1000)?;
    expect_groups(&r, 1000, &extra)
}

fn umask_set(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.process_mut_or_default().user_mut().set_umask(Some(0o027));
    let r = ctx.report(&spec, &[])?;
    check(
        r.umask == 0o027,
        "config.process.umask",
        "umask 0027",
        format!("umask {:04o}", r.umask),
    )
}

fn umask_unset(ctx: &mut Ctx) -> CaseResult {
    // config.md: "If unspecified, the umask should not be changed from the
    // calling process' umask"; the runtime inherits the harness's umask.
    // (When that is 0022 this cannot tell inheritance from a runtime that
    // always sets 0022, as runc does, but it catches any other default.)
    let own = own_status("Umask")
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .ok_or_else(|| skip("the harness's umask is not in /proc/self/status"))?;
    let mut spec = ctx.spec();
    spec.process_mut_or_default().user_mut().set_umask(None);
    let r = ctx.report(&spec, &[])?;
    check(
        r.umask == own,
        "config.process.umask-unset",
        format!("umask {own:04o} (the caller's)"),
        format!("umask {:04o}", r.umask),
    )
}

fn no_new_privileges_true(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_no_new_privileges(Some(true));
    let r = ctx.report(&spec, &[])?;
    check_eq("config.process.no-new-privileges", "no_new_privs", true, r.no_new_privs)
}

fn no_new_privileges_false(ctx: &mut Ctx) -> CaseResult {
    // Only meaningful when the harness itself may still gain privileges:
    // no_new_privs is inherited and cannot be cleared.
    let own = own_status("NoNewPrivs").unwrap_or_default();
    ctx.require(own == "0", "a harness without no_new_privs")?;
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_no_new_privileges(Some(false));
    let r = ctx.report(&spec, &[])?;
    check_eq(
        "config.process.no-new-privileges",
        "no_new_privs",
        false,
        r.no_new_privs,
    )
}

fn own_oom_score_adj() -> Result<i32, Verdict> {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| skip("/proc/self/oom_score_adj is not readable"))
}

fn oom_score_adj_set(ctx: &mut Ctx) -> CaseResult {
    // Raising oom_score_adj needs no privilege; lowering it below the
    // caller's needs CAP_SYS_RESOURCE, so the value is above the harness's.
    let own = own_oom_score_adj()?;
    ctx.require(own < 1000, "an oom_score_adj below 1000 in the harness")?;
    let want = if own < 500 { 500 } else { 1000 };
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_oom_score_adj(Some(want));
    spec.set_args(&[PROBE, "sleep", "inf"]);
    let c = ctx.create_spec(&spec)?;
    ctx.start(&c)?;
    let pid = c
        .pid
        .ok_or_else(|| fail("runtime.state.pid", "the container's pid", "none"))?;
    let host = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap_or_default();
    check_eq(
        "config.process.oom-score-adj",
        "oom_score_adj seen from the host",
        want.to_string(),
        host.trim().to_string(),
    )?;
    let r = ctx.report(&spec, &[])?;
    check_eq(
        "config.process.oom-score-adj",
        "oom_score_adj inside",
        want,
        r.oom_score_adj,
    )
}

fn oom_score_adj_unset(ctx: &mut Ctx) -> CaseResult {
    let own = own_oom_score_adj()?;
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_oom_score_adj(None);
    let r = ctx.report(&spec, &[])?;
    check_eq(
        "config.process.oom-score-adj-unset",
        "oom_score_adj (the caller's)",
        own,
        r.oom_score_adj,
    )
}

fn expect_rlimit(r: &probe::Report, name: &str, soft: u64, hard: u64) -> CaseResult {
    let got = r.rlimits.get(name).ok_or_else(|| {
        fail(
            "config.process.rlimits-getrlimit",
            format!("getrlimit({name}) to succeed"),
            "the probe could not read it",
        )
    })?;
    check_eq(
        "config.process.rlimits-soft",
        &format!("{name} soft"),
        Some(soft),
        got.soft,
    )?;
    check_eq(
        "config.process.rlimits-hard",
        &format!("{name} hard"),
        Some(hard),
        got.hard,
    )
}

fn rlimits_applied(ctx: &mut Ctx) -> CaseResult {
    // Lowering limits needs no privilege: stay at or below the harness's
    // own hard limit.
    let (_, own_hard) = own_rlimit(libc::RLIMIT_NOFILE).ok_or_else(|| skip("getrlimit(RLIMIT_NOFILE) failed"))?;
    ctx.require(own_hard >= 64, "a hard RLIMIT_NOFILE of 64 or more in the harness")?;
    let hard = own_hard.min(1024);
    let soft = hard / 2;
    let mut spec = ctx.spec();
    spec.process_mut_or_default().set_rlimits(Some(vec![
        rlimit(PosixRlimitType::RlimitNofile, soft, hard),
        rlimit(PosixRlimitType::RlimitCore, 0, 0),
    ]));
    let r = ctx.report(&spec, &[])?;
    expect_rlimit(&r, "RLIMIT_NOFILE", soft, hard)?;
    expect_rlimit(&r, "RLIMIT_CORE", 0, 0)
}

fn rlimits_above_caller(ctx: &mut Ctx) -> CaseResult {
    // Without CAP_SYS_RESOURCE setrlimit(2) refuses to raise a hard limit
    // (EPERM), so a native runtime cannot apply this one and runtime.md
    // says create must then fail and create nothing. A runtime that can
    // apply it (with the capability, or a sandbox enforcing its own
    // limits) must show it to the process.
    let (_, own_hard) = own_rlimit(libc::RLIMIT_NOFILE).ok_or_else(|| skip("getrlimit(RLIMIT_NOFILE) failed"))?;
    let hard = own_hard + 1;
    let mut spec = ctx.spec();
    spec.process_mut_or_default()
        .set_rlimits(Some(vec![rlimit(PosixRlimitType::RlimitNofile, 1024, hard)]));
    spec.set_args(&[PROBE, "report"]);
    let b = ctx.bundle(&spec)?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &b, &CreateOpts::default())?;
    if !out.status.success() {
        // fs.nr_open caps RLIMIT_NOFILE even with CAP_SYS_RESOURCE.
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if ctx.host().cap_sys_resource && hard <= nr_open {
            return Err(fail(
                "config.process.rlimits-hard",
                format!("the hard RLIMIT_NOFILE {hard} applied (the caller has CAP_SYS_RESOURCE)"),
                format!("create: {}: {}", out.status, out.reason()),
            ));
        }
        ctx.note(format!("create refused the limit: {}", out.reason()));
        return crate::cases::create::expect_no_container(ctx, &id);
    }
    let start = ctx.start_raw(&id)?;
    check(
        start.status.success(),
        "runtime.create.apply-error",
        format!("create to fail, or the hard RLIMIT_NOFILE {hard} (above the caller's {own_hard}) to apply"),
        format!("create succeeded, then start: {}: {}", start.status, start.reason()),
    )?;
    io.wait_eof(ctx.shared.timeout);
    let r = parse_report(&io.stdout()).map_err(|e| {
        fail(
            "runtime.create.apply-error",
            format!("create to fail, or the hard RLIMIT_NOFILE {hard} (above the caller's {own_hard}) to apply"),
            format!(
                "create succeeded, and the probe printed no report: {e}; stderr {:?}",
                tail(&io.stderr(), 200)
            ),
        )
    })?;
    expect_rlimit(&r, "RLIMIT_NOFILE", 1024, hard)
}

fn rlimits_invalid_type_error(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1},
    ]);
    expect_create_error(
        ctx,
        &cfg,
        "config.process.rlimits-invalid-error",
        "rlimit type RLIMIT_BOGUS",
    )
}

fn rlimits_duplicate_error(ctx: &mut Ctx) -> CaseResult {
    let mut cfg = ctx.spec_json();
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
    ]);
    expect_create_error(
        ctx,
        &cfg,
        "config.process.rlimits-duplicate-error",
        "RLIMIT_NOFILE listed twice",
    )
}

fn caps_grant_sys_admin(ctx: &mut Ctx) -> CaseResult {
    // For uid 0 execve(2) recomputes permitted as inheritable | bounding
    // (capabilities(7)), so a root process can only see effective =
    // permitted = bounding: the sets are given that way.
    let granted = ["CAP_SYS_ADMIN", "CAP_CHOWN"];
    let mut spec = ctx.spec();
    set_caps(
        &mut spec,
        &CapSets {
            bounding: &granted,
            effective: &granted,
            inheritable: &[],
            permitted: &granted,
            ambient: &[],
        },
    )?;
    let r = ctx.report(&spec, &[])?;
    let m = cap_mask(&granted);
    expect_caps(&r, [m, m, 0, m, 0])
}

fn caps_drop_all(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    set_caps(
        &mut spec,
        &CapSets {
            bounding: &[],
            effective: &[],
            inheritable: &[],
            permitted: &[],
            ambient: &[],
        },
    )?;
    let r = ctx.report(&spec, &[])?;
    expect_caps(&r, [0; 5])
}

fn caps_inheritable_ambient(ctx: &mut Ctx) -> CaseResult {
    // Ambient capabilities must be both permitted and inheritable
    // (capabilities(7)); CAP_KILL is, CAP_CHOWN is only inheritable.
    let bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_SETGID"];
    let mut spec = ctx.spec();
    set_caps(
        &mut spec,
        &CapSets {
            bounding: &bounding,
            effective: &bounding,
            inheritable: &["CAP_KILL", "CAP_CHOWN"],
            permitted: &bounding,
            ambient: &["CAP_KILL"],
        },
    )?;
    let r = ctx.report(&spec, &[])?;
    let b = cap_mask(&bounding);
    expect_caps(
        &r,
        [b, b, cap_mask(&["CAP_KILL", "CAP_CHOWN"]), b, cap_mask(&["CAP_KILL"])],
    )
}

fn caps_ambient_non_root(ctx: &mut Ctx) -> CaseResult {
    // For a non-root uid without file capabilities execve(2) leaves
    // permitted = effective = ambient (capabilities(7)): the configured
    // sets survive only if the runtime raises the ambient ones after
    // switching uid.
    let kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let bounding = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETUID"];
    let mut spec = ctx.spec();
    set_user(&mut spec, 1000, 1000, None);
    set_caps(
        &mut spec,
        &CapSets {
            bounding: &bounding,
            effective: &kept,
            inheritable: &kept,
            permitted: &kept,
            ambient: &kept,
        },
    )?;
    let r = ctx.report(&spec, &[])?;
    expect_ids(&r, 1000, 1000)?;
    let k = cap_mask(&kept);
    expect_caps(&r, [cap_mask(&bounding), k, k, k, k])
}

/// Runs `probe tty` with `terminal: true` and a console socket; returns
/// what it printed on the pty.
fn tty_report(ctx: &mut Ctx, mut spec: Spec) -> Result<Value, Verdict> {
    const CLAUSE: &str = "config.process.terminal";
    spec.process_mut_or_default().set_terminal(Some(true));
    spec.set_args(&[PROBE, "tty"]);
    let sock = ctx.path("console.sock");
    let listener = OneShotListener::bind(&sock).map_err(|e| fail("harness", "to bind the console socket", e))?;
    let b = ctx.bundle(&spec)?;
    let opts = CreateOpts {
        console_socket: Some(sock.clone()),
        ..Default::default()
    };
    let c = ctx.create_with(&b, &opts)?;
    let timeout = Duration::from_secs(2);
    let stream = listener
        .accept(timeout)
        .map_err(|e| fail(CLAUSE, "the runtime to connect to --console-socket", format!("{e}")))?;
    let (_, fds) = recv_with_fds(&stream, timeout)
        .map_err(|e| fail(CLAUSE, "a pty master over the console socket", format!("{e}")))?;
    let master = fds.into_iter().next().ok_or_else(|| {
        fail(
            CLAUSE,
            "a pty master over the console socket",
            "a message without descriptors",
        )
    })?;
    let rx = crate::unix::spawn_reader(master);
    ctx.start(&c)?;
    let deadline = Instant::now() + ctx.shared.timeout;
    let mut text = String::new();
    loop {
        if let Some(v) = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('{'))
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            return Ok(v);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => {
                return Err(fail(
                    CLAUSE,
                    "the process's output on the pty master",
                    format!(
                        "{:?}; process stdout pipe {:?}, stderr {:?}",
                        tail(&text, 200),
                        tail(&c.io.stdout(), 200),
                        tail(&c.io.stderr(), 200)
                    ),
                ))
            }
        }
    }
}

fn terminal(ctx: &mut Ctx) -> CaseResult {
    let v = tty_report(ctx, ctx.spec())?;
    for fd in ["stdin_tty", "stdout_tty", "stderr_tty"] {
        check(
            v[fd] == Value::Bool(true),
            "config.process.terminal",
            format!("{fd} true (the pty on the standard streams)"),
            format!("{v}"),
        )?;
    }
    Ok(())
}

fn console_size(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    let size = console_box(37, 101);
    spec.process_mut_or_default().set_console_size(Some(size));
    let v = tty_report(ctx, spec)?;
    check_eq(
        "config.process.console-size",
        "rows x cols",
        (Some(37), Some(101)),
        (v["rows"].as_u64(), v["cols"].as_u64()),
    )
}

fn console_size_without_terminal(ctx: &mut Ctx) -> CaseResult {
    let mut spec = ctx.spec();
    let size = console_box(37, 101);
    let p = spec.process_mut_or_default();
    p.set_terminal(Some(false));
    p.set_console_size(Some(size));
    // A runtime that refuses the config fails the case through ctx.clause.
    let r = ctx.report(&spec, &[])?;
    check(
        !r.stdio.stdin_tty && !r.stdio.stdout_tty,
        "config.process.console-size-ignore",
        "no terminal on stdin or stdout",
        format!("stdin tty {}, stdout tty {}", r.stdio.stdin_tty, r.stdio.stdout_tty),
    )
}
