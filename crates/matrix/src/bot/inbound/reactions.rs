//! Reactions that steer an answer. 🛑 from the owner, on their message waiting for its answer
//! or on the answer being written, stops it like `!cancel` for that message alone: the text
//! shown so far stays, marked, and a reply says it was stopped. Read live, and by catch-up for
//! what arrived while the bot was away ([`crate::bot::catchup::Stops`]). Every other reaction is left alone.

use crate::bot::catchup::{meant, replied_to, STOP};
use crate::bot::Bot;
use lambda_matrix_core::RoomKind;
use matrix_sdk::ruma::events::reaction::OriginalSyncReactionEvent;
use matrix_sdk::ruma::{EventId, OwnedEventId};
use matrix_sdk::Room;

impl Bot {
    /// A reaction synced live.
    pub(crate) async fn on_reaction(&self, event: OriginalSyncReactionEvent, room: Room) {
        if meant(&event.content.relates_to.key) != STOP {
            return;
        }
        let room_id = room.room_id().to_owned();
        let served = match self.room_record(room_id.as_str()) {
            Ok(Some(record)) => record.kind == RoomKind::Chat && record.owner == event.sender,
            Ok(None) => false,
            Err(error) => {
                tracing::info!(%room_id, %error, "cannot read the cache; a 🛑 reaction is not acted on");
                false
            }
        };
        if !served {
            return;
        }
        let target = event.content.relates_to.event_id;
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
