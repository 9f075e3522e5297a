//! docs/DESIGN.md is the contract: it names every setting and every server-side record the code
//! uses, so neither can change or appear without the contract saying so.

use crate::config::{defaults, vars};
use crate::markers::{
    CHAT_MARKER, DM_RECORD, LEAVING_RECORD, LIFT_RECORD, PARTIAL_FIELD, PART_MARK, REFUSED_RECORD,
    SETTINGS_RECORD, SPACE_MARKER, USAGE_RECORD,
};

const DESIGN: &str = include_str!("../../../docs/DESIGN.md");
const README: &str = include_str!("../../../README.md");
const ENV_EXAMPLE: &str = include_str!("../../../.env.example");

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
        REFUSED_RECORD,
        SETTINGS_RECORD,
        USAGE_RECORD,
        LIFT_RECORD,
        &part_mark,
        PARTIAL_FIELD,
    ] {
        assert!(
            DESIGN.contains(name),
            "{name} is missing from docs/DESIGN.md"
        );
    }
}

#[test]
fn every_default_is_the_one_the_docs_show() {
    for (var, default) in defaults::DEFAULTS {
        let row = format!("| `{var}` | `{default}`");
        assert!(
            DESIGN.contains(&row),
            "docs/DESIGN.md's settings table does not show {var}'s default {default:?}"
        );
        assert!(
            README.contains(&row),
            "README's settings table does not show {var}'s default {default:?}"
        );
        assert!(
            ENV_EXAMPLE.contains(&format!("{var}={default}\n")),
            ".env.example does not show {var}'s default {default:?}"
        );
    }
}
