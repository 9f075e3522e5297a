//! docs/DESIGN.md is the contract: it names every setting and every server-side record the code
//! uses, so neither can change or appear without the contract saying so.

use crate::config::vars;
use crate::markers::{
    CHAT_MARKER, DM_RECORD, LEAVING_RECORD, PARTIAL_FIELD, PART_MARK, SPACE_MARKER,
};

const DESIGN: &str = include_str!("../../../docs/DESIGN.md");

#[test]
fn the_contract_names_every_setting() {
    for var in vars::ALL {
        assert!(
            DESIGN.contains(&format!("| `{var}` |")),
            "{var} is missing from the settings table of docs/DESIGN.md"
        );
    }
}

#[test]
fn the_contract_names_every_record() {
    // The part mark in quotes: its name is the start of the partial field's.
    let part_mark = format!("\"{PART_MARK}\"");
    for name in [
        SPACE_MARKER,
        CHAT_MARKER,
        DM_RECORD,
        LEAVING_RECORD,
        &part_mark,
        PARTIAL_FIELD,
    ] {
        assert!(
            DESIGN.contains(name),
            "{name} is missing from docs/DESIGN.md"
        );
    }
}
