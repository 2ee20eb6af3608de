//! Flags every verb that drives runtimes on this host takes, and what they
//! come to.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct HostArgs {
    /// The probe binary (default: beside the harness).
    #[arg(long)]
    pub probe: Option<PathBuf>,
    /// Where case directories, bundles and state roots are made (default:
    /// the temp directory).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// On a hybrid cgroup host, run in a private mount namespace without the
    /// cgroup2 mount, so runtimes that refuse hybrid mode (crun 1.8) can be
    /// checked against a v1 host.
    #[arg(long)]
    pub hybrid_as_v1: bool,
}

/// The host side of a run, ready.
pub struct Host {
    pub probe: PathBuf,
    pub workdir: PathBuf,
}

impl HostArgs {
    /// Hides the cgroup2 mount when asked (call it before any thread
    /// exists: the mount namespace is per thread) and finds the probe.
    pub fn prepare(&self) -> anyhow::Result<Host> {
        if self.hybrid_as_v1 {
            harness::host::hide_hybrid_cgroup2().context("--hybrid-as-v1: hiding the cgroup2 mount")?;
        }
        let probe = match &self.probe {
            Some(p) => p.clone(),
            None => harness::find_probe()
                .context("the probe binary is not beside the harness; build it with `cargo build` or pass --probe")?,
        };
        Ok(Host {
            probe,
            workdir: self.workdir.clone().unwrap_or_else(std::env::temp_dir),
        })
    }
}

/// `--timeout` in seconds, which must be a positive number.
pub fn timeout(secs: f64) -> anyhow::Result<Duration> {
    if !(secs > 0.0 && secs.is_finite()) {
        bail!("--timeout must be a positive number of seconds, got {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}
