//! The CI gate (being built).
