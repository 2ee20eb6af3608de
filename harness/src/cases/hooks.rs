//! Hooks (config.md, POSIX-platform Hooks; runtime.md, Lifecycle): each
//! hook is the probe's `hook` subcommand, which appends what it saw (its
//! label, the state on stdin, argv, environ, namespaces, a timestamp) as one
//! JSON line to a record file. The file sits in a host directory that is
//! also bind-mounted at /hooks in the container, so hooks that run in the
//! runtime namespace (host paths) and in the container (container paths)
//! append to the same file, in the order they ran.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oci_spec::runtime::{Hook, Hooks, Mount, Spec};
use serde_json::Value;

use crate::bundle::{Bundle, SpecExt};
use crate::case::{check, check_eq, fail, skip, Case, CaseResult, Need, Verdict};
use crate::ctx::{Container, Ctx};
use crate::runtime::CreateOpts;

pub const CASES: &[Case] = &[
    Case {
        id: "hooks::lifecycle_order",
        clauses: &[
            "runtime.lifecycle.prestart-invoke",
            "runtime.lifecycle.create-runtime-invoke",
            "runtime.lifecycle.create-container-invoke",
            "runtime.lifecycle.start-container-invoke",
            "runtime.lifecycle.poststart-invoke",
            "runtime.lifecycle.poststop-invoke",
            "config.hooks.prestart-when",
            "config.hooks.prestart-before-create-runtime",
            "config.hooks.create-runtime-when",
            "config.hooks.create-container-when",
            "config.hooks.create-container-after-create-runtime",
            "config.hooks.start-container-when",
            "config.hooks.poststart-when",
            "config.hooks.poststop-when",
        ],
        needs: &[Need::Unchanged("host-files")],
        summary: "all six kinds run once each, in lifecycle order, inside create, start and delete",
        run: lifecycle_order,
    },
    Case {
        id: "hooks::state_on_stdin",
        clauses: &[
            "config.hooks.state-stdin",
            "runtime.state.pid-hook-namespace",
            "runtime.state.status-creating",
            "runtime.state.status-created",
            "runtime.state.status-running",
            "runtime.state.status-stopped",
        ],
        needs: &[Need::Unchanged("host-files")],
        summary: "each hook reads the state on stdin: id, bundle, the status of its step and the pid of its namespace",
        run: state_on_stdin,
    },
    Case {
        id: "hooks::args_env",
        clauses: &["config.hooks.args", "config.hooks.env"],
        needs: &[Need::Unchanged("host-files")],
        summary: "createRuntime and createContainer hooks get exactly their args (argv[0] included) and env",
        run: args_env,
    },
    Case {
        id: "hooks::order_within_kind",
        clauses: &["config.hooks.order"],
        needs: &[Need::Unchanged("host-files")],
        summary: "three hooks of one kind (createRuntime, createContainer, poststop) run in the listed order",
        run: order_within_kind,
    },
    Case {
        id: "hooks::runtime_namespace",
        clauses: &[
            "config.hooks.prestart-runtime-ns",
            "config.hooks.create-runtime-runtime-ns",
            "config.hooks.poststart-runtime-ns",
            "config.hooks.poststop-runtime-ns",
            "config.hooks.prestart-path-runtime-ns",
            "config.hooks.create-runtime-path-runtime-ns",
            "config.hooks.poststart-path-runtime-ns",
            "config.hooks.poststop-path-runtime-ns",
        ],
        needs: &[],
        summary: "prestart, createRuntime, poststart and poststop hooks run in the runtime's mnt, net, pid, uts and ipc namespaces",
        run: runtime_namespace,
    },
    Case {
        id: "hooks::container_namespace",
        clauses: &[
            "config.hooks.create-container-container-ns",
            "config.hooks.start-container-container-ns",
            "config.hooks.create-container-path-runtime-ns",
            "config.hooks.start-container-path-container-ns",
        ],
        needs: &[Need::Unchanged("host-files")],
        summary: "createContainer (host path) and startContainer (container path) hooks run in the container's namespaces",
        run: container_namespace,
    },
    Case {
        id: "hooks::prestart_fail",
        clauses: &["runtime.lifecycle.prestart-fail", "runtime.create.apply-error-no-container"],
        needs: &[],
        summary: "a failing prestart hook makes create fail, runs no later hook and leaves no container",
        run: prestart_fail,
    },
    Case {
        id: "hooks::create_runtime_fail",
        clauses: &["runtime.lifecycle.create-runtime-fail", "runtime.create.apply-error-no-container"],
        needs: &[],
        summary: "a failing createRuntime hook makes create fail, runs no later hook and leaves no container",
        run: create_runtime_fail,
    },
    Case {
        id: "hooks::create_container_fail",
        clauses: &["runtime.lifecycle.create-container-fail", "runtime.create.apply-error-no-container"],
        needs: &[Need::Unchanged("host-files")],
        summary: "a failing createContainer hook makes create fail and leaves no container",
        run: create_container_fail,
    },
    Case {
        id: "hooks::start_container_fail",
        clauses: &["runtime.lifecycle.start-container-fail"],
        needs: &[Need::Unchanged("host-files")],
        summary: "a failing startContainer hook makes start fail; the program never runs and the container stops",
        run: start_container_fail,
    },
    Case {
        id: "hooks::poststart_fail",
        clauses: &["runtime.lifecycle.poststart-fail"],
        needs: &[],
        summary: "a failing poststart hook makes start fail and the runtime stops the container",
        run: poststart_fail,
    },
    Case {
        id: "hooks::poststop_fail_warns",
        clauses: &["runtime.lifecycle.poststop-warn", "runtime.warnings.continue"],
        needs: &[],
        summary: "a failing poststop hook is only a warning: the next poststop hook runs and delete succeeds",
        run: poststop_fail_warns,
    },
    Case {
        id: "hooks::timeout",
        clauses: &["config.hooks.timeout", "runtime.lifecycle.create-runtime-fail"],
        needs: &[],
        summary: "a createRuntime hook sleeping 10 s with timeout 1 is aborted: create fails within seconds",
        run: timeout,
    },
];

