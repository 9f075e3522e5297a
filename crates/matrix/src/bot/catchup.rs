//! Catch-up: messages people sent while the bot was away are answered once, oldest first.
//!
//! The record of "handled" is on the server: the bot's reply (`m.in_reply_to`) to the event;
//! for an edit, also a reply to its original sent after the edit (it answered the edited text).
//! Relations stay readable in encrypted rooms without decryption, so this holds after losing the
//! cache and the SDK store. Found events go through the same per-room queue as live traffic.
//!
//! Which rooms are read back: those whose latest event in the connection's first response is
//! not the bot's (the room has news since the bot last spoke; a new connection shows every room,
//! a resumed one only rooms that changed), plus the rooms a previous run left in flight
//! ([`super::inflight`]). Rooms where the bot spoke last cost no request. While live, a room
//! whose timeline had a gap (more events than one response carries) is read back the same way.

use super::context::PARTIAL_FIELD;
use super::history::{walk_back, Walk};
use super::inflight::InFlight;
use super::queue::Incoming;
use super::{lock, Bot};
use lambda_matrix_core::RoomKind;
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, RoomId};
use matrix_sdk::sync::RoomUpdates;
use matrix_sdk::Room;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// Most pages read per room (a bound for rooms with very long unanswered histories).
const MAX_PAGES: usize = 40;

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

/// Rooms whose latest event in `updates` was sent by someone other than `bot`.
fn rooms_with_news(updates: &RoomUpdates, bot: &str, into: &mut BTreeSet<OwnedRoomId>) {
    for (room_id, update) in &updates.joined {
        let latest = update.timeline.events.last();
        let sender =
            latest.and_then(|event| event.raw().get_field::<String>("sender").ok().flatten());
        if sender.is_some_and(|sender| sender != bot) {
            into.insert(room_id.clone());
        }
    }
}

/// Rooms whose timeline in `updates` has a gap before the events it carries.
fn rooms_with_gaps(updates: &RoomUpdates) -> BTreeSet<OwnedRoomId> {
    updates
        .joined
        .iter()
        .filter(|(_, update)| update.timeline.limited)
        .map(|(room_id, _)| room_id.clone())
        .collect()
}

