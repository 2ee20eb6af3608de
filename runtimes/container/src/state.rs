//! Container state on disk (`<root>/<id>/state.json`) and the lifecycle's
//! rules: which operation is legal in which status lives here, once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {id:?}: {reason}")]
    BadId { id: String, reason: &'static str },
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: cannot {op}")]
    Illegal {
        id: String,
        status: Status,
        op: &'static str,
    },
    #[error("state of {id:?} at {path}: {reason}")]
    Io { id: String, path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// runtime.md, State: `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

impl Status {
    /// runtime.md: start on a container that is not created is an error.
    pub fn can_start(self) -> bool {
        self == Status::Created
    }

    /// runtime.md: kill needs created or running (paused takes signals too).
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    /// runtime.md: delete needs stopped (unless forced).
    pub fn can_delete(self) -> bool {
        self == Status::Stopped
    }

    pub fn can_exec(self) -> bool {
        self == Status::Running
    }

    pub fn can_pause(self) -> bool {
        self == Status::Running
    }

    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
}

/// What is kept between invocations. The OCI state document is derived
/// from it (`oci()`), with the status computed fresh each time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat), so a recycled pid
    /// is not taken for the container.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// Cgroup directories the runtime made, to remove on delete.
    pub cgroup_paths: Vec<PathBuf>,
    /// `linux.cgroupsPath` as configured, and the runtime's own
    /// /proc/self/cgroup at create: together they resolve the same cgroups
    /// again in a later invocation (`update`), whatever cgroup that runs in.
    #[serde(default)]
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub creator_cgroup: String,
    /// Set once `start` ran; a live process without it is still created.
    pub started: bool,
    pub paused: bool,
}

/// Validates a container id: what runc accepts, and safe as a file name.
pub fn check_id(id: &str) -> Result<()> {
    let bad = |reason| Error::BadId { id: id.into(), reason };
    if id.is_empty() {
        return Err(bad("must not be empty"));
    }
    if id == "." || id == ".." {
        return Err(bad("must not be . or .."));
    }
    if id.len() > 1024 {
        return Err(bad("is longer than 1024 bytes"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c)) {
        return Err(bad("may only hold letters, digits and _ + - ."));
    }
    Ok(())
}

/// Start time of a process, or `None` when it is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, starttime field 22.
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The state directory tree under `--root`.
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

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn fifo(&self, id: &str) -> PathBuf {
        self.dir(id).join("exec.fifo")
    }

    fn io(&self, id: &str, path: &Path, e: impl std::fmt::Display) -> Error {
        Error::Io {
            id: id.into(),
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// Claims `id`: the directory's creation is the uniqueness check.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        std::fs::create_dir_all(&self.root).map_err(|e| self.io(id, &self.root, e))?;
        let d = self.dir(id);
        match std::fs::create_dir(&d) {
            Ok(()) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(id.into())),
            Err(e) => Err(self.io(id, &d, e)),
        }
    }

    /// Writes the record atomically (rename over the old one).
    pub fn save(&self, r: &Record) -> Result<()> {
        self.save_as(&r.id, r)
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        self.load_as(id)
    }

    /// Writes `id`'s state file atomically from any record type: the other
    /// bundled runtimes keep records of their own in the same layout.
    pub fn save_as<T: Serialize>(&self, id: &str, r: &T) -> Result<()> {
        let d = self.dir(id);
        let tmp = d.join("state.json.tmp");
        let text = serde_json::to_vec(r).map_err(|e| self.io(id, &tmp, e))?;
        std::fs::write(&tmp, text).map_err(|e| self.io(id, &tmp, e))?;
        let path = d.join("state.json");
        std::fs::rename(&tmp, &path).map_err(|e| self.io(id, &path, e))
    }

    /// Reads `id`'s state file as any record type; `NotFound` when absent.
    pub fn load_as<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T> {
        check_id(id)?;
        let path = self.dir(id).join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(id.into())),
            Err(e) => return Err(self.io(id, &path, e)),
        };
        serde_json::from_slice(&text).map_err(|e| self.io(id, &path, e))
    }

    /// Writes `name` (a file beside `state.json`) atomically.
    pub fn save_file<T: Serialize>(&self, id: &str, name: &str, r: &T) -> Result<()> {
        let path = self.dir(id).join(name);
        let tmp = self.dir(id).join(format!("{name}.tmp"));
        let text = serde_json::to_vec(r).map_err(|e| self.io(id, &tmp, e))?;
        std::fs::write(&tmp, text).map_err(|e| self.io(id, &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.io(id, &path, e))
    }

    /// Reads `name` beside `state.json`; `None` when absent or unreadable
    /// (a half-written file of a killed runtime).
    pub fn load_file<T: serde::de::DeserializeOwned>(&self, id: &str, name: &str) -> Option<T> {
        check_id(id).ok()?;
        let text = std::fs::read(self.dir(id).join(name)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Whether `id`'s state directory exists, state file or not.
    pub fn has_dir(&self, id: &str) -> bool {
        check_id(id).is_ok() && self.dir(id).is_dir()
    }

    /// Removes the container's directory.
    pub fn remove(&self, id: &str) -> Result<()> {
        let d = self.dir(id);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(id, &d, e)),
        }
    }

    /// Ids with a state file, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.root)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("state.json").exists())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The status now: stopped once the process is gone (or its pid was
    /// recycled), created until `start` ran, else running or paused.
    pub fn status(&self, r: &Record) -> Status {
        if r.pid <= 0 || start_time(r.pid) != Some(r.pid_start) {
            return Status::Stopped;
        }
        if !r.started {
            return Status::Created;
        }
        if r.paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The OCI state document of runtime.md.
    pub fn oci(&self, r: &Record) -> serde_json::Value {
        let status = self.status(r);
        let mut v = serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": r.id,
            "status": status,
            "bundle": r.bundle,
            "rootfs": r.rootfs,
            "created": r.created,
            "owner": "",
        });
        // runtime.md: pid is required while created or running.
        if status != Status::Stopped {
            v["pid"] = serde_json::json!(r.pid);
        } else {
            v["pid"] = serde_json::json!(0);
        }
        if !r.annotations.is_empty() {
            v["annotations"] = serde_json::json!(r.annotations);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            pid: std::process::id() as i32,
            pid_start: start_time(std::process::id() as i32).unwrap(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            annotations: BTreeMap::new(),
            cgroup_paths: vec![],
            cgroups_path: None,
            creator_cgroup: String::new(),
            started: false,
            paused: false,
        }
    }

    #[test]
    fn ids_are_checked() {
        check_id("abc-1.2_x+y").unwrap();
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        let e = check_id("a/b").unwrap_err().to_string();
        assert!(e.contains("\"a/b\""), "{e}");
    }

    #[test]
    fn claim_is_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path());
        s.claim("one").unwrap();
        assert!(matches!(s.claim("one"), Err(Error::Exists(_))));
    }

    #[test]
    fn status_follows_the_process_and_start() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path());
        s.claim("c").unwrap();
        let mut r = record("c");
        assert_eq!(s.status(&r), Status::Created);
        r.started = true;
        assert_eq!(s.status(&r), Status::Running);
        r.pid_start += 1;
        assert_eq!(s.status(&r), Status::Stopped);
        s.save(&r).unwrap();
        assert_eq!(s.load("c").unwrap().pid_start, r.pid_start);
        assert_eq!(s.list(), vec!["c".to_string()]);
        let oci = s.oci(&r);
        assert_eq!(oci["status"], "stopped");
        assert!(oci.get("annotations").is_none());
        s.remove("c").unwrap();
        assert!(matches!(s.load("c"), Err(Error::NotFound(_))));
    }

    #[test]
    fn lifecycle_rules() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(Status::Created.can_kill() && Status::Running.can_kill());
        assert!(!Status::Stopped.can_kill());
        assert!(Status::Stopped.can_delete());
        assert!(!Status::Created.can_delete());
    }
}
