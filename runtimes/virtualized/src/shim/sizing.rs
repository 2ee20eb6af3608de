//! The VM's size from the config: the container's memory limit plus what
//! the guest itself needs, and enough CPUs for its quota and its cpuset.

use oci_spec::runtime::Spec;

const MIB: i64 = 1 << 20;

/// Guest RAM without a memory limit.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// What the guest needs besides the container: kernel, agent, modules, and
/// the initramfs (with the packed bundle) held in RAM.
pub const GUEST_OVERHEAD_MIB: u32 = 192;
/// TCG runs every vCPU on a host thread: more than this only slows the boot.
pub const MAX_CPUS: u32 = 8;

/// (memory in MiB, CPUs) for the container of `spec`, on a host with
/// `host_cpus` online.
pub fn size(spec: &Spec, host_cpus: u32) -> (u32, u32) {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let memory = resources
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|&l| l > 0)
        .map(|l| {
            let mib = (l + MIB - 1) / MIB;
            u32::try_from(mib).unwrap_or(u32::MAX - GUEST_OVERHEAD_MIB) + GUEST_OVERHEAD_MIB
        })
        .unwrap_or(DEFAULT_MEMORY_MIB);
    let cpu = resources.and_then(|r| r.cpu().as_ref());
    let from_quota = cpu
        .and_then(|c| match (c.quota(), c.period()) {
            (Some(q), Some(p)) if q > 0 && p > 0 => Some((q as u64).div_ceil(p) as u32),
            _ => None,
        })
        .unwrap_or(1);
    // A cpuset names CPUs by number: the guest must have the highest one.
    let from_set = cpu
        .and_then(|c| c.cpus().as_deref())
        .and_then(highest_cpu)
        .map_or(1, |n| n + 1);
    let cpus = from_quota.max(from_set).clamp(1, host_cpus.clamp(1, MAX_CPUS));
    (memory, cpus)
}

/// The highest CPU of a list such as `0-2,5`.
fn highest_cpu(list: &str) -> Option<u32> {
    list.split(',')
        .filter_map(|part| {
            let part = part.trim();
            let last = part.rsplit('-').next()?;
            last.parse::<u32>().ok()
        })
        .max()
}

/// Online CPUs of the host.
pub fn host_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resources: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.0",
            "linux": {"resources": resources}
        }))
        .unwrap()
    }

    #[test]
    fn memory_is_the_limit_plus_the_guest() {
        assert_eq!(size(&spec(serde_json::json!({})), 2).0, DEFAULT_MEMORY_MIB);
        let s = spec(serde_json::json!({"memory": {"limit": 100 * MIB + 1}}));
        assert_eq!(size(&s, 2).0, 101 + GUEST_OVERHEAD_MIB);
        let s = spec(serde_json::json!({"memory": {"limit": -1}}));
        assert_eq!(size(&s, 2).0, DEFAULT_MEMORY_MIB);
    }

    #[test]
    fn cpus_cover_the_quota_and_the_cpuset_within_the_host() {
        assert_eq!(size(&spec(serde_json::json!({})), 2).1, 1);
        let s = spec(serde_json::json!({"cpu": {"quota": 150000, "period": 100000}}));
        assert_eq!(size(&s, 4).1, 2);
        let s = spec(serde_json::json!({"cpu": {"cpus": "0,1"}}));
        assert_eq!(size(&s, 4).1, 2);
        let s = spec(serde_json::json!({"cpu": {"cpus": "0-7"}}));
        assert_eq!(size(&s, 2).1, 2);
        assert_eq!(highest_cpu("0-2,5"), Some(5));
        assert_eq!(highest_cpu(""), None);
    }
}
