//! Reports rendered from results files (being built).
