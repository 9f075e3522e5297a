//! Incoming messages: who may speak where, commands versus conversation, and answers from the
//! platform with a typing notice kept alive.

use super::reply::Kind;
use super::Bot;
use crate::command;
use lambda_matrix_core::{Chat, ChatName, ChatStatus, RoomKind};
use lambda_matrix_platform::{PlatformError, Request};
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, ReplyMetadata,
};
use matrix_sdk::ruma::events::room::name::OriginalSyncRoomNameEvent;
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId};
use matrix_sdk::Room;
use std::time::Duration;

/// How long to wait for a message's keys before asking to resend, per try.
const KEY_WAIT: Duration = Duration::from_secs(1);
/// Tries before asking to resend.
const KEY_WAIT_TRIES: usize = 4;

/// How often the typing notice is renewed while the platform works.
const TYPING_RENEW: Duration = Duration::from_secs(3);

impl Bot {
    /// Handles one message, in its room's order.
    pub(super) async fn handle_message(&self, room: Room, event: OriginalSyncRoomMessageEvent) {
        let sender = event.sender.as_str();
        let room_id = room.room_id().as_str();
        if sender == self.bot_id() {
            return;
        }
        if matches!(event.content.relates_to, Some(Relation::Replacement(_))) {
            tracing::debug!(room_id, event_id = %event.event_id, "edits are not answered");
            return;
        }
        let body = match &event.content.msgtype {
            MessageType::Notice(_) => return, // other bots' notices: never answered, no loops
            MessageType::Text(text) => Some(text.body.clone()),
            MessageType::Emote(emote) => Some(emote.body.clone()),
            _ => None,
        };
        let record = match self.room_record(room_id) {
            Some(record) => Some(record),
            None => self.repair(room_id).await,
        };
        let Some(record) = record else {
            tracing::info!(
                room_id,
                sender,
                "message in a room the bot cannot place; ignored"
            );
            let is_command = body.as_deref().is_some_and(|b| command::parse(b).is_some());
            if is_command && self.settings().is_allowed(sender) {
                self.reply_notice(&room, &event, &self.texts().unknown_room())
                    .await;
            }
            return;
        };
        if record.owner != sender {
            tracing::info!(room_id, sender, owner = %record.owner, "message from someone other than the room's owner; ignored");
            return;
        }
        if record.kind == RoomKind::Space {
            return;
        }
        let Some(body) = body else {
            self.reply_notice(&room, &event, &self.texts().text_only())
                .await;
            return;
        };
        if let Some(parsed) = command::parse(&body) {
            let lock = self.inner.people.get(sender);
            let _serialised = lock.lock().await;
            let outcome = match parsed {
                Ok(command) => {
                    self.inner.metrics.command();
                    self.run_command(command, &record, &room, &event).await
                }
                Err(error) => {
                    tracing::info!(room_id, sender, ?error, "command not understood");
                    self.texts().parse_error(&error)
                }
            };
            self.reply_notice(&room, &event, &outcome).await;
            return;
        }
        match (record.kind, record.chat_id) {
            (RoomKind::Chat, Some(id)) => match self.chat_or_repair(sender, id, room_id).await {
                Ok(chat) if chat.status == ChatStatus::Archived => {
                    self.reply_notice(&room, &event, &self.texts().archived_notice(id))
                        .await;
                }
                Ok(chat) => self.answer(&room, &event, chat, body).await,
                Err(error) => {
                    tracing::warn!(room_id, sender, chat_id = %id, %error, "chat row missing for a known room");
                    self.reply_notice(&room, &event, &self.texts().unknown_room())
                        .await;
                }
            },
            _ => {
                self.reply_notice(&room, &event, &self.texts().dm_hint())
                    .await
            }
        }
    }

    /// The chat, repairing the cache once if its row is missing.
    async fn chat_or_repair(
        &self,
        owner: &str,
        id: lambda_matrix_core::ChatId,
        room_id: &str,
    ) -> Result<Chat, lambda_matrix_core::ChatError> {
        match self.chats().get(owner, id) {
            Err(lambda_matrix_core::ChatError::NotFound(_)) => {
                self.repair(room_id).await;
                self.chats().get(owner, id)
            }
            other => other,
        }
    }

