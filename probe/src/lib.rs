//! The in-container probe. `report` holds the JSON layout shared with the
//! harness; the collection code runs inside containers only.
//!
//! Layout: `cli` dispatches the subcommands; `collect` and `paths` gather a
//! report; `procfs` and `parse` are the pure parsers; `sys` wraps the libc
//! calls std lacks; `syscall`, `signals`, `hook` and `bench` are the
//! subcommands with more to them; `errno` names errors.

pub mod bench;
pub mod cli;
pub mod collect;
pub mod errno;
pub mod hook;
pub mod parse;
pub mod paths;
pub mod procfs;
pub mod race;
pub mod report;
pub mod signals;
pub mod sys;
pub mod syscall;

pub use report::{Report, REPORT_SCHEMA};
