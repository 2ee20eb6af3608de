//! `virtualized list [--format table|json] [-q]`.

use crate::shim::state::Store;

pub fn run(store: &Store, a: native::commands::list::Args) -> anyhow::Result<i32> {
    let states: Vec<serde_json::Value> = store
        .list()
        .iter()
        .filter_map(|id| store.load(id).ok())
        .map(|r| r.oci())
        .collect();
    if a.quiet {
        for s in &states {
            println!("{}", s["id"].as_str().unwrap_or(""));
        }
    } else if a.format == "json" {
        println!("{}", serde_json::to_string(&states)?);
    } else {
        println!("{:<24} {:<8} {:<10} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
        for s in &states {
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
    Ok(0)
}
