//! Runtimes under load and under faults: `harness stress` (many lifecycles
//! in parallel, with leak accounting around them) and `harness faults` (the
//! runtime killed mid-operation, racing verbs, a full disk, a bundle removed,
//! each followed by the checks that nothing is left and the root still works).

pub mod faults;
pub mod leaks;
pub mod run;
