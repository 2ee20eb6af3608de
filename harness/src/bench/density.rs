//! Density: K containers created and started at once, then held while the
//! harness measures what they cost: throughput (containers per second),
//! each container's create+start latency under that load, and memory per
//! container three ways: the proportional set size of every process the
//! runtime left running for them (container inits, shims, sandboxes,
//! gofers; all re-parented to the harness, a subreaper), the memory charged
//! to each container's cgroup, and the drop in the host's available memory.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::results::{Phase, Unit};
use super::timed::{self, Stdout};
use super::{descendants, interrupted, meminfo_kib, ns, turn_order, Error, Recorder, Subject, GIVE_UP_AFTER};
use crate::bundle::Bundle;
use crate::host::Host;
use crate::runtime::State;

/// Time given to the held containers to settle before memory is read.
const SETTLE: Duration = Duration::from_millis(250);

/// The `Pss:` line of /proc/PID/smaps_rollup, in KiB.
pub fn pss_kib(smaps_rollup: &str) -> Option<u64> {
    super::meminfo_kib(smaps_rollup, "Pss")
}

/// The memory cgroup path of a process, from /proc/PID/cgroup: the v1
/// `memory` line, else the v2 `0::` line.
pub fn memory_cgroup(proc_cgroup: &str) -> Option<(bool, String)> {
    let mut v2 = None;
    for l in proc_cgroup.lines() {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        if ctrls.split(',').any(|c| c == "memory") {
            return Some((true, path.to_string()));
        }
        if ctrls.is_empty() {
            v2 = Some((false, path.to_string()));
        }
    }
    v2
}

/// Memory charged to the cgroup of process `pid`, in KiB.
fn cgroup_kib(host: &Host, pid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let (v1, path) = memory_cgroup(&text)?;
    let rel = path.trim_start_matches('/');
    let file: PathBuf = if v1 {
        host.cgroup_v1.get("memory")?.join(rel).join("memory.usage_in_bytes")
    } else {
        host.cgroup_v2.as_ref()?.join(rel).join("memory.current")
    };
    let bytes: f64 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    Some(bytes / 1024.0)
}

fn available_kib() -> Option<f64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_kib(&m, "MemAvailable").map(|v| v as f64)
}

struct Round {
    throughput: f64,
    latencies: Vec<Duration>,
    pss_kib: f64,
    cgroup_kib: Vec<f64>,
    host_kib: Option<f64>,
}

/// Deletes `ids` in parallel (force: kill, then remove).
fn teardown(s: &Subject, ids: &[String]) {
    std::thread::scope(|sc| {
        for chunk in ids.chunks(ids.len().div_ceil(4).max(1)) {
            sc.spawn(move || {
                for id in chunk {
                    s.discard(id);
                }
            });
        }
    });
}

fn round(s: &mut Subject, held: &Bundle, k: usize, host: &Host) -> Result<Round, String> {
    let ids: Vec<String> = (0..k).map(|_| s.id("d")).collect();
    let before = descendants();
    let avail_before = available_kib();
    let barrier = Barrier::new(k);
    let driver = &s.driver;
    let bundle_dir: OsString = held.dir.clone().into_os_string();
    let outcomes: Vec<Result<(Instant, Instant), String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let barrier = &barrier;
                let bundle_dir = bundle_dir.clone();
                let err = s.dir.join(format!("density-{n}.err"));
                sc.spawn(move || {
                    barrier.wait();
                    let t0 = Instant::now();
                    let args = [OsString::from("--bundle"), bundle_dir, OsString::from(id)];
                    for (verb, args) in [("create", &args[..]), ("start", &args[2..])] {
                        let t = timed::verb(driver, verb, args, Stdout::Null, &err).map_err(|e| e.to_string())?;
                        if !t.ok() {
                            return Err(format!("{id}: {verb}: {}: {}", t.status, t.reason));
                        }
                    }
                    Ok((t0, Instant::now()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("measuring thread panicked".into())))
            .collect()
    });
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    if let Some(first) = failed.first() {
        let msg = format!("{} of {k} containers did not start; first: {first}", failed.len());
        teardown(s, &ids);
        return Err(msg);
    }
    let spans: Vec<(Instant, Instant)> = outcomes.into_iter().flatten().collect();
    let first = spans.iter().map(|s| s.0).min().expect("k > 0");
    let last = spans.iter().map(|s| s.1).max().expect("k > 0");
    let latencies = spans.iter().map(|(a, b)| *b - *a).collect();
    let throughput = k as f64 / (last - first).as_secs_f64().max(1e-9);

    std::thread::sleep(SETTLE);
    let new: Vec<i32> = descendants().difference(&before).copied().collect();
    let pss: u64 = new
        .iter()
        .filter_map(|p| pss_kib(&std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok()?))
        .sum();
    let host_kib = match (avail_before, available_kib()) {
        (Some(b), Some(a)) => Some((b - a) / k as f64),
        _ => None,
    };
    let mut cgroup = Vec::new();
    for id in &ids {
        let pid = driver
            .state(id)
            .ok()
            .and_then(|o| State::parse(&o.stdout).ok())
            .and_then(|st| st.pid)
            .unwrap_or(0);
        if pid > 0 {
            if let Some(kib) = cgroup_kib(host, pid as i32) {
                cgroup.push(kib);
            }
        }
    }
    teardown(s, &ids);
    Ok(Round {
        throughput,
        latencies,
        pss_kib: pss as f64 / k as f64,
        cgroup_kib: cgroup,
        host_kib,
    })
}

