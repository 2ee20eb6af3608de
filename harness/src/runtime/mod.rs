//! The runtime driver: speaks the runc command line (the one containerd and
//! podman use) to any compatible binary, with a private `--root`, a timeout on
//! every operation, and the container's stdio on pipes the harness owns.

mod exec;
pub mod state;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use exec::{ContainerIo, ExitStatus, Output, StdinMode};
pub use state::State;

/// Errors of the driver itself, as opposed to a runtime answering "no".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("runtime {path}: {reason}")]
    NotUsable { path: PathBuf, reason: String },
    #[error("spawning {path} {verb}: {source}")]
    Spawn {
        path: PathBuf,
        verb: String,
        source: std::io::Error,
    },
    #[error("`{verb}` timed out after {secs:.1}s (the runtime was killed)")]
    Timeout { verb: String, secs: f64 },
    #[error("io on {what}: {source}")]
    Io { what: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error with a timeout charged to `verb`, as the caller names it
    /// (the spawner guesses it from the argument vector).
    pub fn in_verb(self, verb: &str) -> Error {
        match self {
            Error::Timeout { secs, .. } => Error::Timeout {
                verb: verb.to_string(),
                secs,
            },
            other => other,
        }
    }
}

/// A runtime binary and the global flags it always gets.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    /// Global flags placed before the verb, e.g. `--network=none` for runsc.
    pub global_args: Vec<String>,
    /// Upper bound for one operation.
    pub timeout: Duration,
}

impl Runtime {
    /// What the results say of this runtime: its path, version and flags.
    pub fn info(&self) -> crate::results::RuntimeInfo {
        crate::results::RuntimeInfo {
            path: self.path.display().to_string(),
            version: self.version(),
            args: self.global_args.clone(),
        }
    }

    /// Resolves `spec` (a path, or a name looked up in `PATH`) and checks that
    /// it is an executable regular file.
    pub fn resolve(spec: &str, global_args: Vec<String>, timeout: Duration) -> Result<Runtime> {
        let path = resolve_binary(spec)?;
        Ok(Runtime {
            path,
            global_args,
            timeout,
        })
    }

    /// First line of `--version`, or `unknown` when the runtime has none.
    pub fn version(&self) -> String {
        let out = exec::run_simple(&self.path, &["--version".into()], &[], None, self.timeout);
        match out {
            Ok(o) if o.status.success() => o.stdout.lines().next().unwrap_or("unknown").trim().to_string(),
            _ => "unknown".to_string(),
        }
    }

    /// A driver whose containers live under `root` (the runtime's `--root`).
    pub fn driver(&self, root: &Path) -> Driver {
        Driver {
            runtime: self.clone(),
            root: root.to_path_buf(),
            env: Vec::new(),
        }
    }
}

/// Runtimes this project ships, found beside the harness executable (cargo
/// builds them into the same directory).
pub const BUNDLED: &[&str] = &["native", "sandboxed", "virtualized"];

fn bundled(name: &str) -> Option<PathBuf> {
    if !BUNDLED.contains(&name) {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(name), dir.parent()?.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

fn resolve_binary(spec: &str) -> Result<PathBuf> {
    let not_usable = |p: &Path, reason: String| Error::NotUsable {
        path: p.to_path_buf(),
        reason,
    };
    let candidate = if spec.contains('/') {
        PathBuf::from(spec)
    } else if let Some(p) = bundled(spec) {
        p
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(spec))
            .find(|p| p.is_file())
            .ok_or_else(|| not_usable(Path::new(spec), "not found in PATH".into()))?
    };
    let meta = std::fs::metadata(&candidate).map_err(|e| not_usable(&candidate, format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(not_usable(&candidate, "not a regular file".into()));
    }
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(not_usable(&candidate, "not executable".into()));
    }
    std::fs::canonicalize(&candidate).map_err(|e| not_usable(&candidate, e.to_string()))
}

/// One runtime with one private state root.
#[derive(Debug, Clone)]
pub struct Driver {
    pub runtime: Runtime,
    pub root: PathBuf,
    /// Added to the runtime's environment on every invocation.
    pub env: Vec<(String, String)>,
}

/// Options of `create` and `run`.
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub stdin: StdinMode,
    /// Extra verb flags (`--no-pivot`, `--preserve-fds N`...).
    pub extra: Vec<String>,
}