/// The six hook kinds, in the order the lifecycle runs them.
pub(crate) const ALL_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Where the record file is inside the container.
const IN_CONTAINER_DIR: &str = "/hooks";
const RECORDS: &str = "records";
/// The namespaces the default spec unshares, by their /proc/PID/ns names.
const NS: &[&str] = &["mnt", "net", "pid", "uts", "ipc"];

/// The hooks a case sets up, and where their records land.
struct Rig {
    bundle: Bundle,
    /// The probe in the bundle's rootfs, as a host path.
    probe: PathBuf,
    /// The record file, as a host path.
    records: PathBuf,
    /// The record file, as a path in the container.
    records_in_container: String,
    /// The hook directory, bind-mounted at /hooks.
    dir: PathBuf,
}

fn harness_error(what: impl std::fmt::Display) -> Verdict {
    fail("harness", "the harness to set the case up", what.to_string())
}

impl Rig {
    /// A bundle (with a placeholder config until `write`) and the hook dir.
    fn new(ctx: &mut Ctx) -> Result<Rig, Verdict> {
        let bundle = ctx.bundle(&ctx.spec())?;
        let dir = ctx.path("hooks");
        std::fs::create_dir_all(&dir).map_err(harness_error)?;
        // The mount point exists already, so no runtime has to create it in
        // a read-only root.
        std::fs::create_dir_all(bundle.rootfs().join("hooks")).map_err(harness_error)?;
        let dir = dir.canonicalize().map_err(harness_error)?;
        let probe = bundle.rootfs().join("probe").canonicalize().map_err(harness_error)?;
        Ok(Rig {
            records: dir.join(RECORDS),
            records_in_container: format!("{IN_CONTAINER_DIR}/{RECORDS}"),
            probe,
            dir,
            bundle,
        })
    }

    /// A hook run from a path of the runtime namespace.
    fn host(&self, sub: &str, label: &str) -> Hook {
        let mut h = Hook::default();
        h.set_path(self.probe.clone());
        h.set_args(Some(vec![
            "probe".into(),
            sub.into(),
            label.into(),
            self.records.to_string_lossy().into_owned(),
        ]));
        h
    }

    /// A hook run from a path of the container namespace (startContainer).
    fn container(&self, sub: &str, label: &str) -> Hook {
        let mut h = Hook::default();
        h.set_path(PathBuf::from("/probe"));
        h.set_args(Some(vec![
            "probe".into(),
            sub.into(),
            label.into(),
            self.records_in_container.clone(),
        ]));
        h
    }

    /// The program that records itself in the same file.
    fn program_args(&self) -> Vec<String> {
        vec![
            "/probe".into(),
            "hook".into(),
            "program".into(),
            self.records_in_container.clone(),
        ]
    }

    /// The default spec with the hook dir mounted and `hooks` set.
    fn spec(&self, ctx: &Ctx, hooks: Hooks, args: &[String]) -> Spec {
        let mut spec = ctx.spec();
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(IN_CONTAINER_DIR));
        m.set_typ(Some("bind".into()));
        m.set_source(Some(self.dir.clone()));
        m.set_options(Some(vec!["rbind".into(), "rw".into()]));
        spec.mounts_mut_or_default().push(m);
        spec.set_hooks(Some(hooks));
        spec.set_args(args);
        spec
    }

    fn write(&self, spec: &Spec) -> Result<(), Verdict> {
        self.bundle.write_spec(spec).map_err(harness_error)
    }

    /// Every record so far, in file order.
    fn records(&self) -> Vec<Record> {
        std::fs::read_to_string(&self.records)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(Record::from)
            .collect()
    }
}

