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

mod catchup;
mod commands;
mod messages;
mod provision;
mod queue;
mod reply;
mod resume;

pub use catchup::CatchupReport;
pub use resume::ResumeReport;

use crate::config::Settings;
use crate::markers::{self, SpaceMarker, SPACE_MARKER};
use crate::strings::Texts;
use lambda_matrix_core::{ChatManager, RoomRecord, Store};
use lambda_matrix_platform::Platform;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::events::room::name::OriginalSyncRoomNameEvent;
use matrix_sdk::{Client, Room, RoomState};
use queue::{Incoming, KeyedLocks, RoomQueues};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    people: KeyedLocks,
    queues: RoomQueues,
    new_chat_times: Mutex<HashMap<String, VecDeque<Instant>>>,
    repairing: tokio::sync::Mutex<()>,
    metrics: Arc<crate::metrics::Metrics>,
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
        Bot {
            inner: Arc::new(Inner {
                client,
                settings,
                chats: ChatManager::new(store),
                platform,
                texts,
                people: KeyedLocks::default(),
                queues: RoomQueues::default(),
                new_chat_times: Mutex::new(HashMap::new()),
                repairing: tokio::sync::Mutex::new(()),
                metrics,
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

    /// Registers the event handlers. Call after the initial sync (and reconcile), so nothing is
    /// handled against half-built state; then handle invites that arrived while the bot was down.
    pub async fn start(&self) {
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: StrippedRoomMemberEvent, room: Room| {
                let bot = bot.clone();
                async move { bot.on_invite(event, room) }
            });
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
                let bot = bot.clone();
                async move { bot.enqueue(room, Incoming::Message(Box::new(event))) }
            });
        let bot = self.clone();
        self.client().add_event_handler(
            move |event: OriginalSyncRoomEncryptedEvent, room: Room| {
                let bot = bot.clone();
                async move {
                    let (event_id, sender) = (event.event_id, event.sender);
                    bot.enqueue(room, Incoming::Undecryptable { event_id, sender })
                }
            },
        );
        let bot = self.clone();
        self.client()
            .add_event_handler(move |event: OriginalSyncRoomNameEvent, room: Room| {
                let bot = bot.clone();
                async move { bot.on_room_name(event, room) }
            });
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

    fn enqueue(&self, room: Room, incoming: Incoming) {
        let bot = self.clone();
        self.inner
            .queues
            .push((room, incoming), move |(room, incoming)| {
                let bot = bot.clone();
                async move {
                    match incoming {
                        Incoming::Message(event) => bot.handle_message(room, *event).await,
                        Incoming::Undecryptable { event_id, sender } => {
                            bot.handle_undecryptable(room, event_id, sender).await
                        }
                    }
                }
            });
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

    /// Repairs the cache from the server when a room met at runtime is unknown or its rows are
    /// missing (reconcile again, reads only, one at a time); returns the room's row after.
    async fn repair(&self, room_id: &str) -> Option<RoomRecord> {
        let _one_at_a_time = self.inner.repairing.lock().await;
        let current = match self.store().dump() {
            Ok(current) => current,
            Err(error) => {
                tracing::error!(room_id, %error, "cannot read the cache for a repair");
                return None;
            }
        };
        let texts = *self.texts();
        let names = move |id| texts.chat_name(id);
        match crate::reconcile::reconcile(
            self.client(),
            self.bot_id(),
            Some(self.store().as_ref()),
            current,
            &names,
        )
        .await
        {
            Ok(plan) => tracing::info!(
                room_id,
                repaired = !plan.report.is_clean(),
                "repair on first access"
            ),
            Err(error) => tracing::error!(room_id, %error, "repair failed"),
        }
        self.room_record(room_id)
    }

    /// The trusted Space marker of a room, read from the local SDK store (no request).
    async fn space_marker(&self, room: &Room) -> Option<SpaceMarker> {
        let json = crate::reconcile::state_json(room, SPACE_MARKER, "").await?;
        markers::read_state(&json, self.bot_id()).ok()
    }

    /// The person's Space on the server, found by its marker among joined rooms.
    async fn find_space_of(&self, person: &str) -> Option<Room> {
        for room in self.client().joined_rooms() {
            if let Some(marker) = self.space_marker(&room).await {
                if marker.owner == person {
                    return Some(room);
                }
            }
        }
        None
    }
}
