//! The bot's records on the homeserver, which make recovery exact (docs/DESIGN.md
//! "Server-side records"). Trusted only when the sender is the bot itself; unknown versions are
//! skipped.

use lambda_matrix_core::{ChatId, ChatStatus};
use matrix_sdk::ruma::OwnedEventId;
use serde::{Deserialize, Serialize};

/// State event type of a person's Space marker (state key `""`).
pub const SPACE_MARKER: &str = "org.lambda.matrix.space";
/// State event type of a chat room marker (state key `""`).
pub const CHAT_MARKER: &str = "org.lambda.matrix.chat";
/// Room account data type that marks a direct chat (private to the bot).
pub const DM_RECORD: &str = "org.lambda.matrix.dm";
/// Global account data of the bot: the rooms it is leaving for good (`!delete`, `!forget-me`).
pub const LEAVING_RECORD: &str = "org.lambda.matrix.leaving";
/// Room account data (private to the bot): the owner's messages it refused (see [`Refused`]).
pub const REFUSED_RECORD: &str = "org.lambda.matrix.refused";
/// State event type of a chat's own settings (state key `""`, see [`ChatSettings`]).
pub const SETTINGS_RECORD: &str = "org.lambda.matrix.settings";
/// Room account data of a person's Space (private to the bot): their token totals (see
/// `bot/usage`).
pub const USAGE_RECORD: &str = "org.lambda.matrix.usage";
/// Room account data of a person's Space: the UTC day their budgets are lifted for, written by
/// `lambda-matrix lift-budget` (never by the running bot, which only reads it).
pub const LIFT_RECORD: &str = "org.lambda.matrix.lift";
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

/// Content of [`SETTINGS_RECORD`]: what a person chose for one chat (`!model`,
/// `!instructions`). No record, or a field left out: the operator's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSettings {
    /// The model this chat asks, by the platform's name for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The chat's instructions, given to the model after the operator's system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
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

/// Content of [`REFUSED_RECORD`]: the send time of the newest message in the room that the bot
/// refused because its sender was not in `MATRIX_ALLOWED_USERS` (they were told once). Catch-up
/// never answers a message sent at or before it, so taking a person back does not answer what
/// they sent while removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// `origin_server_ts` of the newest refused message, in milliseconds.
    pub until: u64,
    /// Record version.
    pub version: u32,
}

/// Where a part's place in its answer is written: inside `m.relates_to` of each reply and edit
/// the bot sends for an answer, so it stays readable without decrypting (the SDK copies
/// `m.relates_to` into the encrypted event's clear content).
pub const PART_MARK: &str = "org.lambda.matrix.part";
/// The content field that marks a streamed answer's part as still growing (also set in
/// `m.new_content` of an edit).
pub const PARTIAL_FIELD: &str = "org.lambda.matrix.partial";

/// Content of [`PART_MARK`]: a part's place in an answer. Version 1 is written without the
/// `version` field, as the first marks were (so every event keeps its size); a later version
/// writes it, and this binary does not trust a mark of a version it does not know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMark {
    /// Its index, from 0.
    pub index: usize,
    /// How many parts the answer has, once known (the last part says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Still growing (a streamed answer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The event whose text the answer used: the message, or an edit of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_of: Option<String>,
    /// The 🔁 reaction this answer was written again for (on the edits that replaced its
    /// text): the record that the reaction was acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub again: Option<String>,
    /// What the answer cost, on its last part: one entry per model that worked on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Vec<UsageMark>>,
    /// Record version.
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub version: u32,
}

/// One model's tokens for an answer, in its last part's mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageMark {
    /// The model.
    pub model: String,
    /// Tokens sent.
    pub prompt: u64,
    /// Tokens produced.
    pub completion: u64,
    /// Estimated from the text (the server did not say).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl From<&lambda_matrix_platform::Usage> for UsageMark {
    fn from(usage: &lambda_matrix_platform::Usage) -> Self {
        UsageMark {
            model: usage.model.clone(),
            prompt: usage.prompt,
            completion: usage.completion,
            estimated: usage.estimated,
        }
    }
}

fn first_version() -> u32 {
    1
}

fn is_first_version(version: &u32) -> bool {
    *version == 1
}

impl PartMark {
    /// Part `index` of `count`, complete.
    pub fn of(index: usize, count: usize) -> PartMark {
        PartMark {
            count: Some(count),
            ..PartMark::finished(index)
        }
    }

    /// Part `index`, complete, the count not yet known (a streamed answer's full part).
    pub fn finished(index: usize) -> PartMark {
        PartMark {
            index,
            count: None,
            partial: false,
            text_of: None,
            again: None,
            usage: None,
            version: VERSION,
        }
    }

    /// Part `index`, still growing.
    pub fn growing(index: usize) -> PartMark {
        PartMark {
            partial: true,
            ..PartMark::finished(index)
        }
    }

    /// The mark of `event` (its JSON), trusted only if `bot` sent it and its version is known;
    /// `None` for an event without one (a reply of an older version), a foreign sender, an
    /// unknown version or a malformed mark.
    pub fn of_event(event: &serde_json::Value, bot: &str) -> Option<PartMark> {
        if event.get("sender").and_then(|s| s.as_str()) != Some(bot) {
            return None;
        }
        let mark = event.get("content")?.get("m.relates_to")?.get(PART_MARK)?;
        let mark: PartMark = serde_json::from_value(mark.clone()).ok()?;
        (mark.version == VERSION).then_some(mark)
    }
}

/// One part of an answer already on the server, as the bot's events show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The reply event.
    pub event_id: OwnedEventId,
    /// The text it shows now, if known.
    pub body: Option<String>,
    /// Complete (not marked as still growing).
    pub done: bool,
    /// It says how many parts the answer has.
    pub counted: bool,
}

/// The parts of an answer already on the server, by index.
pub type Slots = std::collections::BTreeMap<usize, Slot>;

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

    #[test]
    fn part_marks_are_trusted_only_from_the_bot_in_a_known_version() {
        let event = |sender: &str, mark: serde_json::Value| json!({"sender": sender, "content": {"m.relates_to": {PART_MARK: mark}}});
        let written = PartMark {
            text_of: Some("$e".into()),
            ..PartMark::of(1, 3)
        };
        let wire = serde_json::to_value(&written).expect("serialises");
        assert_eq!(wire, json!({"index": 1, "count": 3, "text_of": "$e"}));
        assert_eq!(
            PartMark::of_event(&event(BOT, wire.clone()), BOT),
            Some(written)
        );
        let first = PartMark::of_event(&event(BOT, json!({"index": 0, "partial": true})), BOT);
        assert_eq!(first, Some(PartMark::growing(0)));
        assert_eq!(PartMark::of_event(&event("@anna:x", wire), BOT), None);
        let future = json!({"index": 0, "count": 1, "version": 2});
        assert_eq!(PartMark::of_event(&event(BOT, future), BOT), None);
        assert_eq!(
            PartMark::of_event(&event(BOT, json!({"count": 1})), BOT),
            None
        );
        assert_eq!(
            PartMark::of_event(&json!({"sender": BOT, "content": {}}), BOT),
            None
        );
    }
}
