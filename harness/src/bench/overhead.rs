//! Isolation overhead: `probe bench WORKLOAD` runs inside a container of
//! each runtime and directly on the host, in turns, and each runtime's
//! nanoseconds per operation are reported as a ratio to the host's. File
//! workloads run on the container's rootfs and on a bind mount; on the host
//! they run in a directory of the same filesystem.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use probe::bench::{BenchOutput, BENCH_SCHEMA};

use super::results::{Phase, Unit, HOST};
use super::timed::{self, Stdout};
use super::{interrupted, turn_order, workdir_error, Error, Recorder, Subject, GIVE_UP_AFTER};
use crate::bundle::{Bundle, SpecExt};
use crate::runtime::CreateOpts;

/// Where a workload's files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A directory on the container's root filesystem.
    Rootfs,
    /// A bind mount of a host directory.
    Bind,
}

/// One isolation-overhead figure: a probe workload and where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// The metric is `overhead.<name>`.
    pub name: &'static str,
    /// The `probe bench` workload.
    pub probe: &'static str,
    pub place: Place,
}

const fn w(name: &'static str, probe: &'static str, place: Place) -> Workload {
    Workload { name, probe, place }
}

/// Every workload, in the order they run.
pub const WORKLOADS: &[Workload] = &[
    w("getpid", "getpid", Place::Rootfs),
    w("open-close", "open-close", Place::Rootfs),
    w("stat", "stat", Place::Rootfs),
    w("fork-exec", "fork-exec", Place::Rootfs),
    w("file-io-rootfs", "file-io", Place::Rootfs),
    w("file-io-bind", "file-io", Place::Bind),
    w("memory", "memory", Place::Rootfs),
    w("tcp-loopback", "tcp-loopback", Place::Rootfs),
    w("cpu", "cpu", Place::Rootfs),
];

pub fn workload(name: &str) -> Option<Workload> {
    WORKLOADS.iter().copied().find(|w| w.name == name)
}

/// Inside the container: the rootfs directory and the bind mount.
const IN_ROOTFS: &str = "/work";
const IN_BIND: &str = "/bind";
/// What `fork-exec` runs, relative to the directory the probe works in
/// (a copy of the probe is put there, inside and outside): the same lookup
/// on both sides.
const EXE: &str = "./probe";

fn probe_args(w: &Workload, batches: usize, batch_ms: u64, dir: &str) -> Vec<String> {
    [
        "bench",
        w.probe,
        "--batches",
        &batches.to_string(),
        "--batch-ms",
        &batch_ms.to_string(),
        "--dir",
        dir,
        "--exe",
        EXE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Parses the probe's line and checks it is what was asked for.
pub fn parse_output(stdout: &str, w: &Workload, batches: usize) -> Result<BenchOutput, String> {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let out: BenchOutput =
        serde_json::from_str(line).map_err(|e| format!("probe output is not a bench result ({e}): {line:.200}"))?;
    if out.schema != BENCH_SCHEMA || out.workload != w.probe {
        return Err(format!(
            "probe answered schema {} workload {:?}, asked schema {BENCH_SCHEMA} workload {:?}",
            out.schema, out.workload, w.probe
        ));
    }
    if out.ns_per_op.len() != batches || out.ns_per_op.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return Err(format!(
            "probe gave {} samples ({:?}), asked for {batches} positive ones",
            out.ns_per_op.len(),
            out.ns_per_op
        ));
    }
    Ok(out)
}

struct Setup {
    bundle: Bundle,
    bind_src: PathBuf,
}

fn setup(s: &Subject, probe: &Path) -> Result<Setup, Error> {
    let bind_src = s.dir.join("overhead-bind");
    let io = workdir_error;
    std::fs::create_dir_all(&bind_src).map_err(|e| io(&bind_src, e))?;
    let spec = s.spec(&["/probe", "true"]);
    let b = s.bundle("overhead", &spec, probe)?;
    for d in ["work", "bind"] {
        let p = b.rootfs().join(d);
        std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
    }
    let exe = b.rootfs().join("work").join(EXE.trim_start_matches("./"));
    std::fs::copy(probe, &exe).map_err(|e| io(&exe, e))?;
    Ok(Setup { bundle: b, bind_src })
}

/// The config of one workload run: a writable rootfs, the bind mount, the
/// probe's arguments.
fn write_config(s: &Subject, st: &Setup, args: &[String]) -> Result<(), Error> {
    let mut spec = s.spec(&[]);
    let mut argv = vec!["/probe".to_string()];
    argv.extend(args.iter().cloned());
    spec.set_args(&argv);
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(IN_BIND.into());
    m.set_typ(Some("bind".into()));
    m.set_source(Some(st.bind_src.clone()));
    m.set_options(Some(vec!["rbind".into(), "rw".into()]));
    spec.mounts_mut_or_default().push(m);
    st.bundle.write_spec(&spec).map_err(|source| Error::Bundle {
        runtime: s.name.clone(),
        source,
    })
}

fn in_container(
    s: &mut Subject,
    st: &Setup,
    w: &Workload,
    batches: usize,
    batch_ms: u64,
) -> Result<BenchOutput, String> {
    let dir = match w.place {
        Place::Rootfs => IN_ROOTFS,
        Place::Bind => IN_BIND,
    };
    write_config(s, st, &probe_args(w, batches, batch_ms, dir)).map_err(|e| e.to_string())?;
    let id = s.id("o");
    let r = s.driver.run(&id, &st.bundle.dir, &CreateOpts::default());
    s.discard(&id);
    let (out, io) = r.map_err(|e| e.to_string())?;
    if !out.status.success() {
        // A program states the cause of its failure first (usage text and
        // the like may follow).
        let why = io.stderr();
        let why = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no message)");
        return Err(format!("{}: {why}", out.status));
    }
    parse_output(&io.stdout(), w, batches)
}

