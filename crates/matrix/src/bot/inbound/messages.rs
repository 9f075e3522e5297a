//! Incoming messages: who may speak where, commands versus conversation (answers: see
//! [`super::answer`]), edits, undecryptable events and renames.

use super::attachments::{said_in, Said};
use crate::bot::outbox::Kind;
use crate::bot::runtime::Incoming;
use crate::bot::Bot;
use crate::command::{self, Command};
use lambda_matrix_core::{Chat, ChatName, ChatStatus, RoomKind, RoomRecord};
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, ReplyMetadata,
};
use matrix_sdk::ruma::events::room::name::OriginalSyncRoomNameEvent;
use matrix_sdk::ruma::{EventId, OwnedEventId, OwnedUserId, RoomId};
use matrix_sdk::Room;
use std::time::Duration;

/// How long to wait for a message's keys (they can arrive a sync later) before asking to resend,
/// counted from the last keys that arrived and once the live sync has drained the to-device
/// messages waiting on the homeserver: after downtime the keys of many messages come 100 to a
/// response, and a backlog takes several.
const KEY_WAIT: Duration = Duration::from_secs(4);
/// The longest wait for one message's keys, backlog or not.
const KEY_WAIT_MAX: Duration = Duration::from_secs(60);

impl Bot {
    /// Handles one message, in its room's order.
    pub(crate) async fn handle_message(&self, room: Room, event: OriginalSyncRoomMessageEvent) {
        let sender = event.sender.as_str();
        let room_id = room.room_id().as_str();
        if sender == self.bot_id() {
            return;
        }
        if let Some(Relation::Replacement(replacement)) = &event.content.relates_to {
            let original = replacement.event_id.clone();
            let said = said_in(&replacement.new_content.msgtype).ok();
            return self.handle_edit(room, &event, original, said).await;
        }
        if matches!(event.content.msgtype, MessageType::Notice(_)) {
            return; // other bots' notices: never answered, no loops
        }
        let body = readable_body(&event.content.msgtype);
        let Some(record) = self.record_or_repair(room_id, sender).await else {
            tracing::info!(
                room_id,
                sender,
                "message in a room the bot cannot place; ignored"
            );
            let is_command = body.as_deref().is_some_and(|b| command::parse(b).is_some());
            if is_command && self.settings().is_allowed(sender) {
                self.outbox()
                    .reply_notice(&room, &event, &self.texts().unknown_room())
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
        if !self.may_write(&room, &event).await {
            return;
        }
        let said = match said_in(&event.content.msgtype) {
            Ok(said) => said,
            Err(unusable) => return self.refuse(&room, &event, &unusable).await,
        };
        if let Some(parsed) = body.as_deref().and_then(command::parse) {
            return self.command_message(parsed, &record, &room, &event).await;
        }
        match (record.kind, record.chat_id) {
            (RoomKind::Chat, Some(id)) => match self.chat_or_repair(sender, id, room_id).await {
                Ok(chat) if chat.status == ChatStatus::Archived => {
                    self.outbox()
                        .reply_notice(&room, &event, &self.texts().archived_notice(id))
                        .await;
                }
                Ok(chat) => self.answer_said(&room, &event, chat, said, false).await,
                Err(error) => {
                    tracing::warn!(room_id, sender, chat_id = %id, %error, "chat row missing for a known room");
                    self.outbox()
                        .reply_notice(&room, &event, &self.texts().unknown_room())
                        .await;
                }
            },
            _ => {
                self.outbox()
                    .reply_notice(&room, &event, &self.texts().dm_hint())
                    .await
            }
        }
    }

    /// Runs a command (under the person's lock) and replies with its outcome.
    async fn command_message(
        &self,
        parsed: Result<Command, command::ParseError>,
        record: &RoomRecord,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
    ) {
        let sender = event.sender.as_str();
        let lock = self.runtime().people().get(sender);
        let _serialised = lock.lock().await;
        let leaves = matches!(
            parsed,
            Ok(Command::Delete {
                confirmed: true,
                ..
            } | Command::ForgetMe { confirmed: true })
        );
        let outcome = match parsed {
            Ok(command) => {
                self.metrics().command();
                self.run_command(command, record, room, event).await
            }
            Err(error) => {
                tracing::info!(room_id = %room.room_id(), sender, ?error, "command not understood");
                self.texts().parse_error(&error)
            }
        };
        self.outbox().reply_notice(room, event, &outcome).await;
        if leaves {
            // Told; now leave (the reply above is the command's record).
            self.finish_leaving().await;
        }
    }

    /// Whether the person may be answered: still in `MATRIX_ALLOWED_USERS` (a removed person is
    /// told once per run, then met with silence; nothing of theirs is deleted) and under
    /// `MATRIX_MAX_MESSAGES_PER_MINUTE` by send time (a message over it gets a notice instead of
    /// an answer: the notice is its record of "handled").
    async fn may_write(&self, room: &Room, event: &OriginalSyncRoomMessageEvent) -> bool {
        let sender = event.sender.as_str();
        let limits = self.runtime().limits();
        if !self.settings().is_allowed(sender) {
            if limits.tell_not_allowed(sender) {
                tracing::info!(room_id = %room.room_id(), sender, "someone no longer in MATRIX_ALLOWED_USERS wrote; told once, then silence");
                self.outbox()
                    .reply_notice(room, event, &self.texts().no_longer_allowed())
                    .await;
            }
            self.record_refused(room, u64::from(event.origin_server_ts.0))
                .await;
            return false;
        }
        limits.allowed_again(sender);
        let max = self.settings().limits.max_messages_per_minute;
        let sent_at = u64::from(event.origin_server_ts.0);
        if !limits.messages.take(sender, sent_at, max) {
            tracing::info!(room_id = %room.room_id(), sender, max, "over MATRIX_MAX_MESSAGES_PER_MINUTE; not answered");
            self.outbox()
                .reply_notice(room, event, &self.texts().too_many_messages(max))
                .await;
            return false;
        }
        true
    }

    /// Writes down on the server that the room's messages up to `sent_at` were refused, so a
    /// start after the person is allowed again does not answer them (docs/DESIGN.md).
    async fn record_refused(&self, room: &Room, sent_at: u64) {
        let until = match crate::records::refused_until(room).await {
            Ok(until) => until.unwrap_or(0).max(sent_at),
            Err(error) => {
                tracing::warn!(room_id = %room.room_id(), %error, "the refused-messages record is unreadable; writing it anew");
                sent_at
            }
        };
        if let Err(error) = crate::records::write_refused(room, until).await {
            tracing::warn!(room_id = %room.room_id(), error = format!("{error:#}"), "cannot record a refused message; it is answered if its sender is allowed again before it is older than MATRIX_CATCHUP_MAX_AGE");
        }
    }

    /// The chat, repairing the cache once if its row is missing; from the room's records on the
    /// homeserver if the cache cannot be read.
    async fn chat_or_repair(
        &self,
        owner: &str,
        id: lambda_matrix_core::ChatId,
        room_id: &str,
    ) -> Result<Chat, lambda_matrix_core::ChatError> {
        match self.chats().get(owner, id) {
            Err(lambda_matrix_core::ChatError::NotFound(_)) => {
                if let Err(error) = self.repair(room_id, owner).await {
                    tracing::error!(
                        room_id,
                        error = format!("{error:#}"),
                        "the room could not be repaired"
                    );
                }
                self.chats().get(owner, id)
            }
            Err(lambda_matrix_core::ChatError::Store(error)) => {
                tracing::error!(room_id, %error, "cannot read the cache; the room's records on the homeserver decide");
                match self.chat_from_records(room_id, owner, id).await {
                    Ok(Some(chat)) => Ok(chat),
                    Ok(None) => Err(lambda_matrix_core::ChatError::Store(error)),
                    Err(records) => {
                        tracing::error!(
                            room_id,
                            error = format!("{records:#}"),
                            "nor can the room's records be read"
                        );
                        Err(lambda_matrix_core::ChatError::Store(error))
                    }
                }
            }
            other => other,
        }
    }

    /// An edit of `original` whose own job came up. If an answer already used its text there is
    /// nothing to do; otherwise (the original was answered before the edit) the edited text gets
    /// a fresh answer, marked as such, as a reply to the edit. Edits of commands are not run.
    async fn handle_edit(
        &self,
        room: Room,
        edit: &OriginalSyncRoomMessageEvent,
        original: OwnedEventId,
        said: Option<Said>,
    ) {
        let room_id = room.room_id().to_owned();
        if self
            .runtime()
            .pending()
            .take_covered(&room_id, &edit.event_id)
        {
            tracing::debug!(%room_id, event_id = %edit.event_id, "edit already answered in its edited form");
            return;
        }
        let Some(said) = said else {
            return;
        };
        let Some(record) = self
            .record_or_repair(room_id.as_str(), edit.sender.as_str())
            .await
        else {
            return;
        };
        let (RoomKind::Chat, Some(id)) = (record.kind, record.chat_id) else {
            return; // edits in the direct chat are not run
        };
        if record.owner != edit.sender.as_str() || !self.settings().is_allowed(&record.owner) {
            return;
        }
        let was_command = match room.event(&original, None).await {
            Ok(event) => event
                .raw()
                .get_field::<serde_json::Value>("content")
                .ok()
                .flatten()
                .and_then(|c| c["body"].as_str().map(|b| command::parse(b).is_some()))
                .unwrap_or(false),
            Err(error) => {
                tracing::debug!(%room_id, %original, %error, "cannot read an edited message; treating it as conversation");
                false
            }
        };
        let is_command = matches!(&said, Said::Text(body) if command::parse(body).is_some());
        if was_command || is_command {
            tracing::info!(%room_id, event_id = %edit.event_id, "edits of commands are not run");
            return;
        }
        match self.chats().get(&record.owner, id) {
            Ok(chat) if chat.status == ChatStatus::Active => {
                tracing::info!(%room_id, event_id = %edit.event_id, %original, "message edited after its answer; answering again");
                self.answer_said(&room, edit, chat, said, true).await
            }
            _ => {}
        }
    }

    /// `!cancel`'s outcome: how many answers it stopped (see [`crate::bot::runtime::Pending`]).
    pub(crate) fn cancel_outcome(&self, room: &RoomId, command: &EventId) -> String {
        let stopped = self
            .runtime()
            .pending()
            .cancelled_by(&room.to_owned(), &command.to_owned());
        if stopped == 0 {
            self.texts().nothing_to_cancel()
        } else {
            self.texts().cancel_done(stopped)
        }
    }

    /// The room's cache row, repaired from the server's records if it is missing; if the cache
    /// cannot be read, the row the records imply.
    /// `None` when neither tells (logged): the event is not handled.
    async fn record_or_repair(&self, room_id: &str, sender: &str) -> Option<RoomRecord> {
        match self.room_record(room_id) {
            Ok(Some(record)) => return Some(record),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(
                    room_id,
                    error = format!("{error:#}"),
                    "cannot read the cache; the room's records on the homeserver decide"
                );
            }
        }
        match self.repair(room_id, sender).await {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(
                    room_id,
                    sender,
                    error = format!("{error:#}"),
                    "the room's row cannot be repaired; the event is not handled"
                );
                None
            }
        }
    }

