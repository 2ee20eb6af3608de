//! placeholder: cases of this group are being written

use crate::case::Case;

pub const CASES: &[Case] = &[];