impl Driver {
    /// The full argument vector for `verb`: global flags, `--root`, verb, args.
    pub fn argv(&self, verb: &str, args: &[OsString]) -> Vec<OsString> {
        let mut v: Vec<OsString> = self.runtime.global_args.iter().map(OsString::from).collect();
        v.push("--root".into());
        v.push(self.root.clone().into_os_string());
        v.push(verb.into());
        v.extend(args.iter().cloned());
        v
    }

    /// Runs a verb whose output the harness reads itself (`state`, `kill`...).
    pub fn exec(&self, verb: &str, args: &[&OsStr]) -> Result<Output> {
        let args: Vec<OsString> = args.iter().map(|a| a.to_os_string()).collect();
        let argv = self.argv(verb, &args);
        self.exec_input(&argv, None).map_err(|e| e.in_verb(verb))
    }

    fn exec_input(&self, argv: &[OsString], input: Option<&[u8]>) -> Result<Output> {
        exec::run_simple(&self.runtime.path, argv, &self.env, input, self.runtime.timeout)
    }

    /// Runs a verb with `input` on its stdin (`exec --process -`, `update -r -`).
    pub fn exec_with_input(&self, verb: &str, args: &[&OsStr], input: &[u8]) -> Result<Output> {
        let args: Vec<OsString> = args.iter().map(|a| a.to_os_string()).collect();
        let argv = self.argv(verb, &args);
        self.exec_input(&argv, Some(input))
    }

    /// `create --bundle B [--pid-file F] [--console-socket S] ID`. The
    /// container inherits the pipes of the returned `ContainerIo` (or the
    /// console, with a console socket).
    pub fn create(&self, id: &str, bundle: &Path, opts: &CreateOpts) -> Result<(Output, ContainerIo)> {
        self.spawn_container("create", id, bundle, opts)
    }

    /// `run` in the foreground: returns when the container has exited, with
    /// the runtime's exit status standing for the process's.
    pub fn run(&self, id: &str, bundle: &Path, opts: &CreateOpts) -> Result<(Output, ContainerIo)> {
        self.spawn_container("run", id, bundle, opts)
    }

    fn spawn_container(&self, verb: &str, id: &str, bundle: &Path, opts: &CreateOpts) -> Result<(Output, ContainerIo)> {
        let mut args: Vec<OsString> = vec!["--bundle".into(), bundle.into()];
        if let Some(p) = &opts.pid_file {
            args.push("--pid-file".into());
            args.push(p.into());
        }
        if let Some(s) = &opts.console_socket {
            args.push("--console-socket".into());
            args.push(s.into());
        }
        args.extend(opts.extra.iter().map(OsString::from));
        args.push(id.into());
        let argv = self.argv(verb, &args);
        exec::run_container(
            &self.runtime.path,
            &argv,
            &self.env,
            opts.stdin.clone(),
            self.runtime.timeout,
        )
        .map_err(|e| e.in_verb(verb))
    }

    pub fn start(&self, id: &str) -> Result<Output> {
        self.exec("start", &[OsStr::new(id)])
    }

    pub fn state(&self, id: &str) -> Result<Output> {
        self.exec("state", &[OsStr::new(id)])
    }

    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<Output> {
        if all {
            self.exec("kill", &[OsStr::new("--all"), OsStr::new(id), OsStr::new(signal)])
        } else {
            self.exec("kill", &[OsStr::new(id), OsStr::new(signal)])
        }
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<Output> {
        if force {
            self.exec("delete", &[OsStr::new("--force"), OsStr::new(id)])
        } else {
            self.exec("delete", &[OsStr::new(id)])
        }
    }

    pub fn features(&self) -> Result<Output> {
        self.exec("features", &[])
    }
}
