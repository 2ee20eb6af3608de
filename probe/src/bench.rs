//! `probe bench WORKLOAD`: the isolation-overhead workloads. The harness runs
//! the same binary inside a container and directly on the host and compares
//! the nanoseconds per operation of the two. The output type is shared with
//! the harness, which parses it.

use serde::{Deserialize, Serialize};

/// Bump when a field changes meaning.
pub const BENCH_SCHEMA: u32 = 1;

/// What `probe bench` prints: one JSON object on one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchOutput {
    pub schema: u32,
    /// The workload's name, as given on the command line.
    pub workload: String,
    /// What one operation is, in words ("getppid syscall", "64 KiB pwrite + pread").
    pub op: String,
    /// Operations in each batch, after calibration.
    pub ops_per_batch: u64,
    /// Nanoseconds per operation, one value per measured batch.
    pub ns_per_op: Vec<f64>,
}

mod args;
mod os;
mod workloads;

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

pub use args::{parse_args, ArgError, BenchArgs};
use workloads::Batch;
pub use workloads::Workload;

/// Why a workload could not be measured: what failed and the errno (or the
/// reason, when there is none), e.g. `open /tmp/probe-bench-open: EACCES`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(String);

impl Failure {
    /// `what` failed with the OS error `err`.
    fn os(what: impl fmt::Display, err: &io::Error) -> Self {
        Failure(format!("{what}: {}", error_text(err)))
    }

    fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }

    /// Keeps a cleanup failure next to the failure that came first.
    fn and_cleanup(self, cleanup: Failure) -> Self {
        Failure(format!("{}; cleaning up then failed too: {}", self.0, cleanup.0))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// The errno name of `err`, or its text when it carries no errno (a closed
/// connection seen by `read_exact`, say), which `EIO` would misname.
fn error_text(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(_) => crate::errno::io_error_name(err),
        None => err.to_string(),
    }
}

/// Prepares the workload, measures it and cleans up what it made.
pub fn run(args: &BenchArgs) -> Result<BenchOutput, Failure> {
    let mut work = workloads::prepare(args)?;
    let (ops_per_batch, ns_per_op) = measure_and_clean(work.as_mut(), args.batches, args.batch_ms)?;
    Ok(BenchOutput {
        schema: BENCH_SCHEMA,
        workload: args.workload.name().to_string(),
        op: args.workload.op().to_string(),
        ops_per_batch,
        ns_per_op,
    })
}

/// [`measure`] with the real clock, then `cleanup`, also when measuring
/// failed.
fn measure_and_clean(work: &mut dyn Batch, batches: u32, batch_ms: u64) -> Result<(u64, Vec<f64>), Failure> {
    let mut time_batch = |ops: u64| -> Result<Duration, Failure> {
        let start = Instant::now();
        work.run(ops)?;
        Ok(start.elapsed())
    };
    let measured = measure(Duration::from_millis(batch_ms), batches, &mut time_batch);
    match (measured, work.cleanup()) {
        (Ok(m), Ok(())) => Ok(m),
        (Err(first), Ok(())) => Err(first),
        (Ok(_), Err(cleanup)) => Err(cleanup),
        (Err(first), Err(cleanup)) => Err(first.and_cleanup(cleanup)),
    }
}

/// Doubling stops here even if batches still take no measurable time (a
/// clock that does not move), so calibration always ends.
const MAX_CALIBRATION_OPS: u64 = 1 << 40;

/// Operations per batch so that one batch takes about `target`: from one op,
/// double until a batch takes at least `target / 8` (long enough to time
/// well), time that count once more and keep the shorter time (a hiccup
/// only ever lengthens a batch, and would otherwise shrink every batch
/// after it), then scale linearly to `target`; never fewer than one.
/// `time_batch(n)` runs `n` operations and returns how long they took.
pub fn calibrate<E>(target: Duration, time_batch: &mut impl FnMut(u64) -> Result<Duration, E>) -> Result<u64, E> {
    let mut ops: u64 = 1;
    loop {
        let took = time_batch(ops)?;
        if took >= target / 8 || ops >= MAX_CALIBRATION_OPS {
            let took = took.min(time_batch(ops)?);
            if took.is_zero() {
                return Ok(ops);
            }
            let scaled = u128::from(ops) * target.as_nanos() / took.as_nanos();
            return Ok(u64::try_from(scaled).unwrap_or(u64::MAX).max(1));
        }
        ops *= 2;
    }
}

