//! Catch-up: messages people sent while the bot was away are answered once, oldest first.
//!
//! The record of "handled" is on the server: the bot's complete answer (`m.in_reply_to`, every
//! part present and final; see [`answered`]) to the event; for an edit, also an answer
//! to its original sent after the edit (it answered the edited text). A begun answer is
//! finished: only its missing parts are sent.
//! Relations stay readable in encrypted rooms without decryption, so this holds after losing the
//! cache and the SDK store. Found events go through the same per-room queue as live traffic.
//!
//! Which rooms are read back: those where the start's responses carry a message from someone
//! else or a gap (a snapshot shows every room, a start from the saved position only rooms that
//! changed), plus the rooms a previous run left in flight ([`crate::bot::runtime::InFlight`]) and the rooms
//! this start adopted (a run before saw their messages without serving them). Rooms where
//! only the bot spoke cost no request. While live, a room
//! whose timeline had a gap (more events than one response carries) is read back the same way,
//! its live events held until then ([`crate::bot::runtime::Gaps`]).

mod answered;
mod history;
mod stops;

pub(crate) use history::{walk_back, Walk};
pub(crate) use stops::{meant, replied_to, AGAIN, STOP};

use crate::bot::runtime::InFlight;
use crate::bot::runtime::Incoming;
use crate::bot::Bot;
use answered::{needs_reading, Answered, State};
use lambda_matrix_core::RoomKind;
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, RoomId};
use matrix_sdk::sync::RoomUpdates;
use matrix_sdk::Room;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use stops::Stops;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// Most pages read per room (a bound for rooms with very long unanswered histories).
const MAX_PAGES: usize = 40;
/// How often rooms with unsent answers are read back while no sync response comes.
const REDELIVER_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What catch-up found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CatchupReport {
    /// Rooms whose recent history was read.
    pub rooms_checked: usize,
    /// Chat rooms and direct chats not read: the bot spoke last there.
    pub rooms_quiet: usize,
    /// Unanswered messages queued.
    pub queued: usize,
    /// Rooms whose history could not be read, with why.
    pub failed: Vec<String>,
    /// Time taken.
    pub duration_ms: u64,
}

/// Rooms whose latest events in `updates` hold a message from someone else without a
/// complete answer, or hide older events behind only the bot's (see
/// [`answered::needs_reading`]). Not only the latest event counts: the bot's reply to an
/// earlier message can land after a newer message that was never handled.
fn rooms_with_news(updates: &RoomUpdates, bot: &str, into: &mut BTreeSet<OwnedRoomId>) {
    for (room_id, update) in &updates.joined {
        let window: Vec<serde_json::Value> = update
            .timeline
            .events
            .iter()
            .filter_map(|event| event.raw().deserialize_as::<serde_json::Value>().ok())
            .collect();
        if needs_reading(&window, update.timeline.limited, bot) {
            into.insert(room_id.clone());
        }
    }
}

