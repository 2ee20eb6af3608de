//! The CRI suite, grouped like critest's areas. Each module exports
//! `CASES`; ids are `area::case` and unique.

use std::collections::BTreeMap;

use super::case::CriCase;

pub mod bad_input;
pub mod container;
pub mod exec;
pub mod idempotence;
pub mod images;
pub mod logs;
pub mod multi;
pub mod pod;
pub mod runtime;
pub mod security;

/// Every case, in a stable order.
pub fn all() -> Vec<CriCase> {
    let groups: &[&[CriCase]] = &[
        runtime::CASES,
        images::CASES,
        pod::CASES,
        container::CASES,
        exec::CASES,
        logs::CASES,
        security::CASES,
        multi::CASES,
        idempotence::CASES,
        bad_input::CASES,
    ];
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// Cases selected by `--only` and `--skip`: each pattern is a case id, a
/// group (`pod` or `pod::`), or a prefix ending in `*`.
pub fn select(all: Vec<CriCase>, only: &[String], skip: &[String]) -> Result<Vec<CriCase>, String> {
    crate::cases::select_cases(all, only, skip, "CRI case")
}

/// The harness's own namespaces (type to inode): the host's, as far as
/// a CRI endpoint on this machine is concerned.
pub fn host_namespaces() -> BTreeMap<String, u64> {
    probe::collect::namespaces()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_clauses_are_known() {
        let known: HashSet<&str> = super::super::case::CLAUSES.iter().map(|(id, _)| *id).collect();
        let mut seen = HashSet::new();
        for c in all() {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert_eq!(c.id.split("::").count(), 2, "{}", c.id);
            assert!(!c.clauses.is_empty(), "{} cites no clause", c.id);
            for cl in c.clauses {
                assert!(known.contains(cl), "{} cites unknown clause {cl}", c.id);
            }
        }
    }

    #[test]
    fn selection_by_group_id_and_prefix() {
        let s = select(all(), &["pod".into()], &["pod::hostname".into()]).unwrap();
        assert!(s.iter().all(|c| c.group() == "pod" && c.id != "pod::hostname"));
        assert!(!s.is_empty());
        let s = select(all(), &["security::host_*".into()], &[]).unwrap();
        assert_eq!(s.len(), 3);
        assert!(select(all(), &["nope".into()], &[]).is_err());
    }
}
