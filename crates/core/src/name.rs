//! Chat names as people type them: cleaned of invisible and direction-changing characters,
//! whitespace collapsed, and bounded. Names are labels, never identity.

use std::fmt;

/// The longest chat name, in characters, after cleaning.
pub const MAX_NAME_CHARS: usize = 100;

/// A cleaned, non-empty chat name of at most [`MAX_NAME_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatName(String);

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing visible is left after cleaning.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`] characters after cleaning.
    #[error("the name has {chars} characters; at most {MAX_NAME_CHARS} are allowed")]
    TooLong {
        /// Characters in the cleaned name.
        chars: usize,
    },
}

/// Characters that are invisible or change text direction: they can disguise a name (or any
/// text a person typed that the bot shows back).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM/RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}' // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

impl ChatName {
    /// Cleans `raw` and checks it.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let mut cleaned = String::with_capacity(raw.len());
        for word in raw
            .split(|c: char| c.is_whitespace() || c.is_control())
            .map(|w| w.chars().filter(|c| !is_hidden(*c)).collect::<String>())
            .filter(|w| !w.is_empty())
        {
            if !cleaned.is_empty() {
                cleaned.push(' ');
            }
            cleaned.push_str(&word);
        }
        let chars = cleaned.chars().count();
        if chars == 0 {
            Err(NameError::Empty)
        } else if chars > MAX_NAME_CHARS {
            Err(NameError::TooLong { chars })
        } else {
            Ok(ChatName(cleaned))
        }
    }

    /// The cleaned text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cleaned text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ChatName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cleans_what_people_and_attackers_type() {
        let long = "я".repeat(MAX_NAME_CHARS);
        let too_long = "x".repeat(MAX_NAME_CHARS + 1);
        let cases: Vec<(&str, Result<&str, NameError>)> = vec![
            ("Travel plans", Ok("Travel plans")),
            ("  spaced   out\tname \n", Ok("spaced out name")),
            ("Путешествия 🌍", Ok("Путешествия 🌍")),
            ("evil\u{202E}gnp.exe", Ok("evilgnp.exe")),
            ("zero\u{200B}width\u{FEFF}", Ok("zerowidth")),
            ("bell\u{7}char", Ok("bell char")),
            ("<b>bold</b>", Ok("<b>bold</b>")), // escaping is the renderer's job
            ("", Err(NameError::Empty)),
            ("   \u{200B}\u{202E}  ", Err(NameError::Empty)),
            (&long, Ok(&long)),
            (
                &too_long,
                Err(NameError::TooLong {
                    chars: MAX_NAME_CHARS + 1,
                }),
            ),
        ];
        for (raw, want) in cases {
            let got = ChatName::parse(raw);
            assert_eq!(
                got.as_ref().map(ChatName::as_str),
                want.as_ref().map(|s| *s),
                "{raw:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn accepted_names_are_clean_and_bounded(raw in "\\PC{0,150}|[\\s\\u{200B}\\u{202E}a-z]{0,40}") {
            if let Ok(name) = ChatName::parse(&raw) {
                let s = name.as_str();
                prop_assert!(!s.is_empty() && s.chars().count() <= MAX_NAME_CHARS);
                prop_assert!(!s.chars().any(is_hidden));
                prop_assert_eq!(s.trim(), s);
                prop_assert!(!s.contains("  "));
                prop_assert_eq!(ChatName::parse(s), Ok(name.clone()), "cleaning is idempotent");
            }
        }
    }
}
