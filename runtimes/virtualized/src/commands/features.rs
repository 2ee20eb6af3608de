//! `virtualized features`: the native document (the agent sets containers
//! up with the same library), plus annotations that declare what a VM
//! changes by design, each with its reason. The harness skips a case that
//! depends on such a thing when `org.ociharness.by-design.<key>` is here.

use serde_json::Value;

/// `org.ociharness.by-design.<key>` and why.
pub const BY_DESIGN: &[(&str, &str)] = &[
    (
        "host-pid",
        "the state's pid is the shim on the host, which stands for the container and ends with its status; \
         the container's process runs in the guest, so /proc/<pid> on the host shows the shim, not the container",
    ),
    (
        "host-cgroup",
        "the container's cgroups are in the guest's hierarchy (pure cgroup v2), on the guest's kernel: they do \
         not appear under the host's /sys/fs/cgroup, and their layout is the guest's, not the host's",
    ),
    (
        "host-files",
        "the bundle (rootfs and bind-mount sources) travels into the guest as a packed copy (over the agent channel, or in the initramfs of a cold boot), \
         with no shared filesystem: what the container writes or mounts stays in the guest, and host sockets \
         (a seccomp listenerPath) cannot be reached from it; createContainer and startContainer hooks run in \
         the container's namespaces, in the guest (a createContainer hook's host binary travels packed too), so \
         what they write stays in the guest as well (prestart, createRuntime, poststart and poststop hooks run \
         on the host)",
    ),
    (
        "host-namespaces",
        "the container's namespaces are the guest kernel's: the host's namespaces cannot be joined by path, and \
         namespaces the config does not list are the guest's, not the runtime's on the host",
    ),
    (
        "host-kernel",
        "the container runs on the guest's kernel: its seccomp audit records go to the guest's kernel log, not \
         the host's /dev/kmsg",
    ),
];

pub fn document() -> Value {
    let mut doc = container::features();
    doc["annotations"]["org.ociharness.vm"] = Value::from(
        "each container runs in its own QEMU micro-VM on the guest's kernel; an agent in the guest sets it up \
         with the native runtime's library",
    );
    for (key, why) in BY_DESIGN {
        doc["annotations"][format!("org.ociharness.by-design.{key}")] = Value::from(*why);
    }
    doc
}

pub fn run() -> anyhow::Result<i32> {
    println!("{}", serde_json::to_string_pretty(&document())?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_by_design_key_is_declared_with_its_reason() {
        let doc = document();
        for (key, why) in BY_DESIGN {
            assert_eq!(doc["annotations"][format!("org.ociharness.by-design.{key}")], *why);
        }
        // The native document is kept whole.
        assert_eq!(doc["ociVersionMax"], container::OCI_VERSION);
    }
}
