//! The OCI runtime's command line (runc's), as the server calls it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::handlers::Handler;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("runtime {binary}: {verb} {id}: {source}")]
    Spawn {
        binary: PathBuf,
        verb: &'static str,
        id: String,
        source: std::io::Error,
    },
    #[error("runtime {binary}: {verb} {id} failed ({status}): {stderr}")]
    Failed {
        binary: PathBuf,
        verb: &'static str,
        id: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A handler's runtime with the state root the server gives it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub handler: Handler,
    pub root: PathBuf,
}

impl Runtime {
    pub fn new(handler: Handler, root: &Path) -> Runtime {
        Runtime {
            handler,
            root: root.to_path_buf(),
        }
    }

    /// `binary ARGS --root ROOT` with the verb's arguments to follow.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.handler.binary);
        c.args(&self.handler.args).arg("--root").arg(&self.root);
        c
    }

    fn run(&self, verb: &'static str, id: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let mut c = self.command();
        c.arg(verb).args(args).arg(id);
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let spawn = |source| Error::Spawn {
            binary: self.handler.binary.clone(),
            verb,
            id: id.into(),
            source,
        };
        let mut child = c.spawn().map_err(spawn)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).map_err(spawn)?;
        }
        let out = child.wait_with_output().map_err(spawn)?;
        if !out.status.success() {
            return Err(Error::Failed {
                binary: self.handler.binary.clone(),
                verb,
                id: id.into(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out)
    }

    /// The runtime's `features` document (runtime.md, Features), or None
    /// when it has none or cannot say.
    pub fn features(&self) -> Option<serde_json::Value> {
        let out = Command::new(&self.handler.binary)
            .args(&self.handler.args)
            .arg("features")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    pub fn start(&self, id: &str) -> Result<()> {
        self.run("start", id, &[], None).map(drop)
    }

    /// Sends `signal` (a name like "TERM" or "KILL") to the container's init.
    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let mut c = self.command();
        c.arg("kill").arg(id).arg(signal);
        let out = c.stdin(Stdio::null()).output().map_err(|source| Error::Spawn {
            binary: self.handler.binary.clone(),
            verb: "kill",
            id: id.into(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Failed {
            binary: self.handler.binary.clone(),
            verb: "kill",
            id: id.into(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    pub fn delete_force(&self, id: &str) -> Result<()> {
        self.run("delete", id, &["--force"], None).map(drop)
    }

    /// `update --resources -` with the OCI `linux.resources` object.
    pub fn update(&self, id: &str, resources: &serde_json::Value) -> Result<()> {
        let json = resources.to_string();
        self.run("update", id, &["--resources", "-"], Some(json.as_bytes()))
            .map(drop)
    }

    /// `exec ID CMD...` ready to be spawned (stdio left to the caller).
    pub fn exec_command(&self, id: &str, cmd: &[String]) -> Command {
        let mut c = self.command();
        c.arg("exec").arg(id).args(cmd);
        c
    }
}
