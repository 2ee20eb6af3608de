//! `harness clauses`: the catalog, with how many cases cite each clause.

use std::collections::BTreeMap;

#[derive(clap::Args)]
pub struct Args {
    /// Only clauses no case cites.
    #[arg(long)]
    uncovered: bool,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mut cites: BTreeMap<&str, usize> = BTreeMap::new();
    let cases = harness::cases::all();
    for c in &cases {
        for cl in c.clauses {
            *cites.entry(cl).or_default() += 1;
        }
    }
    let cat = specs::catalog();
    let rows: Vec<_> = cat
        .clauses()
        .iter()
        .map(|c| (c, cites.get(c.id.as_str()).copied().unwrap_or(0)))
        .filter(|(_, n)| !a.uncovered || *n == 0)
        .collect();
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(c, n)| {
                serde_json::json!({
                    "id": c.id, "level": c.level.to_string(), "file": c.file,
                    "section": c.section, "text": c.text, "observable": c.observable, "cases": n,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (c, n) in &rows {
            println!(
                "{:<52} {:<6} {:>3}  {}#{}: {}",
                c.id,
                c.level.to_string(),
                n,
                c.file,
                c.section,
                c.text
            );
        }
        let covered = cat
            .clauses()
            .iter()
            .filter(|c| cites.contains_key(c.id.as_str()))
            .count();
        println!("{} clauses, {} cited by at least one case", cat.len(), covered);
    }
    Ok(0)
}
