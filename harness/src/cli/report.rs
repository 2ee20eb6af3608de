//! `harness report RESULTS.json... -o DIR` and `harness report --diff OLD NEW`.

use std::path::PathBuf;

use harness::report::{self, Input};

#[derive(clap::Args)]
pub struct Args {
    /// Results files written by `harness conform` or `harness bench` with
    /// `--format json`, in any mix.
    #[arg(
        value_name = "RESULTS.json",
        required_unless_present = "diff",
        conflicts_with = "diff"
    )]
    files: Vec<PathBuf>,
    /// Show what changed from OLD to NEW (both conform or both bench
    /// results) as Markdown on stdout.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    diff: Option<Vec<PathBuf>>,
    /// Write report.md and report.html (diff.md and diff.html with --diff)
    /// into DIR, creating it. Without it the Markdown goes to stdout.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    // Everything is read and rendered before DIR is touched, so a bad
    // input leaves nothing behind.
    if let Some(pair) = &a.diff {
        let (old, new) = (Input::load(&pair[0])?, Input::load(&pair[1])?);
        let doc = report::diff::document(&old, &new)?;
        let md = report::markdown::render(&doc);
        let html = report::html::render(&format!("What changed: {} → {}", old.name(), new.name()), &doc);
        print!("{md}");
        if let Some(dir) = &a.output_dir {
            report::write_files(dir, &[("diff.md", &md), ("diff.html", &html)])?;
        }
        return Ok(0);
    }
    let inputs = a.files.iter().map(|p| Input::load(p)).collect::<Result<Vec<_>, _>>()?;
    let now = harness::runner::now_rfc3339();
    let md = report::markdown(&inputs, &now);
    let Some(dir) = &a.output_dir else {
        print!("{md}");
        return Ok(0);
    };
    let html = report::html(&inputs, &now);
    let written = report::write_files(dir, &[("report.md", &md), ("report.html", &html)])?;
    for p in written {
        println!("{}", p.display());
    }
    Ok(0)
}
