//! `harness report RESULTS.json... -o DIR`.

use std::path::PathBuf;

use harness::report::{self, Input};

#[derive(clap::Args)]
pub struct Args {
    /// Results files written by `harness conform` or `harness bench` with
    /// `--format json`, in any mix.
    #[arg(value_name = "RESULTS.json", required = true)]
    files: Vec<PathBuf>,
    /// Write report.md and report.html into DIR, creating it. Without it
    /// the Markdown goes to stdout.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    // Everything is read and rendered before DIR is touched, so a bad
    // input leaves nothing behind.
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