/// One hook run, as the probe recorded it.
#[derive(Debug, Clone)]
struct Record {
    label: String,
    state: Value,
    args: Vec<String>,
    env: Vec<String>,
    namespaces: BTreeMap<String, u64>,
    time_ns: u64,
}

impl From<Value> for Record {
    fn from(v: Value) -> Record {
        let strings = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        Record {
            label: v.get("hook").and_then(Value::as_str).unwrap_or_default().to_string(),
            state: v.get("state").cloned().unwrap_or(Value::Null),
            args: strings("args"),
            env: strings("env"),
            namespaces: v
                .get("namespaces")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, x)| Some((k.clone(), x.as_u64()?))).collect())
                .unwrap_or_default(),
            time_ns: v.get("time_ns").and_then(Value::as_u64).unwrap_or(0),
        }
    }
}

fn labels(recs: &[Record]) -> Vec<&str> {
    recs.iter().map(|r| r.label.as_str()).collect()
}

fn find<'a>(recs: &'a [Record], label: &str) -> Option<&'a Record> {
    recs.iter().find(|r| r.label == label)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Skips when the runtime's features list hook kinds without these.
fn need_hooks(ctx: &Ctx, kinds: &[&str]) -> Result<(), Verdict> {
    let Some(list) = ctx
        .shared
        .features
        .as_ref()
        .and_then(|f| f.get("hooks"))
        .and_then(Value::as_array)
    else {
        return Ok(());
    };
    for k in kinds {
        if !list.iter().any(|x| x.as_str() == Some(k)) {
            return Err(skip(format!("the runtime's features do not list the {k} hook")));
        }
    }
    Ok(())
}

/// The inodes of `pid`'s namespaces, read from the host.
fn ns_of(pid: &str) -> BTreeMap<String, u64> {
    NS.iter()
        .filter_map(|n| {
            let m = std::fs::metadata(format!("/proc/{pid}/ns/{n}")).ok()?;
            Some((n.to_string(), m.ino()))
        })
        .collect()
}

/// Compares a hook's namespaces with `want` on the namespaces of `NS`.
fn same_ns(rec: &Record, want: &BTreeMap<String, u64>, clause: &str, whose: &str) -> CaseResult {
    let got: BTreeMap<String, u64> = NS
        .iter()
        .filter_map(|n| Some((n.to_string(), *rec.namespaces.get(*n)?)))
        .collect();
    let differ: Vec<String> = NS
        .iter()
        .filter(|n| want.get(**n) != got.get(**n))
        .map(|n| format!("{n} {:?} (want {:?})", got.get(*n), want.get(*n)))
        .collect();
    check(
        differ.is_empty(),
        clause,
        format!("the {} hook in the {whose} namespaces", rec.label),
        differ.join(", "),
    )
}

fn present<'a>(recs: &'a [Record], label: &str, clause: &str, when: &str) -> Result<&'a Record, Verdict> {
    find(recs, label).ok_or_else(|| {
        fail(
            clause,
            format!("the {label} hook to have run {when}"),
            format!("records: {:?}", labels(recs)),
        )
    })
}

fn in_window(rec: &Record, from: u64, to: u64, clause: &str, op: &str) -> CaseResult {
    check(
        rec.time_ns >= from && rec.time_ns <= to,
        clause,
        format!("the {} hook to run during {op}", rec.label),
        format!(
            "it ran {} ms after {op} began; {op} took {} ms",
            (rec.time_ns as i128 - from as i128) / 1_000_000,
            to.saturating_sub(from) / 1_000_000
        ),
    )
}

/// How long to wait for something a runtime does right after an operation
/// returned (a hook in the container's init, the process stopping).
fn patience(ctx: &Ctx) -> Duration {
    ctx.shared.timeout.min(Duration::from_secs(3))
}

