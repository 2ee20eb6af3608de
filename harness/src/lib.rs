//! The conformance harness as a library: the CLI in `main.rs` parses
//! arguments and calls into this; nothing here prints or exits.

pub mod bench;
pub mod bundle;
pub mod case;
pub mod cases;
pub mod cleanup;
pub mod cri;
pub mod ctx;
pub mod fuzz;
pub mod gate;
pub mod host;
pub mod image;
pub mod load;
pub mod reaper;
pub mod render;
pub mod report;
pub mod results;
pub mod runner;
pub mod runtime;
pub mod seccomp_agent;
pub mod stats;
pub mod stress;
pub mod unix;

/// Where the probe binary is: `$HARNESS_PROBE`, else beside the harness
/// executable (cargo puts both in the same directory), else one level up
/// (test executables live in `deps/`).
pub fn find_probe() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("HARNESS_PROBE") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("probe"), dir.parent()?.join("probe")]
        .into_iter()
        .find(|p| p.is_file())
}
