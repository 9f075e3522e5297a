//! Sending what the bot says: notices for its own text, text messages for answers, each a
//! reply (`m.in_reply_to`) to the event it answers, split when long.

use super::Bot;
use crate::render::render_parts;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, OriginalSyncRoomMessageEvent, ReplyMetadata,
    RoomMessageEventContent,
};
use matrix_sdk::Room;

/// How a message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `m.notice`: the bot's own text (command outcomes, hints). Never answered by bots.
    Notice,
    /// `m.text`: an answer from the platform.
    Answer,
}

pub(super) fn content(kind: Kind, body: String, html: Option<String>) -> RoomMessageEventContent {
    match (kind, html) {
        (Kind::Notice, Some(html)) => RoomMessageEventContent::notice_html(body, html),
        (Kind::Notice, None) => RoomMessageEventContent::notice_plain(body),
        (Kind::Answer, Some(html)) => RoomMessageEventContent::text_html(body, html),
        (Kind::Answer, None) => RoomMessageEventContent::text_plain(body),
    }
}

impl Bot {
    /// Posts `markdown` as a notice, not as a reply (welcomes).
    pub(super) async fn say(&self, room: &Room, markdown: &str) -> anyhow::Result<()> {
        for part in render_parts(markdown) {
            room.send(content(Kind::Notice, part.body, part.html))
                .await?;
        }
        Ok(())
    }

    /// Posts `markdown` as a reply to `to`; every part of a split answer replies to `to`.
    pub(super) async fn reply(
        &self,
        room: &Room,
        to: ReplyMetadata<'_>,
        markdown: &str,
        kind: Kind,
    ) -> anyhow::Result<()> {
        for part in render_parts(markdown) {
            let message = content(kind, part.body, part.html).make_reply_to(
                to,
                ForwardThread::Yes,
                AddMentions::No,
            );
            room.send(message).await?;
        }
        Ok(())
    }

    /// Replies with a notice and logs (rather than returns) a failure to send.
    pub(super) async fn reply_notice(
        &self,
        room: &Room,
        to: &OriginalSyncRoomMessageEvent,
        markdown: &str,
    ) {
        if let Err(error) = self.reply(room, to.into(), markdown, Kind::Notice).await {
            tracing::error!(room_id = %room.room_id(), event_id = %to.event_id, error = format!("{error:#}"), "cannot send a reply");
        }
    }
}
