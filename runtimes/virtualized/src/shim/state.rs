//! The container's record on the host (`<root>/<id>/state.json`), written by
//! the shim alone (one writer, so no two processes race on it) and read by
//! every verb. The OCI state document is derived from it with the status
//! computed fresh: whatever the record says, a dead shim means stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use container::state::{start_time, Status};
use serde::{Deserialize, Serialize};

use crate::proto::ExitStatus;

/// The field of the state document that carries the boot breakdown.
pub const BOOT_KEY: &str = "org.ociharness.vm.boot";

pub use container::state::Error;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The shim: the host process that stands for the container and ends
    /// with its status.
    pub pid: i32,
    /// Start time of `pid`, so a recycled pid is not taken for the shim.
    pub pid_start: u64,
    pub qemu_pid: i32,
    /// Start time of `qemu_pid`, for the same reason.
    pub qemu_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// What the shim last saw: created, running, or stopped.
    pub status: Status,
    /// The container's process's end, once stopped.
    pub exit: Option<ExitStatus>,
    /// `vm::BootTimes`, as JSON.
    pub boot: serde_json::Value,
    /// For a further container of a pod: the pod's first container, whose
    /// shim owns the VM this one runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// The state tree under `--root`; directory names are container ids.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// The library's store over the same root, for its id checks and claim.
    pub fn inner(&self) -> container::state::Store {
        container::state::Store::new(&self.root)
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The shim's control socket.
    pub fn socket(&self, id: &str) -> PathBuf {
        self.dir(id).join("shim.sock")
    }

    /// QEMU's directory (its sockets, console log, initramfs).
    pub fn vm_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("vm")
    }

    /// Writes the record atomically, in the container library's layout.
    pub fn save(&self, r: &Record) -> Result<()> {
        self.inner().save_as(&r.id, r)
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        self.inner().load_as(id)
    }

    /// Ids with a state file, sorted.
    pub fn list(&self) -> Vec<String> {
        self.inner().list()
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        self.inner().remove(id)
    }
}

impl Record {
    /// Whether the shim recorded in this record still runs.
    pub fn shim_alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.pid_start)
    }

    /// The status now: the shim's word while it lives, stopped once it is
    /// gone (killed, or finished with the container).
    pub fn status(&self) -> Status {
        if !self.shim_alive() {
            return Status::Stopped;
        }
        self.status
    }

    /// The OCI state document of runtime.md. `pid` is the shim's: the guest's
    /// pids mean nothing on the host. The boot breakdown rides in a field of
    /// its own, not in `annotations`, which hold the config's alone
    /// (runtime.md: absent or empty when the config has none).
    pub fn oci(&self) -> serde_json::Value {
        self.oci_as(self.status())
    }

    /// The state document as it stands at a step of the lifecycle that
    /// names its status (what a hook of that step reads on stdin).
    pub fn oci_as(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": container::OCI_VERSION,
            "id": self.id,
            "status": status,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        if !self.boot.is_null() {
            v[BOOT_KEY] = self.boot.clone();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        let me = std::process::id() as i32;
        Record {
            id: id.into(),
            pid: me,
            pid_start: start_time(me).unwrap(),
            qemu_pid: 0,
            qemu_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            annotations: BTreeMap::new(),
            status: Status::Created,
            exit: None,
            boot: serde_json::json!({"ready_ms": 1500}),
            sandbox: None,
        }
    }

    #[test]
    fn a_live_shim_is_believed_and_a_dead_one_means_stopped() {
        let mut r = record("c");
        assert_eq!(r.status(), Status::Created);
        r.status = Status::Running;
        assert_eq!(r.oci()["status"], "running");
        assert_eq!(r.oci()["pid"], r.pid);
        r.pid_start += 1;
        assert_eq!(r.status(), Status::Stopped);
        assert_eq!(r.oci()["pid"], 0);
        // A hook's view names its step's status, whatever the shim is now.
        assert_eq!(r.oci_as(Status::Running)["status"], "running");
        assert_eq!(r.oci_as(Status::Running)["pid"], r.pid);
    }

    #[test]
    fn the_boot_breakdown_stays_out_of_the_annotations() {
        let r = record("c");
        let v = r.oci();
        assert!(v.get("annotations").is_none());
        assert_eq!(v[BOOT_KEY]["ready_ms"], 1500);
    }

    #[test]
    fn records_round_trip_and_unknown_ids_are_named() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path());
        s.inner().claim("c").unwrap();
        let mut r = record("c");
        r.exit = Some(ExitStatus::Signal(9));
        s.save(&r).unwrap();
        assert_eq!(s.load("c").unwrap().exit, Some(ExitStatus::Signal(9)));
        assert_eq!(s.list(), vec!["c".to_string()]);
        let e = s.load("nope").unwrap_err().to_string();
        assert!(e.contains("\"nope\" does not exist"), "{e}");
    }
}