    /// The row of a chat room or direct chat whose allowed owner is `sender`: a room where the
    /// bot serves them.
    pub(crate) async fn serving(&self, room_id: &str, sender: &str) -> Option<RoomRecord> {
        self.record_or_repair(room_id, sender).await.filter(|r| {
            r.owner == sender && r.kind != RoomKind::Space && self.settings().is_allowed(&r.owner)
        })
    }

    /// Handles one queued event. A panic in it (a bug) is caught here: the room's worker goes
    /// on with the next event, the jobs count stays right, and the person is told something
    /// went wrong on the bot's side (that reply is the record of "handled").
    pub(crate) async fn handle_guarded(&self, room: Room, incoming: Incoming) {
        use futures_util::FutureExt;
        let (event_id, sender) = (incoming.event_id().to_owned(), incoming.sender().to_owned());
        let handling = async {
            match incoming {
                Incoming::Message(event) => self.handle_message(room.clone(), *event).await,
                Incoming::Undecryptable { event_id, sender } => {
                    self.handle_undecryptable(room.clone(), event_id, sender)
                        .await
                }
                Incoming::UnreadableFile { event_id, sender } => {
                    self.handle_unreadable_file(room.clone(), event_id, sender)
                        .await
                }
                Incoming::Again {
                    reaction,
                    answer,
                    sender,
                } => {
                    self.handle_again(room.clone(), reaction, answer, sender)
                        .await
                }
            }
        };
        let Err(panic) = std::panic::AssertUnwindSafe(handling).catch_unwind().await else {
            return;
        };
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %what, "handling this event panicked (a bug); telling the person");
        let to = ReplyMetadata::new(&event_id, &sender, None);
        if let Err(error) = self
            .outbox()
            .reply(&room, to, &self.texts().command_failed(), Kind::Notice)
            .await
        {
            tracing::warn!(error = format!("{error:#}"), "cannot send a reply");
        }
    }

    /// An encrypted event the bot cannot read: waits briefly for its keys (they can arrive a
    /// sync later), then handles it as a message, or asks the person to resend (once: the reply
    /// is the record that it was handled).
    pub(crate) async fn handle_undecryptable(
        &self,
        room: Room,
        event_id: OwnedEventId,
        sender: OwnedUserId,
    ) {
        let room_id = room.room_id().as_str();
        if sender.as_str() == self.bot_id() {
            return;
        }
        let Some(record) = self.serving(room_id, sender.as_str()).await else {
            tracing::info!(room_id, %sender, %event_id, "undecryptable event from someone the bot does not serve here; ignored");
            return;
        };
        if let Some(message) = self.wait_for_keys(&room, &event_id).await {
            tracing::info!(room_id, %event_id, "keys arrived; handling the message");
            return self.handle_message(room, message).await;
        }
        if self.removed_meanwhile(&room, &event_id).await {
            tracing::info!(room_id, %event_id, "an undecryptable message was removed; not answered");
            return;
        }
        tracing::warn!(room_id, person = %record.owner, %event_id, "cannot decrypt a message; asking to resend");
        let to = ReplyMetadata::new(&event_id, &sender, None);
        // It answers this event's own (unread) text: an edit of it sent before this notice is
        // not covered by it, and gets its own reply (catch-up reads `text_of`).
        let text = self.texts().could_not_decrypt();
        if let Err(error) = self
            .outbox()
            .reply_answering(&room, to, &text, Kind::Notice, Some(&event_id))
            .await
        {
            tracing::warn!(room_id, %event_id, error = format!("{error:#}"), "cannot send a reply");
        }
    }

    /// Whether the homeserver now shows `event_id` as removed (redacted while the bot waited
    /// for its keys, or before it was read back). Unknown counts as not removed: the person is
    /// asked to resend rather than left without a word.
    async fn removed_meanwhile(&self, room: &Room, event_id: &OwnedEventId) -> bool {
        match room.event(event_id, None).await {
            Ok(event) => event
                .raw()
                .get_field::<serde_json::Value>("unsigned")
                .is_ok_and(|unsigned| unsigned.is_some_and(|u| u["redacted_because"].is_object())),
            Err(error) => {
                tracing::debug!(%error, "cannot read the event again; taking it as not removed");
                false
            }
        }
    }

    /// The event decrypted, once a room key for its room arrives (the SDK's room-key stream),
    /// within [`KEY_WAIT`]; `None` if it stays unreadable. A message of a session already
    /// given up on, sent before that, gets one try and no wait (see
    /// [`crate::bot::runtime::Keyless`]).
    async fn wait_for_keys(
        &self,
        room: &Room,
        event_id: &OwnedEventId,
    ) -> Option<OriginalSyncRoomMessageEvent> {
        use futures_util::StreamExt;
        // Subscribed before the first try, so a key that arrives in between is not missed.
        let keys = self.client().encryption().room_keys_received_stream().await;
        let sealed = match read(room, event_id).await {
            Read::Message(message) => return Some(*message),
            Read::Sealed(sealed) => sealed,
        };
        let keyless = self.runtime().keyless();
        if let Some((session, sent_ms)) = &sealed {
            if keyless.already_waited(room.room_id(), session, *sent_ms) {
                tracing::info!(room_id = %room.room_id(), %event_id, "no wait: its session's keys did not come for an earlier message");
                return None;
            }
        }
        let mut keys = Box::pin(keys?);
        let now = tokio::time::Instant::now;
        let cap = now() + KEY_WAIT_MAX;
        let mut deadline = now() + KEY_WAIT;
        let found = loop {
            let batch = match tokio::time::timeout_at(deadline.min(cap), keys.next()).await {
                Ok(Some(batch)) => batch,
                // Keys still wait on the homeserver (or the live sync has not run yet).
                Err(_) if !self.metrics().is_to_device_drained() && now() < cap => {
                    deadline = now() + KEY_WAIT;
                    continue;
                }
                // A key restored from the backup may come without a notice: one last try.
                _ => break decrypted(room, event_id).await,
            };
            // Keys are coming (perhaps a backlog): the rest get time too.
            deadline = now() + KEY_WAIT;
            let for_this_room = batch
                .map(|infos| infos.iter().any(|k| k.room_id == room.room_id()))
                .unwrap_or(true); // missed some notices: try again anyway
            if for_this_room {
                if let Some(message) = decrypted(room, event_id).await {
                    break Some(message);
                }
            }
        };
        if let (None, Some((session, _))) = (&found, &sealed) {
            keyless.gave_up(room.room_id(), session, crate::calendar::now_ms());
        }
        found
    }

    /// A room renamed in a client renames its chat.
    pub(crate) fn on_room_name(&self, event: OriginalSyncRoomNameEvent, room: Room) {
        let sender = event.sender.as_str();
        if sender == self.bot_id() {
            return; // the bot's own renames are already in the cache
        }
        let room_id = room.room_id().as_str();
        let record = match self.room_record(room_id) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(room_id, error = format!("{error:#}"), "cannot read the cache; the chat keeps its name here until a restart reads the room");
                return;
            }
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

