//! `native ps [--format json] ID`: the container's processes (host pids).

use container::state::Store;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let pids = container::launch::pids(store, &a.id)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
    } else {
        println!("PID CMD");
        for p in pids {
            let cmd = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            println!("{p} {}", cmd.trim());
        }
    }
    Ok(0)
}