impl Bot {
    /// After the start's responses: queues every unanswered message from a room's
    /// owner younger than `MATRIX_CATCHUP_MAX_AGE`, in the chat rooms and direct chats that have
    /// news, were left in flight, or are in `adopted` (rooms no run served before).
    pub(crate) async fn catch_up<'a>(
        &self,
        adopted: impl IntoIterator<Item = &'a str>,
    ) -> CatchupReport {
        let mut rooms = BTreeSet::new();
        // Every room the start's responses touched: a direct chat among them may have lost its
        // owner meanwhile.
        let mut changed = BTreeSet::new();
        let mut everything = false;
        match self.runtime().take_first_updates() {
            Some(mut updates) => loop {
                match updates.try_recv() {
                    Ok(update) => {
                        changed.extend(update.joined.keys().cloned());
                        rooms_with_news(&update, self.bot_id(), &mut rooms)
                    }
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    Err(TryRecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "some room updates were missed; reading every room back"
                        );
                        everything = true;
                    }
                }
            },
            None => everything = true,
        }
        rooms.extend(
            adopted
                .into_iter()
                .filter_map(|id| OwnedRoomId::try_from(id).ok()),
        );
        let saved = match InFlight::saved(self.client()).await {
            Ok(saved) => saved,
            Err(error) => {
                // Which rooms a previous run left in flight is unknown: every room is read.
                tracing::warn!(error = format!("{error:#}"), "reading every room back");
                everything = true;
                BTreeSet::new()
            }
        };
        // Still in flight until checked, whatever is saved meanwhile.
        self.runtime().in_flight().hold(&saved);
        rooms.extend(saved.iter().cloned());
        let report = self
            .catch_up_rooms(if everything { None } else { Some(&rooms) })
            .await;
        for room_id in &saved {
            self.runtime().in_flight().end(room_id);
        }
        // Off the start: leaving takes several requests.
        let bot = self.clone();
        self.spawn_errand(async move {
            bot.leave_dms_their_owners_left((!everything).then_some(changed))
                .await
        });
        report
    }

    /// While live: reads back the rooms whose timeline had a gap (held meanwhile: see
    /// [`crate::bot::runtime::Gaps`]), then queues what came for them during the read-back;
    /// and reads back the rooms whose answers could not be sent ([`Bot::redeliver`]) after
    /// each sync response (the homeserver answers again) and every [`REDELIVER_EVERY`] while
    /// any is waiting.
    pub(crate) async fn watch_gaps(self, mut updates: broadcast::Receiver<RoomUpdates>) {
        let mut timer = tokio::time::interval(REDELIVER_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                (rooms, lagged) = self.runtime().gaps().unread() => {
                    if lagged {
                        tracing::warn!("some room updates were missed; reading every room back");
                        self.catch_up_rooms(None).await;
                        self.release(self.runtime().gaps().held()).await;
                    } else {
                        let rooms = self.whole(rooms).await;
                        if !rooms.is_empty() {
                            self.catch_up_rooms(Some(&rooms)).await;
                            self.release(rooms).await;
                        }
                    }
                }
                update = updates.recv() => match update {
                    Ok(_) => self.redeliver().await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "some room updates were missed; reading every room back");
                        self.catch_up_rooms(None).await;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = timer.tick() => self.redeliver().await,
            }
        }
    }

    /// Those of `rooms` whose state is whole (their power levels are known); the others are
    /// rooms still being made, whose read-back waits for a later response
    /// ([`crate::bot::runtime::Gaps::defer`]).
    async fn whole(&self, rooms: BTreeSet<OwnedRoomId>) -> BTreeSet<OwnedRoomId> {
        let mut whole = BTreeSet::new();
        for room_id in rooms {
            let being_made = match self.client().get_room(&room_id) {
                Some(room) => room.power_levels().await.is_err(),
                None => false,
            };
            if being_made && self.runtime().gaps().defer(&room_id) {
                tracing::debug!(%room_id, "a gap in a room whose state is not whole yet; reading it back after the next response");
            } else {
                whole.insert(room_id);
            }
        }
        whole
    }

    /// `rooms` were read back: the live events held for them meanwhile are queued after what
    /// the read-back found (those it queued already are repeats, handled once).
    async fn release(&self, rooms: impl IntoIterator<Item = OwnedRoomId>) {
        for room_id in rooms {
            let (held, ended) = self.runtime().gaps().release(&room_id);
            if let Some((room, _)) = held.first() {
                let room = room.clone();
                let events = held.into_iter().map(|(_, incoming)| incoming).collect();
                self.enqueue_all(room, events).await;
            }
            if ended {
                self.runtime().in_flight().end(&room_id);
            }
        }
    }

    /// Reads back the rooms whose answers could not be sent (a send given up after
    /// `MATRIX_SEND_RETRY_FOR`): what is still unanswered there is queued again and finished
    /// into the parts already sent, as at a start. A room that cannot be read yet waits for the
    /// next try. The room leaves the rooms in flight only when its new jobs are done.
    pub(crate) async fn redeliver(&self) {
        if !self.runtime().any_stranded() {
            return;
        }
        for room_id in self.runtime().take_stranded() {
            let owner = match self.room_record(room_id.as_str()) {
                Ok(Some(record)) => record.owner,
                Ok(None) => {
                    tracing::warn!(%room_id, "a room with an unsent answer is no longer in the cache; the next start reads it back");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%room_id, error = format!("{error:#}"), "cannot read the cache; trying again later");
                    self.runtime().strand(room_id);
                    continue;
                }
            };
            let Some(room) = self.client().get_room(&room_id) else {
                continue;
            };
            match self.unanswered(&room, &owner).await {
                Ok((events, stopped)) => {
                    tracing::info!(%room_id, queued = events.len(), "the homeserver takes events again; finishing the answers it did not take");
                    self.enqueue_stopping(room.clone(), events, &stopped).await;
                    // The job that gave up kept the room in flight; its new jobs keep it now.
                    self.runtime().in_flight().end(&room_id);
                }
                Err(error) => {
                    tracing::debug!(%room_id, error = format!("{error:#}"), "cannot read back a room with an unsent answer yet");
                    self.runtime().strand(room_id);
                }
            }
        }
    }

    /// Catch-up over the chat rooms and direct chats in `only` (all of them if `None`).
    async fn catch_up_rooms(&self, only: Option<&BTreeSet<OwnedRoomId>>) -> CatchupReport {
        let started = Instant::now();
        let mut report = CatchupReport::default();
        let rooms = match self.store().dump() {
            Ok(dump) => dump.rooms,
            Err(error) => {
                tracing::error!(%error, "cannot read the cache; catch-up places the rooms by their records on the homeserver");
                self.rows_from_records(only).await
            }
        };
        for record in rooms
            .iter()
            .filter(|r| matches!(r.kind, RoomKind::Chat | RoomKind::Dm))
        {
            let Some(room) = <&RoomId>::try_from(record.room_id.as_str())
                .ok()
                .and_then(|id| self.client().get_room(id))
            else {
                continue;
            };
            if only.is_some_and(|only| !only.contains(room.room_id())) {
                report.rooms_quiet += 1;
                continue;
            }
            report.rooms_checked += 1;
            match self.unanswered(&room, &record.owner).await {
                Ok((events, stopped)) => {
                    report.queued += events.len();
                    for event in &events {
                        tracing::info!(room_id = %record.room_id, event_id = %event.event_id(), "catching up");
                    }
                    self.enqueue_stopping(room.clone(), events, &stopped).await;
                }
                Err(error) => report.failed.push(format!("{}: {error:#}", record.room_id)),
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            step = "catch-up",
            rooms_checked = report.rooms_checked,
            rooms_quiet = report.rooms_quiet,
            queued = report.queued,
            failed = %serde_json::to_string(&report.failed).unwrap_or_default(),
            duration_ms = report.duration_ms,
            "catch-up report"
        );
        report
    }

    /// The owner's messages in `room` without a reply from the bot, oldest first, and those of
    /// them the owner stopped with a 🛑 meanwhile.
    async fn unanswered(
        &self,
        room: &Room,
        owner: &str,
    ) -> anyhow::Result<(Vec<Incoming>, Vec<OwnedEventId>)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let cutoff = now
            .saturating_sub(self.settings().limits.catchup_max_age)
            .as_millis() as u64;
        let bot = self.bot_id();
        // Messages refused while their sender was not allowed stay unanswered (they were told).
        let refused = crate::records::refused_until(room)
            .await
            .map_err(anyhow::Error::msg)?
            .unwrap_or(0);
        let mut answered = Answered::new(bot);
        let mut stops = Stops::default();
        let mut candidates: Vec<(u64, Incoming)> = Vec::new();
        // Edits this device cannot decrypt, by their clear relation: the original they edit.
        let mut sealed_edits: HashMap<String, String> = HashMap::new();
        walk_back(room, MAX_PAGES, |json| {
            let ts = json["origin_server_ts"].as_u64().unwrap_or(0);
            if ts < cutoff {
                return Walk::AfterPage;
            }
            stops.note(&json, bot, owner);
            let sender = json["sender"].as_str().unwrap_or_default();
            if sender == bot {
                answered.bot_event(&json);
            } else if sender == owner {
                let event = owners(&json);
                if let (Some(Incoming::Undecryptable { event_id, .. }), Some(original)) =
                    (&event, sealed_edit_of(&json))
                {
                    sealed_edits.insert(event_id.to_string(), original.to_owned());
                }
                candidates.extend(event.map(|event| (ts, event)));
            }
            Walk::On
        })
        .await?;
        // Handled: answered completely; for an edit also when its original was answered after
        // the edit arrived (that answer used the edited text). Begun answers are finished into
        // the parts already there.
        let sent_at: HashMap<String, u64> = candidates
            .iter()
            .map(|(ts, e)| (e.event_id().to_string(), *ts))
            .collect();
        candidates.retain(|(ts, e)| {
            if *ts <= refused {
                return false;
            }
            let id = e.event_id().as_str();
            if let State::Unfinished(slots) = answered.state(id) {
                tracing::info!(room_id = %room.room_id(), message = %e.event_id(), parts = slots.len(), "an unfinished answer; finishing it");
                self.outbox().remember_sent(e.event_id().to_owned(), slots);
                return true;
            }
            let original = match e {
                Incoming::Message(message) => match &message.content.relates_to {
                    Some(Relation::Replacement(edit)) => Some(edit.event_id.as_str()),
                    _ => None,
                },
                // Relations stay in the clear: an edit whose original's answer used its text
                // is handled, also when this device cannot read it (a new device after a lost
                // store or a login again).
                Incoming::Undecryptable { .. } => sealed_edits.get(id).map(String::as_str),
                Incoming::UnreadableFile { .. } | Incoming::Again { .. } => None,
            };
            !answered.handled(id, original, *ts, |e| sent_at.get(e).copied())
        });
        candidates.extend(stops.agains());
        candidates.sort_by_key(|(ts, _)| *ts);
        let events: Vec<Incoming> = candidates.into_iter().map(|(_, e)| e).collect();
        let stopped = stops::stopped_in(&stops, &events);
        Ok((events, stopped))
    }
}

