//! `native list [--format table|json] [-q]`.

use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// Ids only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let states: Vec<serde_json::Value> = store
        .list()
        .iter()
        .filter_map(|id| store.load(id).ok())
        .map(|r| store.oci(&r))
        .collect();
    print(&states, &a)?;
    Ok(0)
}

/// Prints OCI state documents as `list` does (ids, JSON, or a table): the
/// other bundled runtimes keep their state their own way but list alike.
pub fn print(states: &[serde_json::Value], a: &Args) -> anyhow::Result<()> {
    if a.quiet {
        for s in states {
            println!("{}", s["id"].as_str().unwrap_or(""));
        }
    } else if a.format == "json" {
        println!("{}", serde_json::to_string(states)?);
    } else {
        println!("{:<24} {:<8} {:<10} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
        for s in states {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {}",
                s["id"].as_str().unwrap_or(""),
                s["pid"],
                s["status"].as_str().unwrap_or(""),
                s["bundle"].as_str().unwrap_or(""),
                s["created"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
