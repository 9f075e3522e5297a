//! The event handlers: what the sync delivers goes on its room's queue (messages, undecryptable
//! events, unreadable files), changes what waits for an answer (edits, redactions, `!cancel`),
//! or starts first contact (invites). Registered paused; live after catch-up.

use crate::bot::runtime::stopwatch;
use crate::bot::runtime::{unreadable_file, Incoming};
use crate::bot::Bot;
use lambda_matrix_core::RoomKind;
use matrix_sdk::ruma::events::reaction::OriginalSyncReactionEvent;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::encrypted::Relation as EncryptedRelation;
use matrix_sdk::ruma::events::room::member::{
    MembershipState, OriginalSyncRoomMemberEvent, StrippedRoomMemberEvent,
};
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::events::room::name::OriginalSyncRoomNameEvent;
use matrix_sdk::ruma::events::room::redaction::OriginalSyncRoomRedactionEvent;
use matrix_sdk::ruma::events::room_key::ToDeviceRoomKeyEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use matrix_sdk::{Room, RoomState};
use tracing::Instrument;

impl Bot {
    /// Registers the event handlers, paused: call before the first sync. Events are handled
    /// once [`Bot::go_live`] ran; what the first response carried is left to catch-up.
    pub fn register(&self) {
        self.pause();
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: StrippedRoomMemberEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.runtime().is_live() {
                        bot.on_invite(event, room)
                    }
                }
            });
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.runtime().is_live() && queued(&event.sender, bot.bot_id()) {
                        tracing::debug!(
                            age_ms =
                                u64::from(matrix_sdk::ruma::MilliSecondsSinceUnixEpoch::now().0)
                                    .saturating_sub(u64::from(event.origin_server_ts.0)),
                            "message received"
                        );
                        bot.enqueue(room, Incoming::Message(Box::new(event))).await
                    }
                }
            });
        let bot = self.clone();
        self.client().add_event_handler(
            move |raw: Raw<OriginalSyncRoomMessageEvent>, room: Room| {
                let bot = bot.clone();
                async move {
                    // The typed handler above takes every message the SDK can read.
                    if bot.runtime().is_live() && raw.deserialize().is_err() {
                        if let Some((event_id, sender)) = unreadable_file(&raw) {
                            let incoming = Incoming::UnreadableFile { event_id, sender };
                            bot.enqueue(room, incoming).await
                        }
                    }
                }
            },
        );
        let bot = self.clone();
        self.client().add_event_handler(
            move |event: OriginalSyncRoomEncryptedEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    // A reaction the bot cannot read is not a message to ask again for.
                    let reaction = matches!(
                        event.content.relates_to,
                        Some(EncryptedRelation::Annotation(_))
                    );
                    if bot.runtime().is_live() && !reaction {
                        let (event_id, sender) = (event.event_id, event.sender);
                        bot.enqueue(room, Incoming::Undecryptable { event_id, sender })
                            .await
                    }
                }
            },
        );
        let bot = self.clone();
        // Live or not: a new room key is right whenever a person shares one (room_keys.rs).
        self.client()
            .add_event_handler(move |event: ToDeviceRoomKeyEvent| {
                let bot = bot.clone();
                async move { bot.on_room_key(event).await }
            });
        self.register_steering();
        self.register_room_changes();
    }

    /// The handlers for what steers a waiting answer besides messages: redactions, reactions.
    fn register_steering(&self) {
        let bot = self.clone();
        self.client().add_event_handler(
            move |event: OriginalSyncRoomRedactionEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.runtime().is_live() {
                        bot.on_redaction(event, room)
                    }
                }
            },
        );
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncReactionEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.runtime().is_live() {
                        bot.on_reaction(event, room).await
                    }
                }
            });
    }

    /// The handlers for changes to a room itself: its members and its name.
    fn register_room_changes(&self) {
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomMemberEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.runtime().is_live() {
                        bot.on_member(event, room).await
                    }
                }
            });
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomNameEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.runtime().is_live() {
                        bot.on_room_name(event, room)
                    }
                }
            });
    }

    /// Handles the invites that arrived while the bot was not live.
    pub(crate) async fn handle_pending_invites(&self) {
        for room in self.client().invited_rooms() {
            match room.invite_details().await {
                Ok(invite) => self.handle_invite(invite.inviter_id.to_string(), room),
                Err(error) => {
                    tracing::warn!(room_id = %room.room_id(), %error, "cannot read a pending invite")
                }
            }
        }
    }

    fn on_invite(&self, event: StrippedRoomMemberEvent, room: Room) {
        if event.state_key.as_str() != self.bot_id()
            || event.content.membership != MembershipState::Invite
            || room.state() != RoomState::Invited
        {
            return;
        }
        self.handle_invite(event.sender.to_string(), room);
    }

    /// Queues an event from the live sync in its room's order, or holds it while its room's
    /// gap is read back (see [`crate::bot::runtime::Gaps`]). The room counts as in flight until
    /// its queue drains, which is saved before this returns (see [`inflight`]).
    pub(crate) async fn enqueue(&self, room: Room, incoming: Incoming) {
        self.note_gaps().await;
        let room_id = room.room_id().to_owned();
        if let Some((room, incoming)) = self.runtime().gaps().hold(&room_id, (room, incoming)) {
            self.enqueue_all(room, vec![incoming]).await
        }
    }

    /// After a live sync response, before its position may be saved: its gaps are noted,
    /// idle rooms leave the stored rooms-in-flight now and then. Whether events were queued
    /// since the last response (then its position is saved at once).
    pub(crate) async fn after_response(&self) -> bool {
        self.note_gaps().await;
        self.runtime().in_flight().tidy(self.client()).await;
        self.runtime().in_flight().take_entered()
    }

    /// Notes the live gaps of the responses processed so far (before their positions are
    /// saved): their rooms are held, and in flight until read back.
    pub(crate) async fn note_gaps(&self) {
        if self.runtime().note_gaps() {
            self.runtime().in_flight().save(self.client()).await;
        }
    }

    /// Queues `events` of one room in order, having first noted what each of them changes
    /// for the others: an edit read back together with its message is known before the
    /// message's answer can start (catch-up queues both at once).
    pub(crate) async fn enqueue_all(&self, room: Room, events: Vec<Incoming>) {
        self.enqueue_stopping(room, events, &[]).await
    }

    /// [`Bot::enqueue_all`], with the messages among `events` that a 🛑 reaction read back
    /// with them stopped before any of their answers can start.
    pub(crate) async fn enqueue_stopping(
        &self,
        room: Room,
        mut events: Vec<Incoming>,
        stopped: &[OwnedEventId],
    ) {
        let room_id = room.room_id().to_owned();
        for incoming in &mut events {
            match incoming {
                Incoming::Message(event) => {
                    super::fallback::strip(event);
                    self.note_pending(&room_id, event);
                }
                // Waits like a message: removing the reaction before its turn cancels it.
                Incoming::Again { reaction, .. } => {
                    self.runtime().pending().wait(&room_id, reaction)
                }
                Incoming::Undecryptable { .. } | Incoming::UnreadableFile { .. } => {}
            }
        }
        for message in stopped {
            if self.runtime().pending().stop(&room_id, message) {
                tracing::info!(%room_id, %message, "stopped by a 🛑 reaction read back");
            }
        }
        for incoming in events {
            self.push_job(room.clone(), incoming).await;
        }
    }

    /// Puts one noted event on its room's queue.
    async fn push_job(&self, room: Room, incoming: Incoming) {
        let room_id = room.room_id().to_owned();
        // Counted now, written below: the job may start meanwhile, the position waits.
        let entered = self.runtime().in_flight().enter(&room_id);
        let bot = self.clone();
        // The time travels with the job: a room's worker keeps the first job's closure.
        let sent_ms = match &incoming {
            Incoming::Message(event) => Some(u64::from(event.origin_server_ts.0)),
            _ => None,
        };
        let job = (room, incoming, stopwatch::Arrival::now(sent_ms));
        self.runtime()
            .push(job, move |(room, incoming, arrival), first_time| {
                let bot = bot.clone();
                let room_id = room.room_id().to_owned();
                let event_id = incoming.event_id().to_owned();
                let span = tracing::info_span!("job", %room_id, %event_id, person = %incoming.sender());
                let job = async move {
                    let started = std::time::Instant::now();
                    // A flag left by work outside a job (provisioning) is not this job's.
                    bot.outbox().take_undelivered(&room_id);
                    if first_time {
                        bot.handle_guarded(room, incoming).await;
                    }
                    bot.runtime().pending().done(&room_id, &event_id);
                    let finished = !bot.outbox().take_undelivered(&room_id);
                    if finished {
                        bot.runtime().in_flight().end(&room_id);
                    } else {
                        tracing::warn!("something could not be sent; the room stays in flight and is read back once the homeserver takes events again");
                        bot.runtime().strand(room_id);
                    }
                    bot.runtime().job_done();
                    tracing::debug!(took_us = started.elapsed().as_micros() as u64, "job done");
                    finished
                };
                stopwatch::timed(arrival, job).instrument(span)
            });
        if entered {
            self.runtime().in_flight().save(self.client()).await;
        }
    }

    /// What a queued message changes before answers are sent (see [`pending`]): a conversation
    /// message waits for its answer, an edit or `!cancel` acts on the waiting ones.
    fn note_pending(&self, room_id: &OwnedRoomId, event: &OriginalSyncRoomMessageEvent) {
        let record = match self.room_record(room_id.as_str()) {
            Ok(Some(record)) => record,
            Ok(None) => return, // a room met for the first time: repaired when its job runs
            Err(error) => {
                // Its job reads the room's records instead; only an edit or `!cancel` of a
                // waiting answer goes unnoticed while the cache cannot be read.
                tracing::error!(%room_id, %error, "cannot read the cache; edits and !cancel are not tracked for this message");
                return;
            }
        };
        if record.owner != event.sender.as_str() || record.kind != RoomKind::Chat {
            return;
        }
        let pending = self.runtime().pending();
        if let Some(Relation::Replacement(edit)) = &event.content.relates_to {
            if let Some(text) = super::attachments::conversation_text(&edit.new_content.msgtype) {
                if crate::command::parse(&text).is_none() {
                    pending.edit(room_id, &edit.event_id, &event.event_id, &text);
                }
            }
            return;
        }
        let Some(body) = super::messages::readable_body(&event.content.msgtype) else {
            if let Ok(super::attachments::Said::Media(_)) =
                super::attachments::said_in(&event.content.msgtype)
            {
                pending.wait(room_id, &event.event_id); // a file: its caption can be edited
            }
            return;
        };
        match crate::command::parse(&body) {
            Some(Ok(crate::command::Command::Cancel)) => pending.cancel(room_id, &event.event_id),
            Some(_) => {}
            None => pending.wait(room_id, &event.event_id),
        }
    }

    /// A redaction: a message still waiting for its answer is not answered.
    fn on_redaction(&self, event: OriginalSyncRoomRedactionEvent, room: Room) {
        if let Some(target) = event.redacts.or(event.content.redacts) {
            self.runtime()
                .pending()
                .redact(&room.room_id().to_owned(), &target);
        }
    }
}

/// Whether a synced message goes on its room's queue: never the bot's own. Handling drops
/// them, and queued they kept a worker alive for `MATRIX_ROOM_WORKER_IDLE` in every room the
/// bot only spoke in (a direct chat it greeted and left, a group room it was told about).
fn queued(sender: &matrix_sdk::ruma::UserId, bot: &str) -> bool {
    sender.as_str() != bot
}

#[cfg(test)]
mod tests {
    use matrix_sdk::ruma::user_id;

    #[test]
    fn the_bots_own_messages_are_not_queued() {
        assert!(!super::queued(user_id!("@lambda:hs"), "@lambda:hs"));
        assert!(super::queued(user_id!("@anna:hs"), "@lambda:hs"));
    }
}
