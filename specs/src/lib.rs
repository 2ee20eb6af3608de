//! The OCI runtime-spec (v1.3.0) normative clauses, as data.
//!
//! Conformance cases cite clauses by a stable id (e.g. `runtime.start.not-created-error`)
//! so that a report can say exactly which sentence of the spec a runtime met or missed,
//! and so that coverage (which clauses have no case yet) can be computed. The clauses
//! live in `catalog.toml`, next to this crate's manifest, rather than in Rust code:
//! the list is long, is edited by people reading the spec rather than the harness,
//! and is easier to review as a table. It is embedded at compile time so the harness
//! needs no file at run time.
//!
//! Each clause's `text` is a short paraphrase of the requirement, not a quotation.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The catalog source, embedded so that the binary is self-contained.
const CATALOG_TOML: &str = include_str!("../catalog.toml");

/// The spec documents a clause may come from, by file stem. An id's first segment must
/// be one of these and must agree with the clause's `file`, so an id alone tells a
/// reader which document to open.
pub const DOCS: &[&str] = &[
    "runtime",
    "runtime-linux",
    "config",
    "config-linux",
    "bundle",
    "features",
    "features-linux",
];

/// RFC 2119 strength of a clause.
///
/// Negative and synonym keywords fold into these three: "MUST NOT", "REQUIRED" and
/// "SHALL" are [`Level::Must`]; "SHOULD NOT", "RECOMMENDED" and "NOT RECOMMENDED" are
/// [`Level::Should`]; "OPTIONAL" is [`Level::May`]. The direction of the requirement is
/// carried by the clause text. Three levels are what a report needs: a failed MUST is a
/// conformance failure, a failed SHOULD is a warning, a MAY is informational.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT.
    Must,
    /// SHOULD, SHOULD NOT, RECOMMENDED, NOT RECOMMENDED.
    Should,
    /// MAY, OPTIONAL.
    May,
}

impl Level {
    /// The keyword as written in the catalog and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a black-box test can see whether a clause holds.
///
/// This tells case writers which side has to do the checking: the harness on the host
/// (CLI exit codes, `state` output, hook side effects, cgroup files), a probe process
/// inside the container, either, or neither (requirements on config authors or on other
/// tools, which a runtime test cannot observe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observable {
    /// Checkable from the host: runtime CLI results, state, files, cgroups, hooks.
    Host,
    /// Checkable by a probe process running inside the container.
    Container,
    /// Checkable from either side.
    Both,
    /// Not checkable by a black-box runtime test.
    None,
}

impl Observable {
    /// The value as written in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Observable::Host => "host",
            Observable::Container => "container",
            Observable::Both => "both",
            Observable::None => "none",
        }
    }
}

impl fmt::Display for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One normative requirement of the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// Stable id, `<doc>.<topic>.<what>`, lower-case `[a-z0-9.-]`; cited by cases.
    pub id: String,
    /// Strength of the requirement.
    pub level: Level,
    /// Spec file the clause comes from, e.g. `config-linux.md`.
    pub file: String,
    /// Exact text of the nearest heading above the sentence, without `#` marks.
    pub section: String,
    /// One-sentence paraphrase of the requirement.
    pub text: String,
    /// Where a black-box test can observe it.
    pub observable: Observable,
}

/// The whole list of clauses, in spec file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    clauses: Vec<Clause>,
}

impl Catalog {
    /// All clauses, in the order of the catalog file (spec file order).
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// The clause with this id, if any. Cases use it to check that the ids they cite exist.
    pub fn get(&self, id: &str) -> Option<&Clause> {
        self.clauses.iter().find(|c| c.id == id)
    }

    /// Number of clauses.
    pub fn len(&self) -> usize {
        self.clauses.len()
    }

    /// Whether there are no clauses (never true for the embedded catalog).
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Clauses a black-box test can observe (`observable` other than `none`): the
    /// denominator for coverage reports.
    pub fn observable(&self) -> impl Iterator<Item = &Clause> {
        self.clauses.iter().filter(|c| c.observable != Observable::None)
    }
}

