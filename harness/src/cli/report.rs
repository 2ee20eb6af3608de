//! `harness report RESULTS.json... -o DIR` (being built).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<i32> {
    anyhow::bail!("harness report is not built yet")
}
