//! Reactions that steer an answer, from the owner of a chat room; every other reaction is left
//! alone.
//!
//! - 🛑 on their message waiting for its answer, or on the answer being written, stops it like
//!   `!cancel` for that message alone: the text shown so far stays, marked, and a reply says
//!   it was stopped.
//! - 🔁 on a finished answer asks again (the message's text as answered, the chat's context
//!   before it) and replaces the answer's text by edits of its parts, each naming the reaction:
//!   that is the record it was acted on, so a restart never repeats it. It waits its turn in
//!   the room's queue; a reaction removed before then is not acted on.
//!
//! Both are read live, and by catch-up for what arrived while the bot was away.

use crate::bot::catchup::{meant, replied_to, AGAIN, STOP};
use crate::bot::runtime::{Fate, Incoming};
use crate::bot::Bot;
use crate::markers::PartMark;
use lambda_matrix_core::RoomKind;
use matrix_sdk::ruma::events::reaction::OriginalSyncReactionEvent;
use matrix_sdk::ruma::events::room::message::Relation;
use matrix_sdk::ruma::{EventId, OwnedEventId, OwnedUserId};
use matrix_sdk::Room;

impl Bot {
    /// A reaction synced live.
    pub(crate) async fn on_reaction(&self, event: OriginalSyncReactionEvent, room: Room) {
        let key = meant(&event.content.relates_to.key);
        if key != STOP && key != AGAIN {
            return;
        }
        let room_id = room.room_id().to_owned();
        let served = match self.room_record(room_id.as_str()) {
            Ok(Some(record)) => record.kind == RoomKind::Chat && record.owner == event.sender,
            Ok(None) => false,
            Err(error) => {
                tracing::info!(%room_id, %error, "cannot read the cache; a reaction is not acted on");
                false
            }
        };
        if !served {
            return;
        }
        let target = event.content.relates_to.event_id;
        if key == AGAIN {
            let again = Incoming::Again {
                reaction: event.event_id,
                answer: target,
                sender: event.sender,
            };
            return self.enqueue(room, again).await;
        }
        let pending = self.runtime().pending();
        if pending.stop(&room_id, &target) {
            tracing::info!(%room_id, message = %target, "stopped by a 🛑 reaction");
            return;
        }
        // On the answer being written: the message it answers.
        if let Some(message) = self.answered_by(&room, &target).await {
            if pending.stop(&room_id, &message) {
                tracing::info!(%room_id, %message, "stopped by a 🛑 reaction on its answer");
            }
        }
    }

    /// A 🔁 `reaction` on `answer`, in its turn: the answer written again, into its parts.
    pub(crate) async fn handle_again(
        &self,
        room: Room,
        reaction: OwnedEventId,
        answer: OwnedEventId,
        sender: OwnedUserId,
    ) {
        let room_id = room.room_id().to_owned();
        if self.runtime().pending().fate(&room_id, &reaction, "") == Fate::Redacted {
            tracing::info!(%reaction, "a 🔁 removed before its turn; not acted on");
            return;
        }
        match self.serving(room_id.as_str(), sender.as_str()).await {
            Some(record) if record.kind == RoomKind::Chat => {}
            _ => return,
        }
        let Some((message, text_of)) = self.finished_answer_to(&room, &answer).await else {
            tracing::info!(%reaction, %answer, "a 🔁 on something that is not a finished answer; left alone");
            return;
        };
        let Some(event) = super::messages::decrypted(&room, &message).await else {
            tracing::info!(%reaction, %message, "the message of a 🔁 cannot be read; left alone");
            return;
        };
        let mut slots = match self.complete_answer(&room, &message).await {
            Ok(Some(slots)) => slots,
            Ok(None) => {
                tracing::info!(%reaction, %message, "a 🔁 on an answer not finished; left alone");
                return;
            }
            Err(error) => {
                tracing::warn!(%reaction, error = format!("{error:#}"), "cannot read the answer of a 🔁; not acted on");
                return;
            }
        };
        // Every part is replaced, the same text too: each edit names the reaction.
        slots.values_mut().for_each(|slot| slot.done = false);
        self.outbox().remember_sent(message.clone(), slots);
        self.outbox()
            .remember_again(text_of.clone(), reaction.clone());
        // Asked as the message waiting for its answer (a 🛑 stops it), with the text the answer
        // used: an edit's, when it used one (so its parts keep naming that edit).
        let pending = self.runtime().pending();
        pending.wait(&room_id, &message);
        if text_of != message {
            let edited = super::messages::decrypted(&room, &text_of).await;
            if let Some(Relation::Replacement(edit)) = edited.and_then(|e| e.content.relates_to) {
                if let Some(text) = super::attachments::conversation_text(&edit.new_content.msgtype)
                {
                    pending.edit(&room_id, &message, &text_of, &text);
                }
            }
        }
        tracing::info!(%reaction, %message, "answering again for a 🔁");
        self.handle_message(room, event).await;
        pending.done(&room_id, &message);
        pending.take_covered(&room_id, &text_of);
        // Left over when no answer was delivered (an archived chat, a failed send): not for a
        // later answer to the same message.
        self.outbox().forget_again(&text_of);
    }

    /// The message the bot's answer `answer` (one of its parts, `m.text`) replies to, and the
    /// event whose text it answered (the message, or an edit of it).
    async fn finished_answer_to(
        &self,
        room: &Room,
        answer: &EventId,
    ) -> Option<(OwnedEventId, OwnedEventId)> {
        let config = matrix_sdk::config::RequestConfig::short_retry();
        let read = room.load_or_fetch_event(answer, Some(config)).await.ok()?;
        let json: serde_json::Value = read.raw().deserialize_as().ok()?;
        if json["content"]["msgtype"] != "m.text" {
            return None;
        }
        let mark = PartMark::of_event(&json, self.bot_id())?;
        let message = replied_to(&json)?;
        let text_of = match mark.text_of.and_then(|id| OwnedEventId::try_from(id).ok()) {
            Some(text_of) => text_of,
            None => message.clone(),
        };
        Some((message, text_of))
    }

    /// The message `answer` (an event of the bot's) replies to.
    async fn answered_by(&self, room: &Room, answer: &EventId) -> Option<OwnedEventId> {
        let config = matrix_sdk::config::RequestConfig::short_retry();
        let read = room.load_or_fetch_event(answer, Some(config)).await.ok()?;
        let json: serde_json::Value = read.raw().deserialize_as().ok()?;
        if json["sender"] != self.bot_id() {
            return None;
        }
        replied_to(&json)
    }
}
