//! The bot's records on the homeserver, which make recovery exact (docs/DESIGN.md
//! "Server-side records"). Trusted only when the sender is the bot itself; unknown versions are
//! skipped.

use lambda_matrix_core::{ChatId, ChatStatus};
use serde::{Deserialize, Serialize};

/// State event type of a person's Space marker (state key `""`).
pub const SPACE_MARKER: &str = "org.lambda.matrix.space";
/// State event type of a chat room marker (state key `""`).
pub const CHAT_MARKER: &str = "org.lambda.matrix.chat";
/// Room account data type that marks a direct chat (private to the bot).
pub const DM_RECORD: &str = "org.lambda.matrix.dm";
/// Global account data of the bot: the rooms it is leaving for good (`!delete`, `!forget-me`).
pub const LEAVING_RECORD: &str = "org.lambda.matrix.leaving";
/// The record version this binary writes and reads.
pub const VERSION: u32 = 1;

/// Content of [`SPACE_MARKER`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceMarker {
    /// The person the Space belongs to.
    pub owner: String,
    /// The highest chat number ever issued; raised before a room is created.
    pub last_chat_index: u32,
    /// Record version.
    pub version: u32,
}

/// Content of [`CHAT_MARKER`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMarker {
    /// The person the chat belongs to.
    pub owner: String,
    /// `C<n>`.
    pub chat_id: String,
    /// `active` or `archived`.
    pub status: String,
    /// The event that made the room (the `!new`, or the invite for C1).
    pub cause: String,
    /// Record version.
    pub version: u32,
}

impl ChatMarker {
    /// A marker for a new active chat.
    pub fn new(owner: &str, id: ChatId, cause: &str) -> Self {
        ChatMarker {
            owner: owner.to_owned(),
            chat_id: id.to_string(),
            status: ChatStatus::Active.as_str().to_owned(),
            cause: cause.to_owned(),
            version: VERSION,
        }
    }

    /// The chat id, if well-formed.
    pub fn id(&self) -> Option<ChatId> {
        self.chat_id.parse().ok()
    }

    /// The status, if well-formed.
    pub fn chat_status(&self) -> Option<ChatStatus> {
        ChatStatus::parse(&self.status)
    }
}

/// Content of [`DM_RECORD`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmRecord {
    /// The person this direct chat is with.
    pub owner: String,
    /// Record version.
    pub version: u32,
}

/// Content of [`LEAVING_RECORD`]: rooms written here before the bot says it deletes them and
/// removed once it has left and forgotten them. Reconcile ignores these rooms and resume
/// finishes leaving them, so a crash halfway never brings a deleted chat back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavingRecord {
    /// Room ids still to leave.
    pub rooms: Vec<String>,
    /// Record version.
    pub version: u32,
}

/// Why a record was not trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// Sent by someone other than the bot.
    #[error("sent by {0}, not by the bot")]
    ForeignSender(String),
    /// A version this binary does not know.
    #[error("unknown record version {0}")]
    UnknownVersion(u64),
    /// Content that does not parse.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// Reads a state event's JSON (`{sender, content, ...}`) as a record of type `T`, trusting it
/// only if `bot` sent it and its version is known.
pub fn read_state<T: serde::de::DeserializeOwned>(
    event: &serde_json::Value,
    bot: &str,
) -> Result<T, MarkerError> {
    let sender = event
        .get("sender")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    if sender != bot {
        return Err(MarkerError::ForeignSender(sender.to_owned()));
    }
    read_content(event.get("content").unwrap_or(&serde_json::Value::Null))
}

/// Reads record content, checking its version.
pub fn read_content<T: serde::de::DeserializeOwned>(
    content: &serde_json::Value,
) -> Result<T, MarkerError> {
    match content.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => return Err(MarkerError::UnknownVersion(v)),
        None => return Err(MarkerError::Malformed("no version".into())),
    }
    serde_json::from_value(content.clone()).map_err(|e| MarkerError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BOT: &str = "@lambda:x";

    #[test]
    fn only_the_bots_known_records_are_trusted() {
        let content = json!({"owner": "@anna:x", "chat_id": "C2", "status": "active", "cause": "$e", "version": 1});
        let good = json!({"sender": BOT, "content": content});
        let marker: ChatMarker = read_state(&good, BOT).expect("trusted");
        assert_eq!(marker.id().map(|c| c.number()), Some(2));
        assert_eq!(marker.chat_status(), Some(ChatStatus::Active));

        let forged = json!({"sender": "@anna:x", "content": content});
        assert_eq!(
            read_state::<ChatMarker>(&forged, BOT),
            Err(MarkerError::ForeignSender("@anna:x".into()))
        );

        let future = json!({"sender": BOT, "content": {"owner": "@anna:x", "version": 2}});
        assert_eq!(
            read_state::<ChatMarker>(&future, BOT),
            Err(MarkerError::UnknownVersion(2))
        );

        let broken = json!({"sender": BOT, "content": {"owner": 5, "version": 1}});
        assert!(matches!(
            read_state::<ChatMarker>(&broken, BOT),
            Err(MarkerError::Malformed(_))
        ));
    }
}
