//! Reading results back: any JSON that `conform` or `bench` wrote (and, when
//! it lands, `cri`), told apart by its content, for the renderings and the
//! gate that work from files alone.

use std::path::{Path, PathBuf};

use crate::bench::results::BenchResults;
use crate::results::Results;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not harness results: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// One results file.
#[derive(Debug, Clone)]
pub enum Loaded {
    Conform(Box<Results>),
    Bench(Box<BenchResults>),
}

impl Loaded {
    /// The runtime names the file has results for.
    pub fn runtimes(&self) -> Vec<String> {
        match self {
            Loaded::Conform(r) => vec![conform_name(r)],
            Loaded::Bench(b) => b.runtimes.iter().map(|r| r.name.clone()).collect(),
        }
    }
}

/// The name a conform run goes by in reports: the runtime binary's file
/// name (`runc`, `native`), as `bench` names runtimes.
pub fn conform_name(r: &Results) -> String {
    Path::new(&r.runtime.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| r.runtime.path.clone())
}

/// Parses results from `text`; `path` is only for messages.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Error> {
    let parse_err = |reason: String| Error::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    if v.get("kind").and_then(|k| k.as_str()) == Some("bench") {
        let b: BenchResults = serde_json::from_value(v).map_err(|e| parse_err(format!("bench results: {e}")))?;
        return Ok(Loaded::Bench(Box::new(b)));
    }
    if v.get("cases").is_some() {
        let r: Results = serde_json::from_value(v).map_err(|e| parse_err(format!("conform results: {e}")))?;
        return Ok(Loaded::Conform(Box::new(r)));
    }
    Err(parse_err(
        "neither `kind: bench` nor a `cases` list (write it with --format json)".into(),
    ))
}

/// Reads and parses the results at `path`.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_and_bad_files_named() {
        let p = Path::new("x.json");
        assert!(matches!(parse(p, "[]"), Err(Error::Parse { .. })));
        let e = parse(p, "{\"schema\":1}").unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("neither"), "{e}");
        let e = parse(p, "{\"kind\":\"bench\"}").unwrap_err().to_string();
        assert!(e.contains("bench results"), "{e}");
        let e = load(Path::new("/no/such.json")).unwrap_err().to_string();
        assert!(e.contains("/no/such.json"), "{e}");
    }

    #[test]
    fn the_published_bench_runs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/bench");
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            match load(&e.path()).unwrap() {
                Loaded::Bench(b) => assert!(!b.metrics.is_empty()),
                Loaded::Conform(_) => panic!("{} is bench results", e.path().display()),
            }
        }
    }
}
