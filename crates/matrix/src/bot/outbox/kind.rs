//! Whether the bot speaks for itself or answers for the platform.

use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;

/// How a message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `m.notice`: the bot's own text (command outcomes, hints). Never answered by bots.
    Notice,
    /// `m.text`: an answer from the platform.
    Answer,
}

pub(crate) fn content(kind: Kind, body: String, html: Option<String>) -> RoomMessageEventContent {
    match (kind, html) {
        (Kind::Notice, Some(html)) => RoomMessageEventContent::notice_html(body, html),
        (Kind::Notice, None) => RoomMessageEventContent::notice_plain(body),
        (Kind::Answer, Some(html)) => RoomMessageEventContent::text_html(body, html),
        (Kind::Answer, None) => RoomMessageEventContent::text_plain(body),
    }
}