pub(super) fn run(subjects: &mut [Subject], rec: &mut Recorder) -> Result<(), Error> {
    let k = rec.options.density;
    if k == 0 {
        return Ok(());
    }
    let probe = rec.options.probe.clone();
    let held: Vec<Bundle> = subjects
        .iter()
        .map(|s| s.bundle("held", &s.spec(&["/probe", "sleep", "inf"]), &probe))
        .collect::<Result<_, _>>()?;
    let host = Host::detect();
    let mut consecutive = vec![0usize; subjects.len()];
    for r in 0..rec.options.density_rounds {
        for i in turn_order(subjects.len(), r) {
            if interrupted() {
                return Ok(());
            }
            if consecutive[i] >= GIVE_UP_AFTER {
                continue;
            }
            let s = &mut subjects[i];
            rec.warm();
            match round(s, &held[i], k, &host) {
                Ok(m) => {
                    consecutive[i] = 0;
                    let name = s.name.clone();
                    let p = |rec: &mut Recorder, id: &str, unit, what: &str, v: f64| {
                        rec.push(id, Phase::Density, &name, unit, what, v)
                    };
                    p(
                        rec,
                        "density.throughput",
                        Unit::ContainersPerSec,
                        "containers created and started per second, all at once",
                        m.throughput,
                    );
                    for l in &m.latencies {
                        p(
                            rec,
                            "density.start",
                            Unit::Ns,
                            "one container's create + start while the others start too",
                            ns(*l),
                        );
                    }
                    p(
                        rec,
                        "density.pss",
                        Unit::Kib,
                        "proportional set size of the processes left running, per container",
                        m.pss_kib,
                    );
                    for c in &m.cgroup_kib {
                        p(
                            rec,
                            "density.cgroup",
                            Unit::Kib,
                            "memory charged to the container's cgroup",
                            *c,
                        );
                    }
                    if m.cgroup_kib.len() < k {
                        rec.missing(
                            &name,
                            Phase::Density,
                            format!("round {}: density.cgroup", r + 1),
                            format!(
                                "the memory cgroup of {} of {k} containers could not be read",
                                k - m.cgroup_kib.len()
                            ),
                        );
                    }
                    if let Some(h) = m.host_kib {
                        p(
                            rec,
                            "density.host",
                            Unit::Kib,
                            "drop in the host's MemAvailable, per container",
                            h,
                        );
                    }
                }
                Err(reason) => {
                    consecutive[i] += 1;
                    rec.missing(&s.name, Phase::Density, format!("round {}", r + 1), reason);
                }
            }
            rec.quiesce();
            let name = subjects[i].name.clone();
            rec.step(format!("density round {} {name}", r + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cgroup_lines() {
        let v1 = "12:pids:/a\n4:memory:/hbx-d1\n0::/\n";
        assert_eq!(memory_cgroup(v1), Some((true, "/hbx-d1".into())));
        let v2 = "0::/system.slice/c1\n";
        assert_eq!(memory_cgroup(v2), Some((false, "/system.slice/c1".into())));
        let both = "5:cpu,memory:/x\n0::/y\n";
        assert_eq!(memory_cgroup(both), Some((true, "/x".into())));
        assert_eq!(memory_cgroup(""), None);
    }

    #[test]
    fn pss_from_smaps_rollup() {
        let t = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  1200 kB\nPss:   345 kB\nPss_Anon: 100 kB\n";
        assert_eq!(pss_kib(t), Some(345));
    }
}