/// The records once one labelled `label` is there, or after `timeout`.
fn wait_record(rig: &Rig, label: &str, timeout: Duration) -> Vec<Record> {
    let deadline = Instant::now() + timeout;
    loop {
        let recs = rig.records();
        if find(&recs, label).is_some() || Instant::now() >= deadline {
            return recs;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `pid` is gone (or a zombie), up to `timeout`.
fn gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while crate::reaper::alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn lifecycle_order(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &ALL_KINDS)?;
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    #[allow(deprecated)]
    h.set_prestart(Some(vec![rig.host("hook", "prestart")]));
    h.set_create_runtime(Some(vec![rig.host("hook", "createRuntime")]));
    h.set_create_container(Some(vec![rig.host("hook", "createContainer")]));
    // A slow first startContainer hook (0.2 s) makes a poststart hook that
    // does not wait for the program to be executed show up every time
    // instead of by chance.
    let mut slow = Hook::default();
    slow.set_path(PathBuf::from("/probe"));
    slow.set_args(Some(vec!["probe".into(), "sleep".into(), "0.2".into()]));
    h.set_start_container(Some(vec![slow, rig.container("hook", "startContainer")]));
    h.set_poststart(Some(vec![rig.host("hook", "poststart")]));
    h.set_poststop(Some(vec![rig.host("hook", "poststop")]));
    let spec = rig.spec(ctx, h, &rig.program_args());
    rig.write(&spec)?;

    // create: prestart, createRuntime, createContainer, in that order.
    let t0 = now_ns();
    let c = ctx.create(&rig.bundle)?;
    let t1 = now_ns();
    let recs = rig.records();
    for (kind, clause) in [
        ("prestart", "runtime.lifecycle.prestart-invoke"),
        ("createRuntime", "runtime.lifecycle.create-runtime-invoke"),
        ("createContainer", "runtime.lifecycle.create-container-invoke"),
    ] {
        present(&recs, kind, clause, "by the end of create")?;
    }
    check_eq(
        "runtime.lifecycle.create-no-user-program",
        "records after create",
        vec!["prestart", "createRuntime", "createContainer"],
        labels(&recs),
    )
    .map_err(|e| reclassify(e, &recs))?;
    for (r, clause) in recs.iter().zip([
        "config.hooks.prestart-when",
        "config.hooks.create-runtime-when",
        "config.hooks.create-container-when",
    ]) {
        in_window(r, t0, t1, clause, "create")?;
    }

    // start: startContainer before the program, poststart after it and
    // before start returns. Runtimes run startContainer hooks in the
    // container's init, which may go on after start has returned; only the
    // order against the program is required of them.
    let t2 = now_ns();
    ctx.start(&c)?;
    let t3 = now_ns();
    let recs = rig.records();
    let ps = present(
        &recs,
        "poststart",
        "config.hooks.poststart-when",
        "before start returned",
    )?;
    in_window(ps, t2, t3, "config.hooks.poststart-when", "start")?;
    let recs = wait_record(&rig, "startContainer", patience(ctx));
    let sc = present(
        &recs,
        "startContainer",
        "runtime.lifecycle.start-container-invoke",
        "after start",
    )?;
    check(
        sc.time_ns >= t2,
        "config.hooks.start-container-when",
        "the startContainer hook to run once start was called",
        format!("it ran {} ms before", t2.saturating_sub(sc.time_ns) / 1_000_000),
    )?;
    let pos = |l: &str, recs: &[Record]| recs.iter().position(|r| r.label == l);
    check(
        pos("startContainer", &recs) < pos("poststart", &recs),
        "config.hooks.poststart-when",
        "poststart after startContainer (after the program was executed)",
        format!("records: {:?}", labels(&recs)),
    )?;
    ctx.wait_exit(&c)?;
    let recs = rig.records();
    present(
        &recs,
        "program",
        "runtime.lifecycle.run-program",
        "(the container's program) after start",
    )?;
    check(
        pos("startContainer", &recs) < pos("program", &recs),
        "config.hooks.start-container-when",
        "startContainer before the program",
        format!("records: {:?}", labels(&recs)),
    )?;
    check(
        find(&recs, "poststop").is_none(),
        "config.hooks.poststop-when",
        "no poststop hook before delete",
        format!("records: {:?}", labels(&recs)),
    )?;

    // delete: poststop, before delete returns.
    ctx.wait_status(&c.id, "stopped")?;
    let t4 = now_ns();
    let out = ctx.delete(&c.id, false)?;
    let t5 = now_ns();
    check(
        out.status.success(),
        "runtime.lifecycle.destroy",
        "delete of the stopped container to succeed",
        format!("{}: {}", out.status, out.reason()),
    )?;
    let recs = rig.records();
    let pst = present(
        &recs,
        "poststop",
        "runtime.lifecycle.poststop-invoke",
        "before delete returned",
    )?;
    in_window(pst, t4, t5, "config.hooks.poststop-when", "delete")?;
    let once: Vec<&str> = ALL_KINDS
        .iter()
        .copied()
        .filter(|k| recs.iter().filter(|r| r.label == *k).count() != 1)
        .collect();
    check(
        once.is_empty(),
        "config.hooks.order",
        "each hook to run exactly once",
        format!("run other than once: {once:?}; records {:?}", labels(&recs)),
    )
}

/// Charges a wrong create-phase sequence to the clause it breaks.
fn reclassify(v: Verdict, recs: &[Record]) -> Verdict {
    let l = labels(recs);
    let clause = if l.contains(&"program") {
        "runtime.lifecycle.create-no-user-program"
    } else if l.iter().position(|x| *x == "createContainer") < l.iter().position(|x| *x == "createRuntime") {
        "config.hooks.create-container-after-create-runtime"
    } else if l.iter().position(|x| *x == "createRuntime") < l.iter().position(|x| *x == "prestart") {
        "config.hooks.prestart-before-create-runtime"
    } else if l.contains(&"startContainer") {
        "config.hooks.start-container-when"
    } else if l.contains(&"poststart") {
        "config.hooks.poststart-when"
    } else {
        "config.hooks.order"
    };
    match v {
        Verdict::Fail(mut f) => {
            f.clause = clause.to_string();
            Verdict::Fail(f)
        }
        other => other,
    }
}

fn state_on_stdin(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &ALL_KINDS)?;
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    #[allow(deprecated)]
    h.set_prestart(Some(vec![rig.host("hook", "prestart")]));
    h.set_create_runtime(Some(vec![rig.host("hook", "createRuntime")]));
    h.set_create_container(Some(vec![rig.host("hook", "createContainer")]));
    h.set_start_container(Some(vec![rig.container("hook", "startContainer")]));
    h.set_poststart(Some(vec![rig.host("hook", "poststart")]));
    h.set_poststop(Some(vec![rig.host("hook", "poststop")]));
    // A program that stays, so poststart sees it running.
    let spec = rig.spec(ctx, h, &["/probe".into(), "sleep".into(), "inf".into()]);
    rig.write(&spec)?;
    let c = ctx.create(&rig.bundle)?;
    ctx.start(&c)?;
    ctx.kill(&c.id, "KILL")?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id, false)?;
    let recs = rig.records();
    let bundle = rig.bundle.dir.canonicalize().map_err(harness_error)?;
    let host_pid = c.pid.map(i64::from);
    // runtime.md, State: the pid is as seen from the hook's namespace; the
    // container's process is pid 1 of its own pid namespace.
    // The create-phase hooks run after step 2 of the lifecycle but before
    // the create operation has finished: runtime.md's `creating` ("being
    // created (step 2)") and `created` ("after step 2") both fit there.
    let expect: [(&str, &[&str], Option<i64>); 6] = [
        ("prestart", &["creating", "created"], host_pid),
        ("createRuntime", &["creating", "created"], host_pid),
        ("createContainer", &["creating", "created"], Some(1)),
        ("startContainer", &["created"], Some(1)),
        ("poststart", &["running"], host_pid),
        ("poststop", &["stopped"], None),
    ];
    for (kind, statuses, pid) in expect {
        let r = present(&recs, kind, "config.hooks.state-stdin", "with the state")?;
        let st = &r.state;
        check(
            st.is_object(),
            "config.hooks.state-stdin",
            format!("the state JSON on the {kind} hook's stdin"),
            format!("{st}"),
        )?;
        check_eq(
            "config.hooks.state-stdin",
            &format!("{kind}: id"),
            Some(c.id.as_str()),
            st.get("id").and_then(Value::as_str),
        )?;
        let got_bundle = st
            .get("bundle")
            .and_then(Value::as_str)
            .map(|b| Path::new(b).canonicalize().unwrap_or_else(|_| PathBuf::from(b)));
        check_eq(
            "config.hooks.state-stdin",
            &format!("{kind}: bundle"),
            Some(bundle.clone()),
            got_bundle,
        )?;
        let status_clause = match statuses[0] {
            "creating" => "runtime.state.status-creating",
            "created" => "runtime.state.status-created",
            "running" => "runtime.state.status-running",
            _ => "runtime.state.status-stopped",
        };
        let got = st.get("status").and_then(Value::as_str);
        check(
            got.is_some_and(|g| statuses.contains(&g)),
            status_clause,
            format!("{kind}: status {}", statuses.join(" or ")),
            format!("{kind}: status {got:?}"),
        )?;
        if let Some(p) = pid {
            check_eq(
                "runtime.state.pid-hook-namespace",
                &format!("{kind}: pid"),
                Some(p),
                st.get("pid").and_then(Value::as_i64),
            )?;
        }
    }
    Ok(())
}

