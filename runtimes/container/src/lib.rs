//! Setting up an OCI Linux container, shared by the bundled runtimes (the
//! native runtime, the sandbox's supervisor, the VM's guest agent). Each
//! concern is a module; OS effects go through seams the tests can replace.

pub mod cgroups;
pub mod config;
pub mod hooks;
pub mod launch;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod syscall;
pub mod time;
pub mod unix;

/// The runtime-spec version this library implements.
pub const OCI_VERSION: &str = "1.3.0";
pub mod features;

/// The features document (features.md).
pub fn features() -> serde_json::Value {
    features::document()
}
