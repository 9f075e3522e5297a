//! The running bot: a cheap-to-clone handle over the client, settings, cache and platform,
//! and the event handlers that feed it.
//!
//! - [`provision`]: first contact (Space + C1 + DM record + welcome), serialised per person.
//! - [`commands`]: what each command does, server first, then the cache.
//! - [`messages`]: routing of incoming messages, answers from the platform.
//! - [`reply`]: sending replies.
//! - [`queue`]: one ordered queue per room, one lock per person.
//! - [`resume`]: finishing crash leftovers planned by reconcile.
//! - [`catchup`]: answering what was sent while the bot was away.

mod answer;
mod answered;
mod attachments;
mod catchup;
mod commands;
mod context;
mod create;
mod deliver;
mod events;
mod history;
mod inflight;
mod leaving;
mod limits;
mod media;
mod messages;
mod pending;
mod provision;
mod queue;
mod reply;
mod resume;
mod send;
mod state;
mod stream;
mod typing;

pub use catchup::CatchupReport;
pub use resume::ResumeReport;

use crate::config::Settings;
use crate::markers::SpaceMarker;
use crate::strings::Texts;
use lambda_matrix_core::RoomKind;
use lambda_matrix_core::{CacheDump, Chat, ChatId, ChatManager, RoomRecord, Store};
use lambda_matrix_platform::Platform;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::events::room::name::OriginalSyncRoomNameEvent;
use matrix_sdk::ruma::events::room::redaction::OriginalSyncRoomRedactionEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::{Client, Room, RoomState};
use queue::Incoming;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// The bot: clone freely, all clones share one state.
#[derive(Clone, Debug)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: Settings,
    chats: ChatManager,
    platform: Arc<dyn Platform>,
    texts: Texts,
    metrics: Arc<crate::metrics::Metrics>,
    limits: limits::Limits,
    order: state::Order,
    lifecycle: state::Lifecycle,
    conversation: state::Conversation,
    leaving: state::Leaving,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("user_id", &self.settings.user_id)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// A bot over a logged-in, synced client.
    pub fn new(
        client: Client,
        settings: Settings,
        store: Arc<dyn Store>,
        platform: Arc<dyn Platform>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let texts = Texts::new(settings.lang);
        let limits = limits::Limits::new(settings.max_concurrent_provisioning);
        let order = state::Order::new(settings.room_worker_idle);
        Bot {
            inner: Arc::new(Inner {
                client,
                settings,
                chats: ChatManager::new(store),
                platform,
                texts,
                metrics,
                limits,
                order,
                lifecycle: state::Lifecycle::default(),
                conversation: state::Conversation::default(),
                leaving: state::Leaving::default(),
            }),
        }
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn texts(&self) -> &Texts {
        &self.inner.texts
    }

    fn chats(&self) -> &ChatManager {
        &self.inner.chats
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.inner.chats.store()
    }

    fn bot_id(&self) -> &str {
        self.inner.settings.user_id.as_str()
    }

    /// The server name used as `via` in Space links.
    fn via(&self) -> String {
        self.inner.settings.user_id.server_name().to_string()
    }

    /// Registers the event handlers, paused: call before the first sync. Events are handled
    /// once [`Bot::go_live`] ran; what the first response carried is left to catch-up.
    pub fn register(&self) {
        self.pause();
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: StrippedRoomMemberEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.is_live() {
                        bot.on_invite(event, room)
                    }
                }
            });
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.is_live() {
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
                    if bot.is_live() && raw.deserialize().is_err() {
                        if let Some((event_id, sender)) = attachments::unreadable_file(&raw) {
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
                    if bot.is_live() {
                        let (event_id, sender) = (event.event_id, event.sender);
                        bot.enqueue(room, Incoming::Undecryptable { event_id, sender })
                            .await
                    }
                }
            },
        );
        let bot = self.clone();
        self.client().add_event_handler(
            move |event: OriginalSyncRoomRedactionEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.is_live() {
                        bot.on_redaction(event, room)
                    }
                }
            },
        );
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomNameEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    if bot.is_live() {
                        bot.on_room_name(event, room)
                    }
                }
            });
    }

    /// On a stop: waits up to `grace` for the queued and running jobs to finish (the sync has
    /// stopped, so no new ones come). What is left is finished at the next start (catch-up
    /// reads back the rooms still in flight), so a short grace loses nothing; it only spares
    /// the person the wait for that start.
    pub async fn drain(&self, grace: Duration) {
        let mut jobs = self.inner.conversation.jobs.subscribe();
        let waiting = *jobs.borrow();
        if waiting == 0 {
            return;
        }
        tracing::info!(
            jobs = waiting,
            ?grace,
            "stopping: letting the answers in progress finish"
        );
        let finished = tokio::time::timeout(grace, jobs.wait_for(|jobs| *jobs == 0))
            .await
            .is_ok();
        if finished {
            tracing::info!("every answer in progress finished");
        } else {
            let left = *self.inner.conversation.jobs.borrow();
            tracing::warn!(
                jobs = left,
                "stopping with answers in progress; they are finished at the next start"
            );
        }
    }

    fn is_live(&self) -> bool {
        self.inner.lifecycle.live.load(Ordering::SeqCst)
    }

    /// Stops handling synced events as they come (before the start's first response) and
    /// starts collecting room updates for catch-up.
    pub fn pause(&self) {
        self.inner.lifecycle.live.store(false, Ordering::SeqCst);
        if let Some(watch) = lock(&self.inner.lifecycle.gap_watch).take() {
            watch.abort();
        }
        *lock(&self.inner.lifecycle.first_updates) =
            Some(self.client().subscribe_to_all_room_updates());
    }

    /// Handles synced events from now on: watches live timelines for gaps, then handles the
    /// invites that arrived while the bot was not live. Call after catch-up.
    pub async fn go_live(&self) {
        let updates = self.client().subscribe_to_all_room_updates();
        *lock(&self.inner.lifecycle.gap_watch) =
            Some(tokio::spawn(self.clone().watch_gaps(updates)));
        self.inner.lifecycle.live.store(true, Ordering::SeqCst);
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

    /// Queues an event in its room's order. The room counts as in flight until its queue drains,
    /// which is saved before this returns (see [`inflight`]).
    async fn enqueue(&self, room: Room, incoming: Incoming) {
        let room_id = room.room_id().to_owned();
        if let Incoming::Message(event) = &incoming {
            self.note_pending(&room_id, event);
        }
        // Counted now, written below: the job may start meanwhile, the position waits.
        let entered = self.inner.conversation.in_flight.enter(&room_id);
        self.inner.conversation.jobs.send_modify(|jobs| *jobs += 1);
        let bot = self.clone();
        self.inner
            .order
            .queues
            .push((room, incoming), move |(room, incoming), first_time| {
                let bot = bot.clone();
                let room_id = room.room_id().to_owned();
                let event_id = incoming.event_id().to_owned();
                let span = tracing::info_span!("job", %room_id, %event_id, person = %incoming.sender());
                async move {
                    let started = std::time::Instant::now();
                    // A flag left by work outside a job (provisioning) is not this job's.
                    bot.take_undelivered(&room_id);
                    if first_time {
                        bot.handle_guarded(room, incoming).await;
                    }
                    bot.inner.conversation.pending.done(&room_id, &event_id);
                    if bot.take_undelivered(&room_id) {
                        tracing::warn!("something could not be sent; the room stays in flight until the next start");
                    } else {
                        bot.inner.conversation.in_flight.end(bot.client(), &room_id).await;
                    }
                    bot.inner.conversation.jobs.send_modify(|jobs| *jobs = jobs.saturating_sub(1));
                    tracing::debug!(took_us = started.elapsed().as_micros() as u64, "job done");
                }
                .instrument(span)
            });
        if entered {
            self.inner.conversation.in_flight.save(self.client()).await;
        }
    }

    /// What a queued message changes before answers are sent (see [`pending`]): a conversation
    /// message waits for its answer, an edit or `!cancel` acts on the waiting ones.
    fn note_pending(&self, room_id: &OwnedRoomId, event: &OriginalSyncRoomMessageEvent) {
        let Some(record) = self.room_record(room_id.as_str()) else {
            return;
        };
        if record.owner != event.sender.as_str() || record.kind != RoomKind::Chat {
            return;
        }
        let pending = &self.inner.conversation.pending;
        if let Some(Relation::Replacement(edit)) = &event.content.relates_to {
            if let Some(text) = attachments::conversation_text(&edit.new_content.msgtype) {
                if crate::command::parse(&text).is_none() {
                    pending.edit(room_id, &edit.event_id, &event.event_id, &text);
                }
            }
            return;
        }
        let Some(body) = messages::readable_body(&event.content.msgtype) else {
            if let Ok(attachments::Said::Media(_)) = attachments::said_in(&event.content.msgtype) {
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
            self.inner
                .conversation
                .pending
                .redact(&room.room_id().to_owned(), &target);
        }
    }

    /// The cache row of a room.
    fn room_record(&self, room_id: &str) -> Option<RoomRecord> {
        match self.store().room(room_id) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(room_id, %error, "cannot read the cache");
                None
            }
        }
    }

    /// Repairs the cache for one room met at runtime whose rows are missing: reads that room's
    /// records (no request), classifies it with the planner's rules, and inserts the rows it
    /// implies that are missing — never deleting or overwriting anything (a `!new` may have
    /// just written rows the store does not show yet). Only a room of `sender` is repaired.
    /// Returns the room's row after. If the cache cannot be read, the row the records imply
    /// (nothing written: the next start moves a damaged cache aside and rebuilds it).
    async fn repair(&self, room_id: &str, sender: &str) -> Option<RoomRecord> {
        let _one_at_a_time = self.inner.order.repairing.lock().await;
        let server = self.records_of(room_id, sender).await?;
        let current = match self.store().dump() {
            Ok(current) => current,
            Err(error) => {
                tracing::error!(room_id, %error, "cannot read the cache; the room's records on the homeserver decide");
                return self.row_from_records(&server);
            }
        };
        let planned = self.plan_alone(&server, &current);
        let inserts = crate::reconcile::plan::inserts_only(&planned.changes, &current);
        match self.store().apply(&inserts) {
            Ok(()) => tracing::info!(room_id, rows = inserts.len(), "repair on first access"),
            Err(error) => tracing::error!(room_id, %error, "repair failed"),
        }
        self.room_record(room_id)
    }

    /// A chat as the room's records on the homeserver imply it, for when the cache cannot be
    /// read; `None` if they do not name `owner` or hold another chat.
    async fn chat_from_records(&self, room_id: &str, owner: &str, id: ChatId) -> Option<Chat> {
        let server = self.records_of(room_id, owner).await?;
        let planned = self.plan_alone(&server, &CacheDump::default());
        planned
            .desired
            .chats
            .into_iter()
            .find(|chat| chat.owner == owner && chat.id == id && chat.room_id == room_id)
    }

    /// The rows the records of the rooms in `only` (every joined room if `None`) imply, for
    /// when the cache cannot be read (nothing written).
    async fn rows_from_records(
        &self,
        only: Option<&std::collections::BTreeSet<OwnedRoomId>>,
    ) -> Vec<RoomRecord> {
        let mut rows = Vec::new();
        for room in self.client().joined_rooms() {
            if only.is_some_and(|only| !only.contains(room.room_id())) {
                continue;
            }
            if let Some(server) = self.readable_records(&room).await {
                rows.extend(self.row_from_records(&server));
            }
        }
        rows
    }

    /// The row one room's records imply on their own (an empty cache beside them).
    fn row_from_records(
        &self,
        server: &crate::reconcile::snapshot::ServerRoom,
    ) -> Option<RoomRecord> {
        let planned = self.plan_alone(server, &CacheDump::default());
        planned
            .desired
            .rooms
            .into_iter()
            .find(|row| row.room_id == server.room_id)
    }

    /// One room's records as reconcile reads them (the SDK store; `/members` only for a room no
    /// record claims), if they can be read and name `sender` as the owner.
    async fn records_of(
        &self,
        room_id: &str,
        sender: &str,
    ) -> Option<crate::reconcile::snapshot::ServerRoom> {
        let room = <&matrix_sdk::ruma::RoomId>::try_from(room_id)
            .ok()
            .and_then(|id| self.client().get_room(id))?;
        let server = self.readable_records(&room).await?;
        if !owned_by(&server, sender) {
            tracing::info!(
                room_id,
                sender,
                "not repaired: the room's records do not name the sender"
            );
            return None;
        }
        Some(server)
    }

    /// One room's records as reconcile reads them, with the leaving record, if they can be
    /// read (else logged).
    async fn readable_records(
        &self,
        room: &Room,
    ) -> Option<crate::reconcile::snapshot::ServerRoom> {
        let mut server = crate::reconcile::server_room(room, self.bot_id()).await;
        match crate::records::leaving(self.client()).await {
            Ok(leaving) => server.leaving = leaving.contains(room.room_id().as_str()),
            Err(error) => server.unreadable = Some(error),
        }
        if let Some(error) = &server.unreadable {
            tracing::warn!(room_id = %room.room_id(), %error, "the room's records cannot be read");
            return None;
        }
        Some(server)
    }

    /// The planner's view of one room against `current`.
    fn plan_alone(
        &self,
        server: &crate::reconcile::snapshot::ServerRoom,
        current: &CacheDump,
    ) -> crate::reconcile::plan::Plan {
        let texts = *self.texts();
        let names = move |id| texts.chat_name(id);
        crate::reconcile::plan::plan(std::slice::from_ref(server), current, &names)
    }

    /// The trusted Space marker of a room, read from the local SDK store (no request).
    async fn space_marker(&self, room: &Room) -> Option<SpaceMarker> {
        match crate::records::space_marker(room, self.bot_id()).await {
            Ok(marker) => marker?.trusted(),
            Err(error) => {
                tracing::warn!(room_id = %room.room_id(), %error, "cannot read a Space marker");
                None
            }
        }
    }

    /// The person's Space on the server, found by its marker among the joined Spaces (a Space
    /// marker counts only in a Space, as in reconcile).
    async fn find_space_of(&self, person: &str) -> Option<Room> {
        for room in self
            .client()
            .joined_rooms()
            .into_iter()
            .filter(|room| room.is_space())
        {
            if let Some(marker) = self.space_marker(&room).await {
                if marker.owner == person {
                    return Some(room);
                }
            }
        }
        None
    }
}

/// Whether the room's trusted records (Space marker, chat marker or direct-chat record) name
/// `person` as its owner.
fn owned_by(room: &crate::reconcile::snapshot::ServerRoom, person: &str) -> bool {
    use crate::records::Read::Trusted;
    matches!(&room.space_marker, Some(Trusted(m)) if m.owner == person)
        || matches!(&room.chat_marker, Some(Trusted(m)) if m.owner == person)
        || matches!(&room.dm_record, Some(Trusted(r)) if r.owner == person)
}

/// Locks a std mutex, ignoring poisoning (the data stays usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