fn args_env(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["createRuntime", "createContainer"])?;
    let rig = Rig::new(ctx)?;
    let env = vec!["HOOK_A=1".to_string(), "HOOK_B=two words".to_string()];
    let with = |mut h: Hook, label: &str| {
        // execv semantics: argv[0] is whatever args[0] says.
        h.set_args(Some(vec![
            format!("argv0-{label}"),
            "hook".into(),
            label.into(),
            rig.records.to_string_lossy().into_owned(),
        ]));
        h.set_env(Some(env.clone()));
        h
    };
    let mut h = Hooks::default();
    h.set_create_runtime(Some(vec![with(rig.host("hook", "cr"), "createRuntime")]));
    h.set_create_container(Some(vec![with(rig.host("hook", "cc"), "createContainer")]));
    let spec = rig.spec(ctx, h, &["/probe".into(), "true".into()]);
    rig.write(&spec)?;
    ctx.create(&rig.bundle)?;
    let recs = rig.records();
    for kind in ["createRuntime", "createContainer"] {
        let r = present(&recs, kind, "config.hooks.args", "during create")?;
        check_eq(
            "config.hooks.args",
            &format!("{kind} argv"),
            vec![
                format!("argv0-{kind}"),
                "hook".into(),
                kind.into(),
                rig.records.to_string_lossy().into_owned(),
            ],
            r.args.clone(),
        )?;
        let mut got = r.env.clone();
        got.sort();
        check_eq("config.hooks.env", &format!("{kind} environ"), env.clone(), got)?;
    }
    Ok(())
}

