//! The running bot: a cheap-to-clone handle that wires its parts. Each part owns its state and
//! shows a narrow face; no part reaches into another's state.
//!
//! - [`inbound`]: a person's events, from the sync to what they ask for: routing messages,
//!   commands, attachments and their fetch, one answer from the platform, first contact.
//! - [`outbox`]: everything that puts an event on the server: events that fit, parts, replies,
//!   sends retried under one transaction id, streaming edits, typing; the undelivered rooms.
//! - [`catchup`]: what is answered (read from history, pure), reading history, and reading
//!   back the rooms with news at start or with a gap while live.
//! - [`lifecycle`]: rooms made, left and forgotten, and finishing what a crash left half-done.
//! - [`runtime`]: per-room queues, per-person locks, waiting answers, rooms in flight,
//!   per-person bounds, the jobs a stop waits for.
//! - [`usage`]: what answers cost per person, kept on the server, and their budgets.
//!
//! The runtime repair of the cache is reconcile's ([`crate::reconcile::repair`]); the bot only
//! runs it one room at a time.

mod catchup;
mod inbound;
mod lifecycle;
mod outbox;
mod runtime;
mod usage;

pub use usage::UnwrittenUsage;

pub(crate) use runtime::waits::layer as homeserver_waits;
pub(crate) use usage::{Tokens, Totals};

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::reconcile::repair::Repair;
use crate::strings::Texts;
use lambda_matrix_core::{Chat, ChatId, ChatManager, RoomRecord, Store};
use lambda_matrix_platform::Platform;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Client;
use outbox::Outbox;
use runtime::Runtime;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

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
    metrics: Arc<Metrics>,
    outbox: Outbox,
    runtime: Runtime,
    leaving: crate::records::LeavingWriter,
    chat_settings: crate::records::SettingsWriter,
    ledger: usage::Ledger,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("user_id", &self.settings.identity.user_id)
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
        metrics: Arc<Metrics>,
    ) -> Self {
        let texts = Texts::new(settings.output.lang);
        let outbox = Outbox::new(metrics.clone(), settings.limits.send_retry_for, texts);
        let runtime = Runtime::new(&settings.limits);
        Bot {
            inner: Arc::new(Inner {
                client,
                settings,
                chats: ChatManager::new(store),
                platform,
                texts,
                metrics,
                outbox,
                runtime,
                leaving: crate::records::LeavingWriter::default(),
                chat_settings: crate::records::SettingsWriter::default(),
                ledger: usage::Ledger::default(),
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

    fn platform(&self) -> &Arc<dyn Platform> {
        &self.inner.platform
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    fn chat_settings(&self) -> &crate::records::SettingsWriter {
        &self.inner.chat_settings
    }

    fn ledger(&self) -> &usage::Ledger {
        &self.inner.ledger
    }

    fn bot_id(&self) -> &str {
        self.inner.settings.identity.user_id.as_str()
    }

    /// The server name used as `via` in Space links.
    fn via(&self) -> String {
        self.inner
            .settings
            .identity
            .user_id
            .server_name()
            .to_string()
    }

    /// On a stop: waits up to `grace` for the answers in progress ([`Runtime::drain`]), then
    /// writes what is left (rooms in flight, usage).
    pub async fn drain(&self, grace: Duration) {
        self.runtime().drain(grace).await;
        // Rooms gone idle leave the stored set: the next start reads back none of them.
        self.runtime().in_flight().flush(self.client()).await;
        self.stop_writing_usage();
        self.write_usage().await;
    }

    /// When the session was lost and the next one is a new client (a new device): nothing can
    /// be sent any more, so the answers in progress are not waited for (the next session's
    /// catch-up finishes them: their rooms stay in the stored in-flight set); returns the usage
    /// not written yet, for the next session's bot ([`Bot::take_over_usage`]). (After a soft
    /// logout the same client goes on with a new token, so [`Bot::drain`] waits as for a stop:
    /// its jobs would send again.)
    pub async fn abandon(&self) -> UnwrittenUsage {
        tracing::info!(
            "the session is gone: not waiting for the answers in progress; the next session finishes them"
        );
        self.runtime().in_flight().flush(self.client()).await;
        self.take_unwritten_usage()
    }

    /// Stops handling synced events as they come (before the start's first response) and
    /// starts collecting room updates for catch-up.
    pub fn pause(&self) {
        self.runtime()
            .pause(self.client().subscribe_to_all_room_updates());
    }

    /// Stops for good: synced events are no longer handled and the gap watch ends (the bot's
    /// session was lost, or the process stops). Jobs already queued run out.
    pub fn stop(&self) {
        self.runtime().stop();
    }

    /// Handles synced events from now on: watches live timelines for gaps, then handles the
    /// invites that arrived while the bot was not live. Call after catch-up.
    pub async fn go_live(&self) {
        let updates = self.client().subscribe_to_all_room_updates();
        let gaps = self.client().subscribe_to_all_room_updates();
        self.runtime()
            .go_live(tokio::spawn(self.clone().watch_gaps(updates)), gaps);
        self.keep_writing_usage();
        self.handle_pending_invites().await;
    }

    /// The cache row of a room (`Ok(None)`: the cache has none).
    fn room_record(&self, room_id: &str) -> anyhow::Result<Option<RoomRecord>> {
        Ok(self.store().room(room_id)?)
    }

    /// Reconcile's repair, over this bot's client and cache.
    fn repairer(&self) -> Repair<'_> {
        Repair {
            client: self.client(),
            bot: self.bot_id(),
            store: self.store().as_ref(),
            texts: *self.texts(),
        }
    }

    /// Repairs the cache for one room met at runtime whose rows are missing, one repair at a
    /// time ([`Repair::room`]); the room's row after.
    async fn repair(&self, room_id: &str, sender: &str) -> anyhow::Result<Option<RoomRecord>> {
        let _one_at_a_time = self.runtime().one_repair_at_a_time().await;
        self.repairer().room(room_id, sender).await
    }

    /// A chat as the room's records imply it, for when the cache cannot be read.
    async fn chat_from_records(
        &self,
        room_id: &str,
        owner: &str,
        id: ChatId,
    ) -> anyhow::Result<Option<Chat>> {
        self.repairer().chat_from_records(room_id, owner, id).await
    }

    /// The rows the records of the rooms in `only` imply, for when the cache cannot be read.
    async fn rows_from_records(&self, only: Option<&BTreeSet<OwnedRoomId>>) -> Vec<RoomRecord> {
        self.repairer().rows_from_records(only).await
    }
}

/// Counts an errand ([`Bot::spawn_errand`]) as a job until dropped (also when its task panics
/// or is aborted).
struct Errand(Bot);

impl Bot {
    /// Spawns work off the room queues that makes requests (a first contact, a leave): a stop
    /// waits for it like for a job, up to its grace ([`Bot::drain`]), so it is not cut off
    /// halfway (and, in a process that goes on, does not outlive the bot). Counted from now,
    /// before the task starts, so a stop cannot miss it.
    pub(crate) fn spawn_errand<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime().job_started();
        let errand = Errand(self.clone());
        tokio::spawn(async move {
            let _errand = errand;
            work.await;
        });
    }
}

impl Drop for Errand {
    fn drop(&mut self) {
        self.0.runtime().job_done();
    }
}
