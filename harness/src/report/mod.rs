//! `harness report` (being built): conform and bench results rendered as
//! one Markdown file and one self-contained HTML page, from the JSON files
//! alone.
//!
//! The content is a [`doc`] built once; [`markdown::render`] and
//! [`html::render`] render it. Nothing here prints or exits.

pub mod doc;
pub mod html;
pub mod markdown;
pub mod svg;