fn on_host(
    probe: &Path,
    dir: &Path,
    err: &Path,
    w: &Workload,
    batches: usize,
    batch_ms: u64,
) -> Result<BenchOutput, String> {
    let args: Vec<OsString> = probe_args(w, batches, batch_ms, &dir.to_string_lossy())
        .into_iter()
        .map(OsString::from)
        .collect();
    let t = timed::run(
        probe,
        &args,
        &[],
        Stdout::Capture,
        err,
        std::time::Duration::from_secs(120),
    )
    .map_err(|e| e.to_string())?;
    if !t.ok() {
        return Err(format!("{}: {}", t.status, t.reason));
    }
    parse_output(&t.stdout, w, batches)
}

fn record(rec: &mut Recorder, runtime: &str, w: &Workload, out: &BenchOutput) {
    let what = format!("{}, ns per operation, one sample per batch", out.op);
    for v in &out.ns_per_op {
        rec.push(
            &format!("overhead.{}", w.name),
            Phase::Overhead,
            runtime,
            Unit::Ns,
            &what,
            *v,
        );
    }
}

pub(super) fn run(subjects: &mut [Subject], rec: &mut Recorder, work: &Path) -> Result<(), Error> {
    let probe = rec.options.probe.clone();
    let workloads = rec.options.workloads.clone();
    let (batches, batch_ms) = (rec.options.batches, rec.options.batch_ms);
    let setups: Vec<Setup> = subjects.iter().map(|s| setup(s, &probe)).collect::<Result<_, _>>()?;
    let host_dir = work.join("host-io");
    let host_exe = host_dir.join(EXE.trim_start_matches("./"));
    std::fs::create_dir_all(&host_dir)
        .and_then(|()| std::fs::copy(&probe, &host_exe).map(drop))
        .map_err(|source| workdir_error(&host_dir, source))?;
    let host_err = work.join("host-probe.err");
    let mut consecutive = vec![0usize; subjects.len()];
    for round in 0..rec.options.overhead_rounds {
        for (wi, w) in workloads.iter().enumerate() {
            if interrupted() {
                return Ok(());
            }
            match on_host(&probe, &host_dir, &host_err, w, batches, batch_ms) {
                Ok(out) => record(rec, HOST, w, &out),
                Err(reason) => rec.missing(
                    HOST,
                    Phase::Overhead,
                    format!("round {}: {}", round + 1, w.name),
                    reason,
                ),
            }
            rec.step(format!("overhead {} host", w.name));
            for i in turn_order(subjects.len(), round + wi) {
                if interrupted() {
                    return Ok(());
                }
                let s = &mut subjects[i];
                if consecutive[i] >= GIVE_UP_AFTER {
                    rec.step(format!("overhead {} {} (given up)", w.name, s.name));
                    continue;
                }
                match in_container(s, &setups[i], w, batches, batch_ms) {
                    Ok(out) => {
                        consecutive[i] = 0;
                        record(rec, &s.name.clone(), w, &out);
                    }
                    Err(reason) => {
                        // A workload that fails is that workload's problem;
                        // only runs that fail every workload in a row count
                        // towards giving up on the runtime.
                        consecutive[i] += 1;
                        rec.missing(
                            &s.name,
                            Phase::Overhead,
                            format!("round {}: {}", round + 1, w.name),
                            reason,
                        );
                        if consecutive[i] == GIVE_UP_AFTER {
                            rec.missing(
                                &s.name,
                                Phase::Overhead,
                                "the remaining workloads",
                                format!("given up after {GIVE_UP_AFTER} failures in a row"),
                            );
                        }
                    }
                }
                rec.quiesce();
                let name = subjects[i].name.clone();
                rec.step(format!("overhead {} {name}", w.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_checked_against_the_request() {
        let w = workload("getpid").unwrap();
        let good =
            r#"{"schema":1,"workload":"getpid","op":"getppid syscall","ops_per_batch":100,"ns_per_op":[50.0,51.5]}"#;
        assert_eq!(
            parse_output(&format!("noise\n{good}\n"), &w, 2).unwrap().ns_per_op,
            vec![50.0, 51.5]
        );
        assert!(parse_output(good, &w, 3).unwrap_err().contains("asked for 3"));
        let other = good.replace("\"getpid\"", "\"cpu\"");
        assert!(parse_output(&other, &w, 2).unwrap_err().contains("workload"));
        let zero = good.replace("50.0", "0.0");
        assert!(parse_output(&zero, &w, 2).is_err());
        assert!(parse_output("segfault", &w, 2)
            .unwrap_err()
            .contains("not a bench result"));
    }

    #[test]
    fn names_are_unique_and_file_io_runs_in_both_places() {
        for (i, a) in WORKLOADS.iter().enumerate() {
            assert!(WORKLOADS[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
        }
        assert_eq!(workload("file-io-bind").unwrap().place, Place::Bind);
        assert_eq!(workload("file-io-rootfs").unwrap().probe, "file-io");
        assert!(workload("nope").is_none());
    }
}
