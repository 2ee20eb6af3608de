//! The native runtime is the harness's oracle: the whole conformance suite
//! must pass on it. A failure is rerun once, since two cases read the
//! kernel log, whose rate limit the host shares; failing twice is real.

use std::time::Duration;

use harness::results::Status;
use harness::runner::{self, Options};
use harness::runtime::Runtime;

#[test]
fn the_whole_suite_passes_on_native() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    let timeout = Duration::from_secs(10);
    let rt = Runtime::resolve(env!("CARGO_BIN_EXE_native"), vec![], timeout).unwrap();
    let probe = harness::find_probe().expect("the probe is built beside the test (cargo build)");
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        jobs: 2,
        workdir: work.path().to_path_buf(),
        timeout,
        command: vec!["runtimes/native/tests/conform.rs".into()],
    };
    let all = harness::cases::all();
    let (r, still) = runner::run_confirming_failures(&all, &rt, &probe, &opts, &|_| false).unwrap();
    assert_eq!(r.cases.len(), all.len());
    assert!(still.is_empty(), "failed on native twice: {still:#?}");
    // Skips only for what this host lacks, never for the runtime.
    for c in r.cases.iter().filter(|c| c.status == Status::Skipped) {
        assert!(
            !c.message.contains("features"),
            "{} skipped by native's own features: {}",
            c.id,
            c.message
        );
    }
}
