//! `virtualized create [--bundle DIR] [--pid-file F] [--console-socket S] ID`:
//! checks the config on the host, then starts the container's shim, which
//! boots the VM and has the agent create the container. The shim's pid is
//! the container's; once the state is written, `create` commits and exits.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::Context;
use native::commands::create::Args;
use native::log::Logger;

use crate::shim::{self, state::Store, Sync};

/// A shim that holds a created container.
pub struct Launched {
    pub child: Child,
    pub pid: i32,
}

/// The annotations by which CRI implementations mark a pod's containers
/// (containerd's, then CRI-O's): the container-type key and its value for a
/// container that is not the sandbox, and the key that names the sandbox.
const POD_ANNOTATIONS: [(&str, &str, &str); 2] = [
    (
        "io.kubernetes.cri.container-type",
        "container",
        "io.kubernetes.cri.sandbox-id",
    ),
    (
        "io.kubernetes.cri-o.ContainerType",
        "container",
        "io.kubernetes.cri-o.SandboxID",
    ),
];

/// The pod sandbox whose VM the container joins, when its annotations say
/// it is a further container of a pod (Kata's reading of them); an
/// annotation that says so but names no sandbox is an error that names it.
pub fn pod_sandbox(
    id: &str,
    annotations: &std::collections::HashMap<String, String>,
) -> anyhow::Result<Option<String>> {
    for (type_key, member, sandbox_key) in POD_ANNOTATIONS {
        if annotations.get(type_key).map(String::as_str) != Some(member) {
            continue;
        }
        return match annotations.get(sandbox_key).map(String::as_str) {
            Some("") => {
                anyhow::bail!("annotation {sandbox_key} is empty, though {type_key} is {member:?}")
            }
            Some(s) if s == id => Ok(None),
            Some(s) => Ok(Some(s.to_string())),
            None => anyhow::bail!("annotation {type_key} is {member:?} but {sandbox_key} is missing"),
        };
    }
    Ok(None)
}

/// The checks the native runtime makes before it creates anything, with its
/// messages: bad input fails here, before a VM boots. Returns the bundle,
/// absolute, and the pod sandbox whose VM the container joins, if any.
pub fn validate(store: &Store, a: &Args) -> anyhow::Result<(PathBuf, Option<String>)> {
    let bundle = std::fs::canonicalize(&a.bundle).with_context(|| format!("bundle {}", a.bundle.display()))?;
    container::state::check_id(&a.id)?;
    let spec = container::config::load(&bundle)?;
    let process = spec.process().clone().unwrap_or_default();
    if process.terminal() == Some(true) && a.console_socket.is_none() {
        anyhow::bail!("process.terminal is true but no --console-socket was given");
    }
    let linux = spec.linux().clone().unwrap_or_default();
    if let Some(s) = linux.seccomp() {
        container::seccomp::Filter::compile(s).map_err(|e| container::launch::Error::Init(e.to_string()))?;
    }
    container::namespaces::plan(&linux)?;
    let inherited = a.preserve_fds
        + std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
    if inherited > 0 {
        anyhow::bail!("--preserve-fds {inherited}: host file descriptors cannot be passed into the container's VM");
    }
    let sandbox = pod_sandbox(&a.id, &spec.annotations().clone().unwrap_or_default())?;
    if let Some(s) = &sandbox {
        let pod = store.load(s).with_context(|| {
            format!(
                "the pod's sandbox {s:?} (from the annotations) is not a container of this runtime under --root {}",
                store.root.display()
            )
        })?;
        if let Some(first) = pod.sandbox {
            anyhow::bail!("the pod's sandbox {s:?} (from the annotations) is itself a container of pod {first:?}");
        }
    }
    Ok((bundle, sandbox))
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir().context("current directory")?.join(p))
}

/// Writes `pid` to `path` atomically (a reader never sees a partial file).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> anyhow::Result<()> {
    let path = absolute(path)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("--pid-file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("--pid-file {}", path.display()))
}

/// Validates, claims the id, starts the shim and waits until it holds a
/// created container (or undoes everything and says why).
pub fn launch(store: &Store, a: &Args) -> anyhow::Result<Launched> {
    let (bundle, sandbox) = validate(store, a)?;
    store.inner().claim(&a.id)?;
    match spawn(store, a, &bundle, sandbox.as_deref()) {
        Ok(l) => Ok(l),
        Err(e) => {
            let _ = store.remove(&a.id);
            Err(e)
        }
    }
}

