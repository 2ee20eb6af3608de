//! `harness list`: every case with its clauses.

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let cases = harness::cases::all();
    if a.json {
        let v: Vec<_> = cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id,
                    "clauses": c.clauses,
                    "needs": c.needs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "summary": c.summary,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &cases {
            println!("{:<48} {}  [{}]", c.id, c.summary, c.clauses.join(", "));
        }
        println!("{} cases", cases.len());
    }
    Ok(0)
}
