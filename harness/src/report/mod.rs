//! `harness report`: conform and bench results rendered as one Markdown file
//! and one self-contained HTML page (tables, inline SVG charts, nothing
//! fetched from anywhere), and what changed between two results files. Made
//! from the JSON files alone: the raw samples are re-summarized on load.
//!
//! The content is a [`doc`] built once ([`document`], [`diff::document`]);
//! [`markdown::render`] and [`html::render`] render it. Nothing here prints
//! or exits.

mod bench;
mod conform;
pub mod diff;
pub mod doc;
pub mod html;
pub mod markdown;
pub mod svg;

use std::path::{Path, PathBuf};

use crate::bench::results::BenchResults;
use crate::load::{self, Loaded};
use crate::results::Results;
use doc::{Block, Cell, Inline, Table};

/// The version of the harness that renders, as opposed to the ones that
/// measured (each file records its own).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] load::Error),
    #[error("cannot compare {old} ({old_kind} results) with {new} ({new_kind} results)")]
    Mismatch {
        old: PathBuf,
        old_kind: &'static str,
        new: PathBuf,
        new_kind: &'static str,
    },
    #[error("writing {path}: {source}{cleanup}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
        /// What could not be removed afterwards, if anything.
        cleanup: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// One results file, bench figures re-summarized from their samples.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub results: Loaded,
}

impl Input {
    pub fn load(path: &Path) -> Result<Input> {
        let mut results = load::load(path)?;
        if let Loaded::Bench(b) = &mut results {
            b.finalize();
        }
        Ok(Input {
            path: path.to_path_buf(),
            results,
        })
    }

    /// The file name, as tables show it.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    pub fn kind(&self) -> &'static str {
        match self.results {
            Loaded::Conform(_) => "conform",
            Loaded::Bench(_) => "bench",
        }
    }

    fn command(&self) -> &[String] {
        match &self.results {
            Loaded::Conform(r) => &r.command,
            Loaded::Bench(b) => &b.command,
        }
    }

    fn started_at(&self) -> &str {
        match &self.results {
            Loaded::Conform(r) => &r.started_at,
            Loaded::Bench(b) => &b.started_at,
        }
    }

    fn harness_version(&self) -> &str {
        match &self.results {
            Loaded::Conform(r) => &r.harness_version,
            Loaded::Bench(b) => &b.harness_version,
        }
    }
}

/// A command line as a shell would take it back: words with spaces or
/// quotes in single quotes.
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine a file was produced on. Conform files record the host's
/// kernel and cgroup mode but not its CPUs and memory.
struct Machine {
    kernel: String,
    cpus: Option<usize>,
    memory_kib: Option<u64>,
    cgroups: String,
}

fn machine(input: &Input) -> Machine {
    match &input.results {
        Loaded::Bench(b) => Machine {
            kernel: b.machine.kernel.clone(),
            cpus: Some(b.machine.cpus),
            memory_kib: Some(b.machine.memory_kib),
            cgroups: if b.settings.hybrid_as_v1 {
                format!("{} (hybrid host, cgroup2 mount hidden)", b.machine.cgroup_mode)
            } else {
                b.machine.cgroup_mode.clone()
            },
        },
        Loaded::Conform(r) => {
            let field = |k: &str| {
                r.host
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("not recorded")
                    .to_string()
            };
            Machine {
                kernel: field("kernel"),
                cpus: None,
                memory_kib: None,
                cgroups: field("cgroup_mode"),
            }
        }
    }
}

fn not_recorded() -> Cell {
    Cell::text("not recorded").tone(doc::Tone::Faint)
}

/// Where each input came from: the files, the machines, the runtimes and
/// the commands that produced them.
fn header(inputs: &[Input]) -> Vec<Block> {
    let mut files = Table::text(&[
        "file", "kind", "started", "harness", "kernel", "CPUs", "memory", "cgroups",
    ]);
    files.numeric = vec![false, false, false, false, false, true, true, false];
    for i in inputs {
        let m = machine(i);
        files.rows.push(vec![
            Cell::code(i.name()),
            i.kind().into(),
            i.started_at().into(),
            i.harness_version().into(),
            m.kernel.into(),
            m.cpus.map(|c| Cell::text(c.to_string())).unwrap_or_else(not_recorded),
            m.memory_kib
                .map(|k| Cell::text(format!("{:.1} GiB", k as f64 / 1048576.0)))
                .unwrap_or_else(not_recorded),
            m.cgroups.into(),
        ]);
    }
    let mut runtimes = Table::text(&["runtime", "version", "path", "global args", "file"]);
    for i in inputs {
        let rows: Vec<(String, &str, &str, &[String])> = match &i.results {
            Loaded::Conform(r) => vec![(
                load::conform_name(r),
                &r.runtime.version,
                &r.runtime.path,
                &r.runtime.args,
            )],
            Loaded::Bench(b) => b
                .runtimes
                .iter()
                .map(|x| (x.name.clone(), x.version.as_str(), x.path.as_str(), x.args.as_slice()))
                .collect(),
        };
        for (name, version, path, args) in rows {
            runtimes.rows.push(vec![
                Cell::text(name),
                version.into(),
                Cell::code(path),
                if args.is_empty() {
                    Cell::text("none").tone(doc::Tone::Faint)
                } else {
                    Cell::code(shell_join(args))
                },
                Cell::code(i.name()),
            ]);
        }
    }
    let commands = inputs
        .iter()
        .map(|i| {
            let mut item = vec![Inline::Code(i.name()), Inline::Text(": ".into())];
            item.push(match i.command() {
                [] => Inline::Text("not recorded".into()),
                c => Inline::Code(shell_join(c)),
            });
            item
        })
        .collect();
    vec![
        Block::heading(2, "Inputs"),
        Block::Table(files),
        Block::heading(3, "Runtimes"),
        Block::Table(runtimes),
        Block::heading(3, "Commands"),
        Block::List(commands),
    ]
}

