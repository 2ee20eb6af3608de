//! `native exec [flags] ID [COMMAND ARGS...]` or `--process FILE`: another
//! process in a running container, as containerd and podman use it.

use std::path::PathBuf;

use container::launch::{self, ExecOptions};
use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    /// A process.json (config.md's process object) to run instead of ARGS.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    #[arg(long, short = 'd')]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE added to the environment; repeatable.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The process `a` asks for: the `--process FILE`, or `base` (the
/// container's own process) with ARGS and the flags applied. Shared with the
/// other bundled runtimes, which find the container's process their own way.
pub fn process(
    a: &Args,
    base: impl FnOnce() -> anyhow::Result<oci_spec::runtime::Process>,
) -> anyhow::Result<oci_spec::runtime::Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("--process {}: {e}", path.display()))?;
        return serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--process {}: {e}", path.display()));
    }
    if a.args.is_empty() {
        anyhow::bail!("exec: a command to run is required (or --process FILE)");
    }
    let mut p = base()?;
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let bad = || anyhow::anyhow!("--user: {u:?} is not UID[:GID]");
        user.set_uid(uid.parse().map_err(|_| bad())?);
        user.set_gid(gid.parse().map_err(|_| bad())?);
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let p = process(&a, || Ok(launch::container_process(store, &a.id)?))?;
    let opts = ExecOptions {
        id: a.id.clone(),
        process: p,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
    };
    Ok(launch::exec(store, &opts)?)
}
