//! docs/DESIGN.md is the contract: it names every setting and every server-side record the code
//! uses, so neither can change or appear without the contract saying so.

use crate::config::vars;
use crate::markers::{CHAT_MARKER, DM_RECORD, LEAVING_RECORD, SPACE_MARKER};

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
    for name in [
        SPACE_MARKER,
        CHAT_MARKER,
        DM_RECORD,
        LEAVING_RECORD,
        // `bot::events::PART_FIELD`, `bot::context::PARTIAL_FIELD` (private to the bot).
        "\"org.lambda.matrix.part\"",
        "org.lambda.matrix.partial",
    ] {
        assert!(
            DESIGN.contains(name),
            "{name} is missing from docs/DESIGN.md"
        );
    }
}
