//! The hypervisor side of the host: finding the guest kernel, probing KVM,
//! generating the initramfs (agent, modules, packed bundle) and driving QEMU
//! to a guest whose agent said `Ready`.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde::Serialize;

use crate::proto;

/// How QEMU runs the guest's CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// KVM when a probe found it usable (cached), else TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl Accel {
    /// `OCI_VM_ACCEL=kvm|tcg|auto` overrides what the caller asked for.
    pub fn with_env_override(self) -> Result<Accel> {
        match std::env::var("OCI_VM_ACCEL") {
            Ok(v) => match v.as_str() {
                "kvm" => Ok(Accel::Kvm),
                "tcg" => Ok(Accel::Tcg),
                "auto" | "" => Ok(Accel::Auto),
                _ => Err(Error::Config(format!("OCI_VM_ACCEL={v:?}: expected kvm, tcg or auto"))),
            },
            Err(_) => Ok(self),
        }
    }
}

/// What one container's VM is made of.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub id: String,
    /// Per-container host directory for QEMU's sockets, console log and
    /// initramfs.
    pub dir: PathBuf,
    /// The OCI bundle on the host (config.json + rootfs); packed into the
    /// initramfs.
    pub bundle: PathBuf,
    /// Guest RAM.
    pub memory_mib: u32,
    /// Guest CPUs, at least 1.
    pub cpus: u32,
    /// None: Debian's newest /boot/vmlinuz-*-cloud-amd64 (env `OCI_VM_KERNEL`
    /// overrides).
    pub kernel: Option<PathBuf>,
    /// Env `OCI_VM_ACCEL` overrides.
    pub accel: Accel,
}

/// Where a boot's time went. Host-side figures are milliseconds since the
/// spawn of QEMU began.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BootTimes {
    /// Building (or finding cached) initramfs archives, before the spawn.
    pub initramfs_ms: u64,
    /// Spawn → QEMU's process exec'd.
    pub exec_ms: u64,
    /// Spawn → the agent port's chardev socket connected.
    pub connected_ms: u64,
    /// Spawn → the agent's `Ready` read.
    pub ready_ms: u64,
    /// Machine type used (`microvm` or `q35`).
    pub machine: String,
    /// Accelerator used (`kvm` or `tcg`).
    pub accel: String,
    /// The guest's own account (its clock).
    pub guest: Option<proto::GuestBoot>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("vm: {0}")]
    Config(String),
    #[error("vm: guest kernel not found: {0}")]
    KernelNotFound(String),
    #[error("vm: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("vm: {0}")]
    Boot(String),
    #[error("vm: {0}")]
    Proto(#[from] proto::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A running guest: the QEMU child and the agent's channel.
#[derive(Debug)]
pub struct Vm {
    channel: UnixStream,
    qemu_pid: i32,
    times: BootTimes,
}

impl Vm {
    /// Spawns QEMU, connects the agent port's chardev socket and waits for
    /// the agent's `Ready`.
    pub fn boot(cfg: &VmConfig) -> Result<Vm> {
        Err(Error::Boot(format!("{}: booting is not implemented yet", cfg.id)))
    }

    /// The agent's channel: frames per [`proto`].
    pub fn channel(&self) -> &UnixStream {
        &self.channel
    }

    pub fn qemu_pid(&self) -> i32 {
        self.qemu_pid
    }

    pub fn boot_times(&self) -> &BootTimes {
        &self.times
    }

    /// SIGKILLs QEMU, reaps it and removes its sockets and files in the
    /// config's directory.
    pub fn kill(&mut self) {}
}