fn spawn(store: &Store, a: &Args, bundle: &Path, sandbox: Option<&str>) -> anyhow::Result<Launched> {
    let root = std::fs::canonicalize(&store.root).with_context(|| format!("--root {}", store.root.display()))?;
    let console = a.console_socket.as_deref().map(absolute).transpose()?;
    let (mine, theirs) = UnixStream::pair().context("sync socket for the shim")?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args(shim::command_line(&root, &a.id, bundle, console.as_deref(), sandbox));
    let fd = theirs.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe calls (dup2, fcntl) on fds it inherited.
    unsafe {
        cmd.pre_exec(move || {
            if fd == shim::SYNC_FD {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, shim::SYNC_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut child = cmd.spawn().context("starting the shim")?;
    drop(theirs);
    let pid = child.id() as i32;
    let mut line = String::new();
    let read = BufReader::new(&mine).read_line(&mut line);
    let answer = read
        .ok()
        .and_then(|_| serde_json::from_str::<Sync>(line.trim_end()).ok());
    let fail = |child: &mut Child, why: String| -> anyhow::Error {
        // The shim undoes what it made; wait so that nothing is left when
        // create returns.
        let _ = child.wait();
        anyhow::anyhow!(why)
    };
    match answer {
        Some(Sync::Created { pid: p }) if p == pid => {}
        Some(Sync::Created { pid: p }) => {
            drop(mine);
            return Err(fail(
                &mut child,
                format!("the shim says its pid is {p}, but it is {pid}"),
            ));
        }
        Some(Sync::Error { message }) => return Err(fail(&mut child, message)),
        None => {
            drop(mine);
            let st = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            anyhow::bail!("the shim ended before the container was created ({st})");
        }
    }
    if let Some(p) = &a.pid_file {
        if let Err(e) = write_pid_file(p, pid) {
            drop(mine);
            return Err(fail(&mut child, format!("{e:#}")));
        }
    }
    (&mine)
        .write_all(format!("{}\n", shim::COMMIT).as_bytes())
        .context("committing the container with its shim")?;
    Ok(Launched { child, pid })
}

pub fn run(store: &Store, a: Args, log: &Logger) -> anyhow::Result<i32> {
    let l = launch(store, &a)?;
    log.debug(&format!("created {} with shim pid {}", a.id, l.pid));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> Args {
        let cli = native::Cli::try_parse_from(argv).unwrap();
        match cli.command {
            native::commands::Command::Create(a) => a,
            _ => unreachable!(),
        }
    }

    /// `DIR/bundle` with an empty rootfs and `config` as its config.json.
    fn bundle(dir: &Path, config: serde_json::Value) -> PathBuf {
        let b = dir.join("bundle");
        std::fs::create_dir_all(b.join("rootfs")).unwrap();
        std::fs::write(b.join("config.json"), config.to_string()).unwrap();
        b
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_made() {
        let t = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "ociVersion": "1.0.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["/probe"], "cwd": "/"},
            "linux": {"resources": {"memory": {"limit": -5}}}
        });
        let b = bundle(t.path(), config);
        let root = t.path().join("root");
        let store = Store::new(&root);
        let a = args(&["virtualized", "create", "--bundle", b.to_str().unwrap(), "c1"]);
        let e = format!("{:#}", launch(&store, &a).err().unwrap());
        assert!(e.contains("linux.resources.memory.limit") && e.contains("-5"), "{e}");
        assert!(!root.join("c1").exists());
        let a = args(&["virtualized", "create", "--bundle", b.to_str().unwrap(), "a/b"]);
        assert!(format!("{:#}", launch(&store, &a).err().unwrap()).contains("\"a/b\""));
    }

    #[test]
    fn pod_annotations_name_the_sandbox_to_join() {
        let ann = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let cri = ann(&[
            ("io.kubernetes.cri.container-type", "container"),
            ("io.kubernetes.cri.sandbox-id", "pod1"),
        ]);
        assert_eq!(pod_sandbox("c", &cri).unwrap().as_deref(), Some("pod1"));
        let crio = ann(&[
            ("io.kubernetes.cri-o.ContainerType", "container"),
            ("io.kubernetes.cri-o.SandboxID", "pod2"),
        ]);
        assert_eq!(pod_sandbox("c", &crio).unwrap().as_deref(), Some("pod2"));
        // The sandbox itself, and a plain container, boot a VM of their own.
        let sandbox = ann(&[
            ("io.kubernetes.cri.container-type", "sandbox"),
            ("io.kubernetes.cri.sandbox-id", "pod1"),
        ]);
        assert_eq!(pod_sandbox("pod1", &sandbox).unwrap(), None);
        assert_eq!(pod_sandbox("c", &ann(&[])).unwrap(), None);
        let e = pod_sandbox("c", &ann(&[("io.kubernetes.cri.container-type", "container")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("io.kubernetes.cri.sandbox-id is missing"), "{e}");
    }

    #[test]
    fn a_container_of_an_unknown_pod_is_refused_before_anything_is_made() {
        let t = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "ociVersion": "1.0.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["/probe"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {},
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-id": "nopod"
            }
        });
        let b = bundle(t.path(), config);
        let root = t.path().join("root");
        let store = Store::new(&root);
        let a = args(&["virtualized", "create", "--bundle", b.to_str().unwrap(), "c1"]);
        let e = format!("{:#}", launch(&store, &a).err().unwrap());
        assert!(
            e.contains("sandbox \"nopod\"") && e.contains("not a container of this runtime"),
            "{e}"
        );
        assert!(!root.join("c1").exists());
    }

    #[test]
    fn the_pid_file_is_written_whole() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("pid");
        write_pid_file(&p, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4242");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