/// Why a catalog text was rejected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not TOML, or does not have the clause table shape.
    #[error("catalog is not valid toml: {0}")]
    Toml(#[from] toml::de::Error),
    /// Two clauses share an id, so a citation would be ambiguous.
    #[error("duplicate clause id {0}")]
    DuplicateId(String),
    /// The id does not have the `<doc>.<topic>...` shape with `[a-z0-9-]` segments.
    #[error("clause {id}: field id is malformed ({reason})")]
    BadId {
        /// The offending id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `file` field is not one of the seven spec documents.
    #[error("clause {id}: field file {file:?} is not one of the catalogued spec documents")]
    UnknownFile {
        /// The clause id.
        id: String,
        /// The offending file name.
        file: String,
    },
    /// The id's document prefix names a different file than `file`.
    #[error("clause {id}: field id has doc prefix {prefix:?} but field file is {file:?}")]
    DocMismatch {
        /// The clause id.
        id: String,
        /// The id's first segment.
        prefix: String,
        /// The clause's file.
        file: String,
    },
    /// A text field that must say something is empty.
    #[error("clause {id}: field {field} is empty")]
    EmptyField {
        /// The clause id.
        id: String,
        /// The empty field's name.
        field: &'static str,
    },
}

/// The TOML document shape: an array of `[[clause]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    clause: Vec<Clause>,
}

/// Checks the id shape: at least two dot-separated segments, each non-empty, made of
/// `[a-z0-9-]`, not starting or ending with `-`; the first must be a known doc.
fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("empty");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("only a-z, 0-9, '.' and '-' are allowed");
    }
    let segments: Vec<&str> = id.split('.').collect();
    if segments.len() < 2 {
        return Err("needs a doc prefix and at least one more segment");
    }
    if segments.iter().any(|s| s.is_empty()) {
        return Err("empty segment");
    }
    if segments.iter().any(|s| s.starts_with('-') || s.ends_with('-')) {
        return Err("segment starts or ends with '-'");
    }
    if !DOCS.contains(&segments[0]) {
        return Err("doc prefix is not a spec document stem");
    }
    Ok(())
}

/// Parses and validates a catalog.
///
/// Validation is what makes ids safe to cite: ids are unique and well formed, each id's
/// doc prefix agrees with its `file`, and `section` and `text` are non-empty.
pub fn parse(text: &str) -> Result<Catalog, Error> {
    let raw: RawCatalog = toml::from_str(text)?;
    let mut seen = HashSet::new();
    for c in &raw.clause {
        check_id(&c.id).map_err(|reason| Error::BadId {
            id: c.id.clone(),
            reason,
        })?;
        let stem = c
            .file
            .strip_suffix(".md")
            .filter(|s| DOCS.contains(s))
            .ok_or_else(|| Error::UnknownFile {
                id: c.id.clone(),
                file: c.file.clone(),
            })?;
        let prefix = c.id.split('.').next().unwrap_or_default();
        if prefix != stem {
            return Err(Error::DocMismatch {
                id: c.id.clone(),
                prefix: prefix.to_string(),
                file: c.file.clone(),
            });
        }
        if c.section.trim().is_empty() {
            return Err(Error::EmptyField {
                id: c.id.clone(),
                field: "section",
            });
        }
        if c.text.trim().is_empty() {
            return Err(Error::EmptyField {
                id: c.id.clone(),
                field: "text",
            });
        }
        if !seen.insert(c.id.as_str()) {
            return Err(Error::DuplicateId(c.id.clone()));
        }
    }
    Ok(Catalog { clauses: raw.clause })
}

