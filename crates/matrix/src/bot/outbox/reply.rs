//! Sending what the bot says: notices for its own text, text messages for answers, each a
//! reply (`m.in_reply_to`) to the event it answers, split into parts that each fit in one
//! event (see [`super::events`] and [`super::deliver`]).

use super::kind::Kind;
use super::{events, Outbox};
use crate::markers::Slots;
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, ReplyMetadata};
use matrix_sdk::Room;

impl Outbox {
    /// Posts `markdown` as a notice, not as a reply (welcomes).
    pub(crate) async fn say(&self, room: &Room, markdown: &str) -> anyhow::Result<()> {
        for part in events::parts(markdown) {
            self.send_event(room, events::plain(Kind::Notice, &part))
                .await?;
        }
        Ok(())
    }

    /// Posts `markdown` as a reply to `to`; every part of a split answer replies to `to`.
    pub(crate) async fn reply(
        &self,
        room: &Room,
        to: ReplyMetadata<'_>,
        markdown: &str,
        kind: Kind,
    ) -> anyhow::Result<()> {
        self.reply_answering(room, to, markdown, kind, None).await
    }

    /// [`Outbox::reply`], saying whose text it answers (`text_of`: the message or the edit of it
    /// the answer used; written in each part's [`crate::markers::PartMark`]).
    pub(crate) async fn reply_answering(
        &self,
        room: &Room,
        to: ReplyMetadata<'_>,
        markdown: &str,
        kind: Kind,
        text_of: Option<&matrix_sdk::ruma::EventId>,
    ) -> anyhow::Result<()> {
        let parts = events::parts(markdown);
        self.deliver_parts(room, to, &parts, kind, &mut Slots::new(), text_of)
            .await
    }

    /// Replies with a notice and logs (rather than returns) a failure to send.
    pub(crate) async fn reply_notice(
        &self,
        room: &Room,
        to: &OriginalSyncRoomMessageEvent,
        markdown: &str,
    ) {
        if let Err(error) = self.reply(room, to.into(), markdown, Kind::Notice).await {
            tracing::warn!(room_id = %room.room_id(), event_id = %to.event_id, error = format!("{error:#}"), "cannot send a reply");
        }
    }
}
