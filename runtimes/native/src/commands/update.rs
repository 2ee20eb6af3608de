//! `native update [-r FILE|-] [--memory N] [--pids-limit N] ... ID`: new
//! resource limits, as containerd (`-r -`) and podman use it.

use std::io::Read;
use std::path::PathBuf;

use container::state::Store;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    /// linux.resources as JSON, from a file or `-` for stdin.
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long, short = 'm', allow_negative_numbers = true)]
    pub memory: Option<i64>,
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, in bytes.
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<i64>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    pub id: String,
}

/// The resources document: `-r` first, then each flag on top.
fn resources(a: &Args) -> anyhow::Result<Value> {
    let mut v = match &a.resources {
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("--resources {}: {e}", p.display()))?;
            }
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--resources: not JSON: {e}"))?
        }
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    if let Some(x) = a.memory {
        set("memory", "limit", json!(x));
    }
    if let Some(x) = a.memory_reservation {
        set("memory", "reservation", json!(x));
    }
    if let Some(x) = a.memory_swap {
        set("memory", "swap", json!(x));
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", json!(x));
    }
    if let Some(x) = a.cpu_shares {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", json!(x));
    }
    Ok(v)
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let v = resources(&a)?;
    // The same checks create makes, naming the field and value.
    container::config::precheck(&json!({"linux": {"resources": v.clone()}}))?;
    let r: oci_spec::runtime::LinuxResources =
        serde_json::from_value(v).map_err(|e| anyhow::anyhow!("linux.resources: {e}"))?;
    container::launch::update(store, &a.id, &r)?;
    Ok(0)
}