    /// Asks the platform and replies with its answer, keeping a typing notice alive meanwhile.
    async fn answer(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        chat: Chat,
        text: String,
    ) {
        // Off the answer's path: the notice goes out while the platform works. Never aborted, so
        // it is sent even when the answer is instant; it is awaited before the notice is cleared.
        let first_notice = {
            let room = room.clone();
            tokio::spawn(async move {
                if let Err(error) = room.typing_notice(true).await {
                    tracing::debug!(%error, "cannot send a typing notice");
                }
            })
        };
        let typing_room = room.clone();
        let typing = tokio::spawn(async move {
            loop {
                tokio::time::sleep(TYPING_RENEW).await;
                if let Err(error) = typing_room.typing_notice(true).await {
                    tracing::debug!(%error, "cannot renew the typing notice");
                }
            }
        });
        let request = Request {
            user_id: chat.owner.clone(),
            chat_id: chat.id,
            text,
            context: Vec::new(),
        };
        let progress = lambda_matrix_platform::Progress::new(String::new());
        let limit = self.settings().platform_timeout;
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(limit, self.inner.platform.answer(request, &progress)).await {
            Ok(result) => result,
            Err(_) => Err(PlatformError::Timeout(limit)),
        };
        typing.abort();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let (text, kind) = match result {
            Ok(answer) => {
                self.inner.metrics.answered(started.elapsed());
                tracing::info!(room_id = %room.room_id(), person = %chat.owner, chat_id = %chat.id, elapsed_ms, "answered");
                (answer.text, Kind::Answer)
            }
            Err(PlatformError::Timeout(_)) => {
                self.inner.metrics.platform_error(started.elapsed());
                tracing::warn!(room_id = %room.room_id(), person = %chat.owner, chat_id = %chat.id, elapsed_ms, platform = self.inner.platform.name(), "platform timed out");
                (self.texts().platform_timeout(), Kind::Notice)
            }
            Err(error) => {
                self.inner.metrics.platform_error(started.elapsed());
                tracing::warn!(room_id = %room.room_id(), person = %chat.owner, chat_id = %chat.id, %error, platform = self.inner.platform.name(), "platform failed");
                (self.texts().platform_failed(), Kind::Notice)
            }
        };
        crate::crash_point!("after-answer-before-reply");
        if let Err(error) = self.reply(room, event.into(), &text, kind).await {
            tracing::error!(room_id = %room.room_id(), event_id = %event.event_id, error = format!("{error:#}"), "cannot send the answer");
        }
        let _ = first_notice.await;
        let _ = room.typing_notice(false).await;
    }

    /// An encrypted event the bot cannot read: waits briefly for its keys (they can arrive a
    /// sync later), then handles it as a message, or asks the person to resend (once: the reply
    /// is the record that it was handled).
    pub(super) async fn handle_undecryptable(
        &self,
        room: Room,
        event_id: OwnedEventId,
        sender: OwnedUserId,
    ) {
        let room_id = room.room_id().as_str();
        if sender.as_str() == self.bot_id() {
            return;
        }
        let record = match self.room_record(room_id) {
            Some(record) => Some(record),
            None => self.repair(room_id).await,
        };
        let Some(record) =
            record.filter(|r| r.owner == sender.as_str() && r.kind != RoomKind::Space)
        else {
            tracing::info!(room_id, %sender, %event_id, "undecryptable event from someone the bot does not serve here; ignored");
            return;
        };
        for _ in 0..KEY_WAIT_TRIES {
            tokio::time::sleep(KEY_WAIT).await;
            let Ok(event) = room.event(&event_id, None).await else {
                continue;
            };
            let Ok(json) = event.raw().deserialize_as::<serde_json::Value>() else {
                continue;
            };
            if json["type"] == "m.room.message" {
                if let Ok(message) = serde_json::from_value::<OriginalSyncRoomMessageEvent>(json) {
                    tracing::info!(room_id, %event_id, "keys arrived; handling the message");
                    return self.handle_message(room, message).await;
                }
            }
        }
        tracing::warn!(room_id, person = %record.owner, %event_id, "cannot decrypt a message; asking to resend");
        let to = ReplyMetadata::new(&event_id, &sender, None);
        if let Err(error) = self
            .reply(&room, to, &self.texts().could_not_decrypt(), Kind::Notice)
            .await
        {
            tracing::error!(room_id, %event_id, error = format!("{error:#}"), "cannot send a reply");
        }
    }

    /// A room renamed in a client renames its chat.
    pub(super) fn on_room_name(&self, event: OriginalSyncRoomNameEvent, room: Room) {
        let sender = event.sender.as_str();
        if sender == self.bot_id() {
            return; // the bot's own renames are already in the cache
        }
        let room_id = room.room_id().as_str();
        let Some(record) = self.room_record(room_id) else {
            return;
        };
        let (RoomKind::Chat, Some(id)) = (record.kind, record.chat_id) else {
            return;
        };
        if record.owner != sender {
            tracing::info!(
                room_id,
                sender,
                "room renamed by someone other than its owner; chat name unchanged"
            );
            return;
        }
        match ChatName::parse(&event.content.name) {
            Ok(name) => match self.chats().rename(sender, id, &name) {
                Ok(chat) => {
                    tracing::info!(room_id, person = sender, chat_id = %id, name = %chat.name, "chat renamed from a client")
                }
                Err(error) => tracing::warn!(room_id, %error, "cannot record a rename"),
            },
            Err(error) => {
                tracing::info!(room_id, %error, "room renamed to an unusable chat name; chat name unchanged")
            }
        }
    }
}