/// The text of a message the bot reads (text and emotes); `None` for anything else.
pub(crate) fn readable_body(msgtype: &MessageType) -> Option<String> {
    match msgtype {
        MessageType::Text(text) => Some(text.body.clone()),
        MessageType::Emote(emote) => Some(emote.body.clone()),
        _ => None,
    }
}

/// `event_id` in `room` as a message, if it can be read now.
pub(super) async fn decrypted(
    room: &Room,
    event_id: &OwnedEventId,
) -> Option<OriginalSyncRoomMessageEvent> {
    match read(room, event_id).await {
        Read::Message(message) => Some(*message),
        Read::Sealed(_) => None,
    }
}

/// An event read by id: a message, or not one (still encrypted: its megolm session and when
/// it was sent, if the event says).
enum Read {
    Message(Box<OriginalSyncRoomMessageEvent>),
    Sealed(Option<(String, u64)>),
}

async fn read(room: &Room, event_id: &OwnedEventId) -> Read {
    let Ok(event) = room.event(event_id, None).await else {
        return Read::Sealed(None);
    };
    let Ok(json) = event.raw().deserialize_as::<serde_json::Value>() else {
        return Read::Sealed(None);
    };
    if json["type"] == "m.room.message" {
        if let Ok(message) = serde_json::from_value(json) {
            return Read::Message(Box::new(message));
        }
        return Read::Sealed(None);
    }
    let session = json["content"]["session_id"].as_str().map(str::to_owned);
    let sent = json["origin_server_ts"].as_u64();
    Read::Sealed(session.zip(sent))
}
