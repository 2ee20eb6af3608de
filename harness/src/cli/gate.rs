//! `harness gate --baseline BASE.json --results NEW.json`: loads both,
//! gates, prints the Markdown summary and writes the files asked for.
//! Exit 0 pass, 1 a regression, 2 bad input.

use std::path::{Path, PathBuf};

use anyhow::Context;
use harness::gate::{self, render, Input, Options, Tolerance, Tolerances};
use harness::load::{self, Loaded};

#[derive(clap::Args)]
pub struct Args {
    /// The results to compare against (JSON of `conform` or `bench`).
    #[arg(long, value_name = "BASE.json")]
    baseline: PathBuf,
    /// The results under test; may be the same file as --baseline, with
    /// --baseline-runtime and --runtime naming two runtimes of one bench run.
    #[arg(long, value_name = "NEW.json")]
    results: PathBuf,
    /// The runtime whose baseline figures are compared (default: --runtime,
    /// else every runtime in both files).
    #[arg(long, value_name = "NAME")]
    baseline_runtime: Option<String>,
    /// The runtime whose new figures are compared (default: --baseline-runtime).
    #[arg(long, value_name = "NAME")]
    runtime: Option<String>,
    /// Tolerance of a metric in percent, repeatable: an id or a prefix ending
    /// in `*` (`lifecycle.create=10`, `overhead.*=30`). Defaults:
    /// lifecycle.* 15, density.* 25, overhead.* 25.
    #[arg(long = "tolerance", value_name = "ID=PCT")]
    tolerances: Vec<String>,
    /// Significance level of the one-sided Mann–Whitney test.
    #[arg(long, default_value_t = gate::DEFAULT_ALPHA, allow_negative_numbers = true)]
    alpha: f64,
    /// Also write the Markdown summary here (a GitHub step summary, a PR comment).
    #[arg(long, value_name = "FILE.md")]
    summary: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE.xml")]
    junit: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<Loaded> {
    let mut l = load::load(path)?;
    if let Loaded::Bench(b) = &mut l {
        b.finalize();
    }
    Ok(l)
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let given = a
        .tolerances
        .iter()
        .map(|t| Tolerance::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = Options {
        baseline_runtime: a.baseline_runtime,
        runtime: a.runtime,
        tolerances: Tolerances::new(given),
        alpha: a.alpha,
    };
    let (base, new) = (read(&a.baseline)?, read(&a.results)?);
    let (bl, rl) = (a.baseline.display().to_string(), a.results.display().to_string());
    let verdict = gate::gate(
        Input {
            label: &bl,
            loaded: &base,
        },
        Input {
            label: &rl,
            loaded: &new,
        },
        &opts,
    )?;
    let md = render::markdown(&verdict);
    if let Some(p) = &a.summary {
        std::fs::write(p, &md).with_context(|| format!("writing --summary {}", p.display()))?;
    }
    if let Some(p) = &a.junit {
        std::fs::write(p, render::junit(&verdict)).with_context(|| format!("writing --junit {}", p.display()))?;
    }
    print!("{md}");
    Ok(verdict.exit_code())
}
