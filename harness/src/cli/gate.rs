//! `harness gate --baseline BASE.json --results NEW.json` (being built).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<i32> {
    anyhow::bail!("harness gate is not built yet")
}