fn order_within_kind(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["createRuntime", "createContainer", "poststop"])?;
    let rig = Rig::new(ctx)?;
    let three = |kind: &str| -> Vec<Hook> {
        ["1", "2", "3"]
            .iter()
            .map(|n| rig.host("hook", &format!("{kind}-{n}")))
            .collect()
    };
    let mut h = Hooks::default();
    h.set_create_runtime(Some(three("createRuntime")));
    h.set_create_container(Some(three("createContainer")));
    h.set_poststop(Some(three("poststop")));
    let spec = rig.spec(ctx, h, &["/probe".into(), "true".into()]);
    rig.write(&spec)?;
    let c = ctx.create(&rig.bundle)?;
    ctx.delete(&c.id, true)?;
    let recs = rig.records();
    for kind in ["createRuntime", "createContainer", "poststop"] {
        let mine: Vec<&Record> = recs.iter().filter(|r| r.label.starts_with(kind)).collect();
        let got: Vec<&str> = mine.iter().map(|r| r.label.as_str()).collect();
        let want: Vec<String> = (1..=3).map(|n| format!("{kind}-{n}")).collect();
        check_eq(
            "config.hooks.order",
            &format!("{kind} hooks in order of running"),
            want.iter().map(String::as_str).collect::<Vec<_>>(),
            got,
        )?;
        check(
            mine.windows(2).all(|w| w[0].time_ns <= w[1].time_ns),
            "config.hooks.order",
            format!("{kind} hooks one after another"),
            format!("times {:?}", mine.iter().map(|r| r.time_ns).collect::<Vec<_>>()),
        )?;
    }
    Ok(())
}

fn runtime_namespace(ctx: &mut Ctx) -> CaseResult {
    let kinds = ["prestart", "createRuntime", "poststart", "poststop"];
    need_hooks(ctx, &kinds)?;
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    #[allow(deprecated)]
    h.set_prestart(Some(vec![rig.host("hook", "prestart")]));
    h.set_create_runtime(Some(vec![rig.host("hook", "createRuntime")]));
    h.set_poststart(Some(vec![rig.host("hook", "poststart")]));
    h.set_poststop(Some(vec![rig.host("hook", "poststop")]));
    let spec = rig.spec(ctx, h, &["/probe".into(), "true".into()]);
    rig.write(&spec)?;
    let c = ctx.create(&rig.bundle)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id, false)?;
    // The runtime runs in the harness's namespaces.
    let mine = ns_of("self");
    let recs = rig.records();
    for (kind, invoke, clause) in [
        (
            "prestart",
            "runtime.lifecycle.prestart-invoke",
            "config.hooks.prestart-runtime-ns",
        ),
        (
            "createRuntime",
            "runtime.lifecycle.create-runtime-invoke",
            "config.hooks.create-runtime-runtime-ns",
        ),
        (
            "poststart",
            "runtime.lifecycle.poststart-invoke",
            "config.hooks.poststart-runtime-ns",
        ),
        (
            "poststop",
            "runtime.lifecycle.poststop-invoke",
            "config.hooks.poststop-runtime-ns",
        ),
    ] {
        let r = present(&recs, kind, invoke, "from its host path")?;
        same_ns(r, &mine, clause, "runtime's")?;
    }
    Ok(())
}

fn container_namespace(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["createContainer", "startContainer"])?;
    // The startContainer path only exists in the container; were /probe on
    // the host too, the case could not tell where the path was resolved.
    ctx.require(
        !Path::new("/probe").exists(),
        "a host without /probe (needed to tell the namespaces apart)",
    )?;
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    // createContainer: a host path (config.md: it resolves in the runtime
    // namespace), which does not exist inside the container's root.
    h.set_create_container(Some(vec![rig.host("hook", "createContainer")]));
    h.set_start_container(Some(vec![rig.container("hook", "startContainer")]));
    let spec = rig.spec(ctx, h, &["/probe".into(), "true".into()]);
    rig.write(&spec)?;
    let c = ctx.create(&rig.bundle)?;
    let pid = c
        .pid
        .ok_or_else(|| fail("runtime.state.pid", "the container's pid after create", "none"))?;
    let theirs = ns_of(&pid.to_string());
    let recs = rig.records();
    let r = present(
        &recs,
        "createContainer",
        "config.hooks.create-container-path-runtime-ns",
        &format!("from the host path {}", rig.probe.display()),
    )?;
    same_ns(r, &theirs, "config.hooks.create-container-container-ns", "container's")?;
    let st = ctx.start_raw(&c.id)?;
    check(
        st.status.success(),
        "config.hooks.start-container-path-container-ns",
        "start to succeed with a startContainer hook at /probe (a path of the container)",
        format!("{}: {}", st.status, st.reason()),
    )?;
    let recs = wait_record(&rig, "startContainer", patience(ctx));
    let r = present(
        &recs,
        "startContainer",
        "config.hooks.start-container-path-container-ns",
        "from /probe in the container",
    )?;
    same_ns(r, &theirs, "config.hooks.start-container-container-ns", "container's")
}

