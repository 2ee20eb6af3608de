//! `pause`, `resume`, `ps`, `update`: not offered by this runtime.

/// The verbs that need the guest's cgroups or pids, which the agent does
/// not serve yet.
pub fn run(verb: &str) -> anyhow::Result<i32> {
    anyhow::bail!(
        "{verb}: the virtualized runtime does not support it (the container's cgroups and processes live in its VM, \
         and the agent does not serve {verb})"
    )
}