/// The whole report on `inputs`, any mix of conform and bench results;
/// `generated_at` is when (RFC 3339).
pub fn document(inputs: &[Input], generated_at: &str) -> Vec<Block> {
    let mut doc = vec![
        Block::heading(1, "OCI runtime report"),
        Block::para(format!(
            "Generated {generated_at} by harness {VERSION} from {} results file{}.",
            inputs.len(),
            if inputs.len() == 1 { "" } else { "s" }
        )),
    ];
    doc.extend(header(inputs));
    let conform: Vec<(&Input, &Results)> = inputs
        .iter()
        .filter_map(|i| match &i.results {
            Loaded::Conform(r) => Some((i, r.as_ref())),
            Loaded::Bench(_) => None,
        })
        .collect();
    if !conform.is_empty() {
        doc.extend(conform::section(&conform));
    }
    let benches: Vec<(&Input, &BenchResults)> = inputs
        .iter()
        .filter_map(|i| match &i.results {
            Loaded::Bench(b) => Some((i, b.as_ref())),
            Loaded::Conform(_) => None,
        })
        .collect();
    for (n, (input, b)) in benches.iter().enumerate() {
        doc.extend(bench::section(n, input, b));
    }
    doc
}

/// The report as Markdown, with a pointer to the page that has the charts.
pub fn markdown(inputs: &[Input], generated_at: &str) -> String {
    let mut doc = document(inputs, generated_at);
    if !doc::charts(&doc).is_empty() {
        doc.insert(
            2,
            Block::Para(vec![
                Inline::Text("The charts are in ".into()),
                Inline::Link {
                    text: "report.html".into(),
                    href: "report.html".into(),
                },
                Inline::Text(" beside this file.".into()),
            ]),
        );
    }
    markdown::render(&doc)
}

/// The report as one HTML page.
pub fn html(inputs: &[Input], generated_at: &str) -> String {
    html::render("OCI runtime report", &document(inputs, generated_at))
}

/// Writes `files` (name, contents) into `dir`, creating it. Called once
/// everything is rendered, so a bad input never leaves a directory behind;
/// a failed write removes what this call wrote, and `dir` if it made it.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<Vec<PathBuf>> {
    let existed = dir.exists();
    let fail = |path: PathBuf, source, written: &[PathBuf]| {
        let mut cleanup = String::new();
        for w in written {
            if let Err(e) = std::fs::remove_file(w) {
                cleanup.push_str(&format!("; removing {}: {e}", w.display()));
            }
        }
        if !existed {
            if let Err(e) = std::fs::remove_dir(dir) {
                cleanup.push_str(&format!("; removing {}: {e}", dir.display()));
            }
        }
        Error::Write { path, source, cleanup }
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
        cleanup: String::new(),
    })?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return Err(fail(path, e, &written));
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_back_as_typed() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shell_join(&w(&[
                "harness",
                "bench",
                "--runtime",
                "runsc --network=none",
                "it's",
                ""
            ])),
            "harness bench --runtime 'runsc --network=none' 'it'\\''s' ''"
        );
    }

    #[test]
    fn a_failed_write_leaves_no_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        // A name with a slash into a directory that does not exist fails
        // after the first file was written.
        let e = write_files(&dir, &[("a.md", "x"), ("no/such/b.html", "y")]).unwrap_err();
        assert!(e.to_string().contains("no/such/b.html"), "{e}");
        assert!(!dir.exists());
        let ok = write_files(&dir, &[("a.md", "x")]).unwrap();
        assert_eq!(std::fs::read_to_string(&ok[0]).unwrap(), "x");
    }
}