/// A failing hook of the create phase (`kind`), followed by the other
/// create-phase hooks that must then not run.
fn create_phase_fail(ctx: &mut Ctx, kind: &str, clause: &str) -> CaseResult {
    need_hooks(ctx, &[kind])?;
    let rig = Rig::new(ctx)?;
    let order = ["prestart", "createRuntime", "createContainer"];
    let at = order.iter().position(|k| *k == kind).unwrap_or(0);
    let hook = |k: &str| -> Option<Vec<Hook>> {
        let i = order.iter().position(|x| *x == k)?;
        if i < at {
            None
        } else if i == at {
            Some(vec![rig.host("hook-fail", k)])
        } else {
            Some(vec![rig.host("hook", k)])
        }
    };
    let mut h = Hooks::default();
    #[allow(deprecated)]
    h.set_prestart(hook("prestart"));
    h.set_create_runtime(hook("createRuntime"));
    h.set_create_container(hook("createContainer"));
    let spec = rig.spec(ctx, h, &rig.program_args());
    rig.write(&spec)?;
    let id = ctx.new_id();
    let (out, _io) = ctx.create_raw(&id, &rig.bundle, &CreateOpts::default())?;
    let recs = rig.records();
    present(
        &recs,
        kind,
        &clause.replace("-fail", "-invoke"),
        "(it fails on purpose)",
    )?;
    check(
        !out.status.success(),
        clause,
        format!("create to fail when a {kind} hook exits 1"),
        "create succeeded",
    )?;
    // runtime.md: ... stop the container, and continue the lifecycle at
    // step 12: the later create steps do not happen.
    check_eq(clause, "hooks run", vec![kind], labels(&recs))?;
    crate::cases::create::expect_no_container(ctx, &id)?;
    std::thread::sleep(Duration::from_millis(100));
    check(
        find(&rig.records(), "program").is_none(),
        clause,
        "the program never to run",
        "it ran",
    )
}

fn prestart_fail(ctx: &mut Ctx) -> CaseResult {
    create_phase_fail(ctx, "prestart", "runtime.lifecycle.prestart-fail")
}

fn create_runtime_fail(ctx: &mut Ctx) -> CaseResult {
    create_phase_fail(ctx, "createRuntime", "runtime.lifecycle.create-runtime-fail")
}

fn create_container_fail(ctx: &mut Ctx) -> CaseResult {
    create_phase_fail(ctx, "createContainer", "runtime.lifecycle.create-container-fail")
}