/// The embedded catalog, parsed once on first use.
///
/// # Panics
///
/// If the embedded `catalog.toml` is invalid. The unit tests parse it, so a build whose
/// tests pass cannot panic here.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| match parse(CATALOG_TOML) {
        Ok(c) => c,
        Err(e) => panic!("embedded specs/catalog.toml is invalid: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Where the spec markdown lives in the shared checkout; optional at test time.
    const SPEC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oci-runtime-spec-v1.3.0");

    fn one(id: &str, file: &str) -> String {
        format!(
            "[[clause]]\nid = \"{id}\"\nlevel = \"MUST\"\nfile = \"{file}\"\n\
             section = \"Create\"\ntext = \"something\"\nobservable = \"host\"\n"
        )
    }

    /// Heading texts of a markdown file: `#` lines outside code fences, with the `#`
    /// marks and `<a name="..." />` anchors removed.
    fn headings(md: &str) -> HashSet<String> {
        let mut out = HashSet::new();
        let mut in_fence = false;
        for line in md.lines() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                continue;
            }
            if in_fence || !line.starts_with('#') {
                continue;
            }
            let mut h = line.trim_start_matches('#').to_string();
            while let Some(start) = h.find("<a ") {
                match h[start..].find("/>") {
                    Some(end) => h.replace_range(start..start + end + 2, ""),
                    None => break,
                }
            }
            out.insert(h.trim().to_string());
        }
        out
    }

    #[test]
    fn embedded_catalog_parses() {
        let c = parse(CATALOG_TOML).expect("embedded catalog must be valid");
        assert!(!c.is_empty());
        assert_eq!(catalog().len(), c.len());
    }

    #[test]
    fn ids_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in catalog().clauses() {
            assert!(check_id(&c.id).is_ok(), "bad id {}", c.id);
            assert!(seen.insert(c.id.clone()), "duplicate id {}", c.id);
            assert_eq!(catalog().get(&c.id), Some(c));
        }
        assert!(catalog().get("runtime.no-such-clause").is_none());
    }

    #[test]
    fn sections_are_real_headings() {
        let dir = Path::new(SPEC_DIR);
        if !dir.is_dir() {
            eprintln!("skipping: spec directory {} not found", dir.display());
            return;
        }
        for doc in DOCS {
            let file = format!("{doc}.md");
            let md = std::fs::read_to_string(dir.join(&file)).expect("read spec file");
            let hs = headings(&md);
            for c in catalog().clauses().iter().filter(|c| c.file == file) {
                assert!(
                    hs.contains(&c.section),
                    "clause {}: section {:?} is not a heading of {file}",
                    c.id,
                    c.section
                );
            }
        }
    }

    #[test]
    fn rejects_duplicate_id() {
        let text = one("runtime.create.id-unique", "runtime.md").repeat(2);
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateId(id) if id == "runtime.create.id-unique"),
            "{err}"
        );
        assert_eq!(err.to_string(), "duplicate clause id runtime.create.id-unique");
    }

    #[test]
    fn rejects_bad_id() {
        for id in [
            "Runtime.create.x",
            "runtime",
            "runtime..x",
            "runtime.create_x",
            "runtime.-x",
            "nosuchdoc.x",
        ] {
            let err = parse(&one(id, "runtime.md")).unwrap_err();
            assert!(matches!(&err, Error::BadId { id: got, .. } if got == id), "{id}: {err}");
        }
    }

    #[test]
    fn rejects_doc_prefix_mismatch() {
        let err = parse(&one("config.process.cwd", "config-linux.md")).unwrap_err();
        assert!(
            matches!(&err, Error::DocMismatch { id, prefix, file }
                if id == "config.process.cwd" && prefix == "config" && file == "config-linux.md"),
            "{err}"
        );
    }

    #[test]
    fn rejects_unknown_file_and_empty_fields() {
        let err = parse(&one("config.x", "config-vm.md")).unwrap_err();
        assert!(matches!(err, Error::UnknownFile { .. }), "{err}");
        let text = one("config.x", "config.md").replace("something", " ");
        let err = parse(&text).unwrap_err();
        assert!(matches!(err, Error::EmptyField { field: "text", .. }), "{err}");
    }

    #[test]
    fn levels_and_observables_round_trip() {
        for l in [Level::Must, Level::Should, Level::May] {
            let v: Level = toml::Value::String(l.to_string()).try_into().unwrap();
            assert_eq!(v, l);
        }
        let v: Observable = toml::Value::String("both".into()).try_into().unwrap();
        assert_eq!(v, Observable::Both);
    }

    #[test]
    fn every_level_is_used() {
        for l in [Level::Must, Level::Should, Level::May] {
            let n = catalog().clauses().iter().filter(|c| c.level == l).count();
            assert!(n > 0, "no {l} clauses");
        }
    }

    #[test]
    fn enough_observable_clauses() {
        let n = catalog().observable().count();
        assert!(n >= 200, "only {n} observable clauses");
        assert!(catalog().observable().all(|c| c.observable != Observable::None));
    }
}