/// Calibrates, runs one unmeasured warm-up batch, then `batches` measured
/// ones. Returns the ops per batch and the nanoseconds per op of each batch.
pub fn measure<E>(
    target: Duration,
    batches: u32,
    time_batch: &mut impl FnMut(u64) -> Result<Duration, E>,
) -> Result<(u64, Vec<f64>), E> {
    let ops = calibrate(target, time_batch)?;
    time_batch(ops)?;
    let mut ns_per_op = Vec::new();
    for _ in 0..batches {
        let took = time_batch(ops)?;
        ns_per_op.push(took.as_nanos() as f64 / ops as f64);
    }
    Ok((ops, ns_per_op))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch "takes" `ns_per_op` nanoseconds per op; the calls are logged.
    fn fake_clock(ns_per_op: u64, calls: &mut Vec<u64>) -> impl FnMut(u64) -> Result<Duration, ()> + '_ {
        move |ops| {
            calls.push(ops);
            Ok(Duration::from_nanos(ops * ns_per_op))
        }
    }

    #[test]
    fn calibration_doubles_then_scales_to_the_target() {
        let mut calls = Vec::new();
        let ops = calibrate(Duration::from_millis(20), &mut fake_clock(1_000, &mut calls)).unwrap();
        // 4096 ops take 4.096 ms, the first batch >= 2.5 ms; 20 ms is 20000 ops.
        assert_eq!(ops, 20_000);
        assert_eq!(calls.len(), 14, "{calls:?}");
        assert_eq!(calls.first(), Some(&1));
        assert_eq!(calls[12..], [4096, 4096], "the last count is timed twice");
        assert!(calls[..13].windows(2).all(|w| w[1] == 2 * w[0]));
    }

    #[test]
    fn a_hiccup_in_calibration_does_not_shrink_the_batches() {
        // The first timing of 4096 ops is stalled 10x; the retime is not.
        let mut stalled = false;
        let mut clock = |ops: u64| -> Result<Duration, ()> {
            let mut ns = ops * 1_000;
            if ops == 4096 && !stalled {
                stalled = true;
                ns *= 10;
            }
            Ok(Duration::from_nanos(ns))
        };
        assert_eq!(calibrate(Duration::from_millis(20), &mut clock).unwrap(), 20_000);
    }

    #[test]
    fn calibration_keeps_at_least_one_op() {
        let mut calls = Vec::new();
        // One op takes 50 ms, longer than the whole batch should.
        let ops = calibrate(Duration::from_millis(20), &mut fake_clock(50_000_000, &mut calls)).unwrap();
        assert_eq!((ops, calls), (1, vec![1, 1]));
    }

    #[test]
    fn calibration_ends_when_the_clock_does_not_move() {
        let mut calls = Vec::new();
        let ops = calibrate(Duration::from_millis(20), &mut fake_clock(0, &mut calls)).unwrap();
        assert_eq!(ops, MAX_CALIBRATION_OPS);
        assert_eq!(calls.len(), 42);
    }

    #[test]
    fn calibration_passes_failures_on() {
        let mut n = 0;
        let mut failing = |ops: u64| {
            n += 1;
            if ops >= 4 {
                Err("boom")
            } else {
                Ok(Duration::from_nanos(ops))
            }
        };
        assert_eq!(calibrate(Duration::from_millis(1), &mut failing), Err("boom"));
        assert_eq!(n, 3);
    }

    #[test]
    fn measure_warms_up_once_then_times_each_batch() {
        let mut calls = Vec::new();
        let (ops, samples) = measure(Duration::from_millis(2), 3, &mut fake_clock(250, &mut calls)).unwrap();
        // 1024 ops take 256 us, the first batch >= 250 us; 2 ms is 8000 ops.
        assert_eq!(ops, 8_000);
        assert_eq!(samples, vec![250.0; 3]);
        let after_calibration = &calls[calls.len() - 4..];
        assert_eq!(after_calibration, [8_000; 4], "one warm-up and three measured batches");
    }

    #[test]
    fn failures_name_the_errno_or_the_reason() {
        let err = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(Failure::os("open /x", &err).to_string(), "open /x: EACCES");
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer");
        assert_eq!(
            Failure::os("read", &eof).to_string(),
            "read: failed to fill whole buffer"
        );
        let both = Failure::new("pread: EIO").and_cleanup(Failure::new("remove /x: EROFS"));
        assert_eq!(
            both.to_string(),
            "pread: EIO; cleaning up then failed too: remove /x: EROFS"
        );
    }
}
