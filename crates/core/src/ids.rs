//! Chat ids: `C<n>` with `n >= 1`, numbered per person.

use std::fmt;
use std::str::FromStr;

/// A person's chat number, shown as `C<n>`. `C1` always means the speaker's own first chat.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct ChatId(u32);

/// Why a text is not a chat id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatIdError {
    /// It does not look like `C<number>`.
    #[error("a chat id looks like C1, C2, ...")]
    Malformed,
    /// `C0`: numbering starts at 1.
    #[error("chat ids start at C1")]
    Zero,
    /// The number does not fit.
    #[error("chat id is too large")]
    TooLarge,
}

impl ChatId {
    /// The first chat a person gets.
    pub const FIRST: ChatId = ChatId(1);

    /// A chat id from its number.
    pub fn new(n: u32) -> Result<Self, ChatIdError> {
        if n == 0 {
            Err(ChatIdError::Zero)
        } else {
            Ok(ChatId(n))
        }
    }

    /// The number `n` of `C<n>`.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The id after this one.
    pub fn next(self) -> Result<Self, ChatIdError> {
        self.0
            .checked_add(1)
            .map(ChatId)
            .ok_or(ChatIdError::TooLarge)
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C{}", self.0)
    }
}

impl FromStr for ChatId {
    type Err = ChatIdError;

    /// Accepts `C3` or `c3`; rejects signs, spaces, leading zeros and other forms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix('C')
            .or_else(|| s.strip_prefix('c'))
            .ok_or(ChatIdError::Malformed)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChatIdError::Malformed);
        }
        if digits.starts_with('0') {
            return if digits.bytes().all(|b| b == b'0') {
                Err(ChatIdError::Zero)
            } else {
                Err(ChatIdError::Malformed)
            };
        }
        let n: u32 = digits.parse().map_err(|_| ChatIdError::TooLarge)?;
        ChatId::new(n)
    }
}

impl TryFrom<u32> for ChatId {
    type Error = ChatIdError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        ChatId::new(n)
    }
}

impl From<ChatId> for u32 {
    fn from(id: ChatId) -> u32 {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_forms_people_type() {
        let cases: &[(&str, Result<u32, ChatIdError>)] = &[
            ("C1", Ok(1)),
            ("c12", Ok(12)),
            ("C4294967295", Ok(u32::MAX)),
            ("C4294967296", Err(ChatIdError::TooLarge)),
            ("C0", Err(ChatIdError::Zero)),
            ("C00", Err(ChatIdError::Zero)),
            ("C01", Err(ChatIdError::Malformed)),
            ("C", Err(ChatIdError::Malformed)),
            ("1", Err(ChatIdError::Malformed)),
            ("C-1", Err(ChatIdError::Malformed)),
            ("C+1", Err(ChatIdError::Malformed)),
            (" C1", Err(ChatIdError::Malformed)),
            ("C1 ", Err(ChatIdError::Malformed)),
            ("С1", Err(ChatIdError::Malformed)),  // Cyrillic Es
            ("C１", Err(ChatIdError::Malformed)), // full-width digit
        ];
        for (text, want) in cases {
            let got = text.parse::<ChatId>().map(ChatId::number);
            assert_eq!(&got, want, "parsing {text:?}");
        }
    }

    #[test]
    fn displays_as_c_number() {
        assert_eq!(ChatId::new(7).map(|c| c.to_string()), Ok("C7".to_owned()));
        assert_eq!(
            ChatId::new(u32::MAX).and_then(ChatId::next),
            Err(ChatIdError::TooLarge)
        );
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(n in 1u32..) {
            let id = ChatId::new(n).expect("n >= 1");
            prop_assert_eq!(id.to_string().parse::<ChatId>(), Ok(id));
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = s.parse::<ChatId>();
        }
    }
}
