//! The suite: every case, grouped by what it exercises. Each group module
//! exports `CASES`; ids are `group::case` and unique.

use crate::case::Case;

pub mod cgroups;
pub mod create;
pub mod delete;
pub mod devices;
pub mod features;
pub mod hooks;
pub mod hostname;
pub mod kill;
pub mod lifecycle;
pub mod mounts;
pub mod namespaces;
pub mod paths;
pub mod process;
pub mod root;
pub mod seccomp;
pub mod state;
pub mod sysctl;

/// Every case, in a stable order.
pub fn all() -> Vec<Case> {
    let groups: &[&[Case]] = &[
        lifecycle::CASES,
        state::CASES,
        create::CASES,
        kill::CASES,
        delete::CASES,
        features::CASES,
        process::CASES,
        hostname::CASES,
        root::CASES,
        mounts::CASES,
        devices::CASES,
        paths::CASES,
        namespaces::CASES,
        sysctl::CASES,
        cgroups::CASES,
        seccomp::CASES,
        hooks::CASES,
    ];
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// A case of any suite, as `--only` and `--skip` see it: an id `group::name`.
pub trait Selectable {
    fn id(&self) -> &str;
    fn group(&self) -> &str {
        let id = self.id();
        id.split("::").next().unwrap_or(id)
    }
}

impl Selectable for Case {
    fn id(&self) -> &str {
        self.id
    }
}

/// Cases selected by `--only` and `--skip`: each pattern is a case id, a
/// group (`process` or `process::`), or a prefix ending in `*`.
pub fn select(all: Vec<Case>, only: &[String], skip: &[String]) -> Result<Vec<Case>, String> {
    select_cases(all, only, skip, "case")
}

/// [`select`] for any suite's cases; `noun` names them in the error.
pub fn select_cases<C: Selectable>(
    all: Vec<C>,
    only: &[String],
    skip: &[String],
    noun: &str,
) -> Result<Vec<C>, String> {
    fn matches<C: Selectable>(c: &C, pat: &str) -> bool {
        let p = pat.trim();
        if let Some(prefix) = p.strip_suffix('*') {
            c.id().starts_with(prefix)
        } else if let Some(group) = p.strip_suffix("::") {
            c.group() == group
        } else {
            c.id() == p || c.group() == p
        }
    }
    for pat in only.iter().chain(skip) {
        if !all.iter().any(|c| matches(c, pat)) {
            return Err(format!("no {noun} or group matches {pat:?}"));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| matches(c, p)))
        .filter(|c| !skip.iter().any(|p| matches(c, p)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in all() {
            assert!(seen.insert(c.id), "duplicate case id {}", c.id);
            let parts: Vec<_> = c.id.split("::").collect();
            assert_eq!(parts.len(), 2, "case id {} is not group::case", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase()
                    || ch.is_ascii_digit()
                    || ch == '_'
                    || ch == ':'
                    || ch == '-'),
                "case id {} has odd characters",
                c.id
            );
            assert!(!c.summary.is_empty(), "case {} has no summary", c.id);
        }
    }

    #[test]
    fn every_case_cites_a_catalog_clause() {
        let cat = specs::catalog();
        for c in all() {
            assert!(!c.clauses.is_empty(), "case {} cites no clause", c.id);
            for cl in c.clauses {
                assert!(
                    cat.get(cl).is_some(),
                    "case {} cites {cl}, which is not in specs/catalog.toml",
                    c.id
                );
            }
        }
    }

    #[test]
    fn leak_clause_is_in_the_catalog() {
        assert!(specs::catalog().get(crate::runner::LEAK_CLAUSE).is_some());
    }

    #[test]
    fn selection_by_group_case_and_prefix() {
        let all = all();
        let first = all[0];
        let by_group = select(all.clone(), &[first.group().to_string()], &[]).unwrap();
        assert!(by_group.iter().all(|c| c.group() == first.group()));
        let one = select(all.clone(), &[first.id.to_string()], &[]).unwrap();
        assert_eq!(one.len(), 1);
        let none = select(all.clone(), &[], &[format!("{}::", first.group())]).unwrap();
        assert!(none.iter().all(|c| c.group() != first.group()));
        let e = select(all, &["nope::nothing".into()], &[]).unwrap_err();
        assert!(e.contains("nope::nothing"));
    }
}
