//! `cri`: the CRI server (`cri serve`), and the two roles the server runs
//! this same binary in: a container's monitor (`cri monitor`), a pod's
//! infra process (`cri pause`) and the reaper of a detached exec (`cri
//! reap`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cri", version, about = "A CRI v1 server for runc-compatible runtimes")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve CRI on a unix socket.
    Serve {
        #[arg(long)]
        socket: PathBuf,
        /// Where pods, containers and runtime state live.
        #[arg(long)]
        root: PathBuf,
        /// TOML: runtime handlers, streaming address, state directory,
        /// insecure registries.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A registry (HOST[:PORT]) to pull from over plain http; loopback
        /// registries always are. Repeatable.
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
    },
    /// Run one container and record its output and exit (started by serve).
    Monitor {
        #[arg(long)]
        runtime: PathBuf,
        #[arg(long = "runtime-arg", allow_hyphen_values = true)]
        runtime_args: Vec<String>,
        #[arg(long = "runtime-root")]
        runtime_root: PathBuf,
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long = "state-dir")]
        state_dir: PathBuf,
        #[arg(long = "log-path")]
        log_path: Option<PathBuf>,
        #[arg(long = "oom-file")]
        oom_files: Vec<PathBuf>,
        /// Keep the container's stdin open for attach.
        #[arg(long)]
        stdin: bool,
        /// The first attached client to close stdin closes the container's.
        #[arg(long = "stdin-once")]
        stdin_once: bool,
        /// The container has a terminal: take it over a console socket.
        #[arg(long)]
        tty: bool,
        id: String,
    },
    /// Run a runtime command that detaches a process and writes its pid to
    /// PID_FILE; then reap that process and exit with its status.
    Reap {
        #[arg(long = "pid-file")]
        pid_file: PathBuf,
        #[arg(last = true, required = true)]
        argv: Vec<std::ffi::OsString>,
    },
    /// A pod's infra process: hold the namespaces, reap, exit on SIGTERM.
    Pause {
        #[arg(long = "lo-up")]
        lo_up: bool,
    },
}

fn serve(
    socket: PathBuf,
    root: PathBuf,
    config: Option<PathBuf>,
    insecure_registries: Vec<String>,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let bundled = exe.parent().map(PathBuf::from).unwrap_or_default();
    let path = std::env::var("PATH").unwrap_or_default();
    let config = match config {
        Some(f) => cri::handlers::Config::load(&f, &bundled, &path)?,
        None => cri::handlers::Config::defaults(&bundled, &path),
    };
    let root = config.state_dir.clone().unwrap_or(root);
    let mut insecure = config.insecure_registries.clone();
    insecure.extend(insecure_registries);
    let images_root = root.join("images");
    let images = Arc::new(
        cri::images::Store::open_with(
            &images_root,
            cri::images::Options {
                insecure_registries: insecure,
            },
        )
        .map_err(|e| anyhow::anyhow!("opening the image store {}: {e}", images_root.display()))?,
    );
    let state = Arc::new(cri::Cri::new(config, &root, exe, images.clone())?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        cri::server::serve(state, images, &socket, shutdown)
            .await
            .map_err(|e| anyhow::anyhow!("serving on {}: {e}", socket.display()))
    })
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Serve {
            socket,
            root,
            config,
            insecure_registries,
        } => match serve(socket, root, config, insecure_registries) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cri serve: {e:#}");
                1
            }
        },
        Cmd::Monitor {
            runtime,
            runtime_args,
            runtime_root,
            bundle,
            state_dir,
            log_path,
            oom_files,
            stdin,
            stdin_once,
            tty,
            id,
        } => {
            let opts = cri::monitor::Options {
                runtime,
                runtime_args,
                runtime_root,
                bundle,
                id,
                state_dir,
                log_path,
                oom_files,
                stdin,
                stdin_once,
                tty,
            };
            cri::monitor::run_detached(&opts, &mut std::io::stdout())
        }
        Cmd::Pause { lo_up } => cri::pause::run(lo_up),
        Cmd::Reap { pid_file, argv } => cri::streaming::detached::run(&pid_file, &argv),
    };
    std::process::exit(code);
}