impl Bot {
    /// After a connection's first response: queues every unanswered message from a room's
    /// owner younger than `MATRIX_CATCHUP_MAX_AGE`, in the chat rooms and direct chats that have
    /// news or were left in flight.
    pub async fn catch_up(&self) -> CatchupReport {
        let mut rooms = BTreeSet::new();
        let mut everything = false;
        match lock(&self.inner.first_updates).take() {
            Some(mut updates) => loop {
                match updates.try_recv() {
                    Ok(update) => rooms_with_news(&update, self.bot_id(), &mut rooms),
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
        let saved = InFlight::saved(self.client()).await;
        // Still in flight until checked, whatever is saved meanwhile.
        self.inner.in_flight.hold(&saved).await;
        rooms.extend(saved.iter().cloned());
        let report = self
            .catch_up_rooms(if everything { None } else { Some(&rooms) })
            .await;
        for room_id in &saved {
            self.inner.in_flight.end(self.client(), room_id).await;
        }
        report
    }

    /// While live: reads back the rooms whose timeline had a gap.
    pub(super) async fn watch_gaps(self, mut updates: broadcast::Receiver<RoomUpdates>) {
        loop {
            let rooms = match updates.recv().await {
                Ok(update) => rooms_with_gaps(&update),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "some room updates were missed; reading every room back"
                    );
                    self.catch_up_rooms(None).await;
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            if !rooms.is_empty() {
                self.catch_up_rooms(Some(&rooms)).await;
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
                report
                    .failed
                    .push(format!("cannot read the cache: {error}"));
                Vec::new()
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
                Ok(events) => {
                    report.queued += events.len();
                    for event in events {
                        tracing::info!(room_id = %record.room_id, event_id = %event.event_id(), "catching up");
                        self.enqueue(room.clone(), event).await;
                    }
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

    /// The owner's messages in `room` without a reply from the bot, oldest first.
    async fn unanswered(&self, room: &Room, owner: &str) -> anyhow::Result<Vec<Incoming>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let cutoff = now
            .saturating_sub(self.settings().catchup_max_age)
            .as_millis() as u64;
        // Event id -> when the bot's latest reply to it was sent.
        let mut replied: HashMap<String, u64> = HashMap::new();
        let mut candidates: Vec<(u64, Incoming)> = Vec::new();
        // Streamed answers: (reply, message, sent at) still marked partial, and the replies a
        // final edit completed.
        let mut partial: Vec<(String, String, u64)> = Vec::new();
        let mut completed: HashSet<String> = HashSet::new();
        let bot = self.bot_id();
        walk_back(room, MAX_PAGES, |json| {
            let ts = json["origin_server_ts"].as_u64().unwrap_or(0);
            if ts < cutoff {
                return Walk::AfterPage;
            }
            let sender = json["sender"].as_str().unwrap_or_default();
            if sender == bot {
                let content = &json["content"];
                let relates = &content["m.relates_to"];
                if relates["rel_type"] == "m.replace" {
                    // A final edit (no partial mark) completes a streamed answer.
                    if content["m.new_content"][PARTIAL_FIELD] != true {
                        if let Some(target) = relates["event_id"].as_str() {
                            completed.insert(target.to_owned());
                        }
                    }
                } else if let Some(target) = relates["m.in_reply_to"]["event_id"].as_str() {
                    // Readable even when the reply itself is encrypted and undecryptable.
                    if content[PARTIAL_FIELD] == true {
                        let id = json["event_id"].as_str().unwrap_or_default();
                        partial.push((id.to_owned(), target.to_owned(), ts));
                    } else {
                        let at = replied.entry(target.to_owned()).or_default();
                        *at = (*at).max(ts);
                    }
                }
            } else if sender == owner && json["type"] == "m.room.message" {
                if let Ok(message) =
                    serde_json::from_value::<OriginalSyncRoomMessageEvent>(json.clone())
                {
                    candidates.push((ts, Incoming::Message(Box::new(message))));
                }
            } else if sender == owner && json["type"] == "m.room.encrypted" {
                // Not decryptable with the keys this device has (e.g. after losing the store).
                let ids = (
                    json["event_id"].as_str().and_then(|id| id.try_into().ok()),
                    sender.try_into().ok(),
                );
                if let (Some(event_id), Some(sender)) = ids {
                    candidates.push((ts, Incoming::Undecryptable { event_id, sender }));
                }
            }
            Walk::On
        })
        .await?;
        for (reply, message, ts) in partial {
            if completed.contains(&reply) {
                let at = replied.entry(message).or_default();
                *at = (*at).max(ts);
            } else if let (Ok(message), Ok(reply)) = (
                OwnedEventId::try_from(message.as_str()),
                OwnedEventId::try_from(reply.as_str()),
            ) {
                tracing::info!(room_id = %room.room_id(), %message, %reply, "an unfinished streamed answer; answering again into it");
                self.remember_partial(message, reply);
            }
        }
        // Handled: replied to; for an edit also when its original was answered after the edit
        // arrived (that answer used the edited text).
        candidates.retain(|(ts, e)| {
            if replied.contains_key(e.event_id().as_str()) {
                return false;
            }
            let Incoming::Message(message) = e else {
                return true;
            };
            match &message.content.relates_to {
                Some(Relation::Replacement(edit)) => replied
                    .get(edit.event_id.as_str())
                    .is_none_or(|answered| answered < ts),
                _ => true,
            }
        });
        candidates.sort_by_key(|(ts, _)| *ts);
        Ok(candidates.into_iter().map(|(_, e)| e).collect())
    }
}