impl Bot {
    /// The parts of the complete answer to `message` in `room`, read back from its history
    /// (`None`: it has no complete answer).
    pub(crate) async fn complete_answer(
        &self,
        room: &Room,
        message: &matrix_sdk::ruma::EventId,
    ) -> anyhow::Result<Option<crate::markers::Slots>> {
        let mut answered = Answered::new(self.bot_id());
        walk_back(room, MAX_PAGES, |json| {
            answered.bot_event(&json);
            if json["event_id"] == message.as_str() {
                Walk::Stop
            } else {
                Walk::On
            }
        })
        .await?;
        Ok(answered.complete_parts(message.as_str()))
    }
}

/// The original an encrypted event edits, by its clear relation (`m.replace`).
fn sealed_edit_of(json: &serde_json::Value) -> Option<&str> {
    let relates = &json["content"]["m.relates_to"];
    (relates["rel_type"] == "m.replace")
        .then(|| relates["event_id"].as_str())
        .flatten()
}

/// What an event of the owner's asks of the bot: a message (or a file the SDK cannot read), or
/// an encrypted event this device cannot decrypt (e.g. after losing the store) that is not a
/// reaction and was not removed.
fn owners(json: &serde_json::Value) -> Option<Incoming> {
    if json["type"] == "m.room.message" {
        return match serde_json::from_value::<OriginalSyncRoomMessageEvent>(json.clone()) {
            Ok(message) => Some(Incoming::Message(Box::new(message))),
            Err(_) => crate::bot::runtime::unreadable_json(json)
                .map(|(event_id, sender)| Incoming::UnreadableFile { event_id, sender }),
        };
    }
    let readable_later = json["type"] == "m.room.encrypted"
        && !answered::removed(json)
        && json["content"]["m.relates_to"]["rel_type"] != "m.annotation";
    if !readable_later {
        return None;
    }
    let event_id = json["event_id"].as_str()?.try_into().ok()?;
    let sender = json["sender"].as_str()?.try_into().ok()?;
    Some(Incoming::Undecryptable { event_id, sender })
}