/// After a failed start, the container is stopped (or already destroyed)
/// and its process is gone.
fn expect_stopped(ctx: &mut Ctx, c: &Container, clause: &str) -> CaseResult {
    let patience = patience(ctx);
    if let Some(pid) = c.pid {
        check(
            gone(pid, patience),
            clause,
            "the container process to be stopped",
            format!("pid {pid} still runs {} ms later", patience.as_millis()),
        )?;
    }
    let deadline = Instant::now() + patience;
    loop {
        let st = ctx.state_raw(&c.id)?;
        if !st.status.success() {
            // Already destroyed (lifecycle step 12).
            return Ok(());
        }
        let status = crate::runtime::State::parse(&st.stdout).ok().and_then(|s| s.status);
        if status.as_deref() == Some("stopped") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(fail(
                clause,
                "status stopped (or no container)",
                format!("status {status:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_container_fail(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["startContainer"])?;
    let clause = "runtime.lifecycle.start-container-fail";
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    h.set_start_container(Some(vec![rig.container("hook-fail", "startContainer")]));
    let spec = rig.spec(ctx, h, &rig.program_args());
    rig.write(&spec)?;
    let c = ctx.create(&rig.bundle)?;
    let out = ctx.start_raw(&c.id)?;
    // runtime.md, Errors: how (or even if) the error reaches the caller is
    // not mandated, and the hook may run after start has returned; what is
    // observable is that the container stops and the program never runs.
    ctx.note(format!("start answered {} ({})", out.status, out.reason()));
    let recs = wait_record(&rig, "startContainer", patience(ctx));
    present(
        &recs,
        "startContainer",
        "runtime.lifecycle.start-container-invoke",
        "(it fails on purpose)",
    )?;
    expect_stopped(ctx, &c, clause)?;
    let recs = rig.records();
    check(
        find(&recs, "program").is_none(),
        clause,
        "the program never to run after the startContainer hook failed",
        format!("records: {:?}", labels(&recs)),
    )
}

fn poststart_fail(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["poststart"])?;
    let clause = "runtime.lifecycle.poststart-fail";
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    h.set_poststart(Some(vec![rig.host("hook-fail", "poststart")]));
    let spec = rig.spec(ctx, h, &["/probe".into(), "sleep".into(), "inf".into()]);
    rig.write(&spec)?;
    let id = ctx.new_id();
    let (out, io) = ctx.create_raw(&id, &rig.bundle, &CreateOpts::default())?;
    if !out.status.success() {
        let ran = find(&rig.records(), "poststart").is_some();
        return Err(if ran {
            fail(
                "config.hooks.poststart-when",
                "the poststart hook to run during start, after the program was executed",
                format!("it ran (and failed) during create, which then failed: {}", out.reason()),
            )
        } else {
            fail(clause, "create to succeed", format!("{}: {}", out.status, out.reason()))
        });
    }
    let pid = ctx.state(&id)?.pid.map(|p| p as i32);
    let c = Container {
        id: id.clone(),
        bundle: rig.bundle.clone(),
        pid,
        io,
    };
    let st = ctx.start_raw(&id)?;
    ctx.note(format!("start answered {} ({})", st.status, st.reason()));
    present(
        &rig.records(),
        "poststart",
        "runtime.lifecycle.poststart-invoke",
        "(it fails on purpose) before start returned",
    )?;
    // runtime.md step 9: generate an error, stop the container (how the
    // error is reported is not mandated; the stop is observable).
    expect_stopped(ctx, &c, clause)
}

fn poststop_fail_warns(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["poststop"])?;
    let clause = "runtime.lifecycle.poststop-warn";
    let rig = Rig::new(ctx)?;
    let mut h = Hooks::default();
    h.set_poststop(Some(vec![
        rig.host("hook-fail", "poststop-1"),
        rig.host("hook", "poststop-2"),
    ]));
    let spec = rig.spec(ctx, h, &["/probe".into(), "true".into()]);
    rig.write(&spec)?;
    let c = ctx.create(&rig.bundle)?;
    ctx.start(&c)?;
    ctx.wait_exit(&c)?;
    ctx.wait_status(&c.id, "stopped")?;
    let out = ctx.delete(&c.id, false)?;
    let recs = rig.records();
    present(
        &recs,
        "poststop-1",
        "runtime.lifecycle.poststop-invoke",
        "(it fails on purpose)",
    )?;
    check(
        out.status.success(),
        clause,
        "delete to succeed despite the failing poststop hook (a warning only)",
        format!("{}: {}", out.status, out.reason()),
    )?;
    check(
        find(&recs, "poststop-2").is_some(),
        clause,
        "the next poststop hook to run after the failing one",
        format!("records: {:?}", labels(&recs)),
    )?;
    let st = ctx.state_raw(&c.id)?;
    check(
        !st.status.success(),
        "runtime.lifecycle.destroy",
        "the container gone after delete",
        format!("state answered: {}", st.stdout.trim()),
    )
}

/// Live processes running `exe`.
fn running(exe: &Path) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .filter(|pid| crate::reaper::alive(*pid))
        .collect()
}

fn timeout(ctx: &mut Ctx) -> CaseResult {
    need_hooks(ctx, &["createRuntime"])?;
    let clause = "config.hooks.timeout";
    let rig = Rig::new(ctx)?;
    let mut slow = Hook::default();
    slow.set_path(rig.probe.clone());
    slow.set_args(Some(vec!["probe".into(), "sleep".into(), "10".into()]));
    slow.set_timeout(Some(1));
    let mut h = Hooks::default();
    h.set_create_runtime(Some(vec![slow]));
    let spec = rig.spec(ctx, h, &["/probe".into(), "true".into()]);
    rig.write(&spec)?;
    let id = ctx.new_id();
    let (out, _io) = ctx.create_raw(&id, &rig.bundle, &CreateOpts::default())?;
    check(
        out.duration < Duration::from_secs(5),
        clause,
        "create to give up on the hook about 1 s after it started (timeout 1)",
        format!("create took {} ms", out.duration.as_millis()),
    )?;
    check(
        !out.status.success(),
        "runtime.lifecycle.create-runtime-fail",
        "create to fail when its createRuntime hook was aborted",
        "create succeeded",
    )?;
    let left = running(&rig.probe);
    check(
        left.iter().all(|p| gone(*p, Duration::from_millis(500))),
        clause,
        "the timed-out hook to be aborted (killed)",
        format!("hook processes still running: {left:?}"),
    )?;
    crate::cases::create::expect_no_container(ctx, &id)
}
