//! Streamed answers: the first words appear as the reply, which is then edited as the answer
//! grows (at most one edit per [`EDIT_EVERY`]), and a final edit shows the complete answer.
//!
//! Until that final edit the reply carries `org.lambda.matrix.partial: true` (and so does every
//! intermediate edit): catch-up counts a reply as the record of "handled" only once a final
//! edit without the mark exists, so a crash mid-stream leaves a message that is answered again
//! at the next start, into the same reply ([`Bot::remember_partial`]).

use super::context::PARTIAL_FIELD;
use super::reply::{content, Kind};
use super::Bot;
use crate::render::render_parts;
use anyhow::Context;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, OriginalSyncRoomMessageEvent, ReplacementMetadata, ReplyMetadata,
};
use matrix_sdk::ruma::{EventId, OwnedEventId};
use matrix_sdk::Room;
use std::time::Duration;
use tokio::sync::watch;

/// Least time between two edits of a streamed answer (homeservers rate-limit senders).
const EDIT_EVERY: Duration = Duration::from_secs(1);

impl Bot {
    /// Shows the answer as it grows, until `progress`'s sender is dropped; yields the reply
    /// shown (`existing` is a partial reply left by a previous run, reused).
    pub(super) fn show_progress(
        &self,
        room: Room,
        to: OriginalSyncRoomMessageEvent,
        existing: Option<OwnedEventId>,
        mut progress: watch::Receiver<String>,
    ) -> tokio::task::JoinHandle<Option<OwnedEventId>> {
        let bot = self.clone();
        tokio::spawn(async move {
            let mut shown = existing;
            let mut last = String::new();
            while progress.changed().await.is_ok() {
                let text = progress.borrow_and_update().clone();
                if text.trim().is_empty() || text == last {
                    continue;
                }
                let marked = format!("{text}\n\n{}", bot.texts().answer_in_progress());
                let sent = match &shown {
                    None => bot.send_partial(&room, &to, &marked).await.map(Some),
                    Some(reply) => bot.edit(&room, reply, &marked, true).await.map(|()| None),
                };
                match sent {
                    Ok(Some(reply)) => {
                        shown = Some(reply);
                        crate::crash_point!("mid-stream");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(room_id = %room.room_id(), error = format!("{error:#}"), "cannot show a streamed answer's progress")
                    }
                }
                last = text;
                tokio::time::sleep(EDIT_EVERY).await;
            }
            shown
        })
    }

    /// The first part of a streamed answer, as a reply marked partial.
    async fn send_partial(
        &self,
        room: &Room,
        to: &OriginalSyncRoomMessageEvent,
        markdown: &str,
    ) -> anyhow::Result<OwnedEventId> {
        let part = first_part(markdown);
        let reply = content(Kind::Answer, part.body, part.html).make_reply_to(
            ReplyMetadata::from(to),
            ForwardThread::Yes,
            AddMentions::No,
        );
        let mut json = serde_json::to_value(&reply)?;
        json[PARTIAL_FIELD] = serde_json::Value::Bool(true);
        Ok(room
            .send_raw("m.room.message", json)
            .await?
            .response
            .event_id)
    }

    /// Replaces the shown reply's text (`partial`: still growing).
    pub(super) async fn edit(
        &self,
        room: &Room,
        reply: &EventId,
        markdown: &str,
        partial: bool,
    ) -> anyhow::Result<()> {
        let part = first_part(markdown);
        let edit = content(Kind::Answer, part.body, part.html)
            .make_replacement(ReplacementMetadata::new(reply.to_owned(), None));
        let mut json = serde_json::to_value(&edit)?;
        if partial {
            json[PARTIAL_FIELD] = serde_json::Value::Bool(true);
            json["m.new_content"][PARTIAL_FIELD] = serde_json::Value::Bool(true);
        }
        room.send_raw("m.room.message", json)
            .await
            .context("cannot edit the answer")?;
        Ok(())
    }

    /// Ends a streamed answer: the shown reply gets the complete text (its first part; the rest
    /// follows as further replies).
    pub(super) async fn finish_shown(
        &self,
        room: &Room,
        to: &OriginalSyncRoomMessageEvent,
        reply: &EventId,
        markdown: &str,
    ) -> anyhow::Result<()> {
        let parts = crate::render::split_markdown(markdown);
        let Some((first, rest)) = parts.split_first() else {
            return self.edit(room, reply, markdown, false).await;
        };
        self.edit(room, reply, first, false).await?;
        for part in rest {
            self.reply(room, to.into(), part, Kind::Answer).await?;
        }
        Ok(())
    }

    /// A partial reply to `message` found by catch-up: the next answer to it goes there.
    pub(super) fn remember_partial(&self, message: OwnedEventId, reply: OwnedEventId) {
        super::lock(&self.inner.partials).insert(message, reply);
    }

    /// The partial reply a previous run left for `message`, if any.
    pub(super) fn take_partial(&self, message: &EventId) -> Option<OwnedEventId> {
        super::lock(&self.inner.partials).remove(message)
    }
}

fn first_part(markdown: &str) -> crate::render::Rendered {
    render_parts(markdown)
        .into_iter()
        .next()
        .unwrap_or(crate::render::Rendered {
            body: markdown.to_owned(),
            html: None,
        })
}
