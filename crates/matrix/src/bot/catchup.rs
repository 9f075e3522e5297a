//! Catch-up: messages people sent while the bot was away are answered once, oldest first.
//!
//! The record of "handled" is on the server: the bot's reply (`m.in_reply_to`) to the event.
//! Relations stay readable in encrypted rooms without decryption, so this holds after losing the
//! cache and the SDK store. Found events go through the same per-room queue as live traffic.

use super::queue::Incoming;
use super::Bot;
use lambda_matrix_core::RoomKind;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::{RoomId, UInt};
use matrix_sdk::Room;
use serde::Serialize;
use std::collections::HashSet;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Events fetched per history page.
const PAGE: u32 = 50;
/// Most pages read per room (a bound for rooms with very long unanswered histories).
const MAX_PAGES: usize = 40;

/// What catch-up found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CatchupReport {
    /// Rooms whose recent history was read.
    pub rooms_checked: usize,
    /// Unanswered messages queued.
    pub queued: usize,
    /// Rooms whose history could not be read, with why.
    pub failed: Vec<String>,
    /// Time taken.
    pub duration_ms: u64,
}

impl Bot {
    /// Queues every unanswered message from a room's owner younger than
    /// `MATRIX_CATCHUP_MAX_AGE`, in each of the bot's chat rooms and direct chats.
    pub async fn catch_up(&self) -> CatchupReport {
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
            report.rooms_checked += 1;
            match self.unanswered(&room, &record.owner).await {
                Ok(events) => {
                    report.queued += events.len();
                    for event in events {
                        tracing::info!(room_id = %record.room_id, event_id = %event.event_id(), "catching up");
                        self.enqueue(room.clone(), event);
                    }
                }
                Err(error) => report.failed.push(format!("{}: {error:#}", record.room_id)),
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            step = "catch-up",
            rooms_checked = report.rooms_checked,
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
        let mut replied: HashSet<String> = HashSet::new();
        let mut candidates: Vec<(u64, Incoming)> = Vec::new();
        let mut from = None;
        for _ in 0..MAX_PAGES {
            let mut options = MessagesOptions::backward();
            options.from = from.take();
            options.limit = UInt::from(PAGE);
            let batch = room.messages(options).await?;
            let mut reached_cutoff = false;
            for event in &batch.chunk {
                let Ok(json) = event.raw().deserialize_as::<serde_json::Value>() else {
                    continue;
                };
                let ts = json["origin_server_ts"].as_u64().unwrap_or(0);
                if ts < cutoff {
                    reached_cutoff = true;
                    continue;
                }
                let sender = json["sender"].as_str().unwrap_or_default();
                if sender == self.bot_id() {
                    // Readable even when the reply itself is encrypted and undecryptable.
                    if let Some(target) =
                        json["content"]["m.relates_to"]["m.in_reply_to"]["event_id"].as_str()
                    {
                        replied.insert(target.to_owned());
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
            }
            if reached_cutoff || batch.chunk.is_empty() || batch.end.is_none() {
                break;
            }
            from = batch.end;
        }
        candidates.retain(|(_, e)| !replied.contains(e.event_id().as_str()));
        candidates.sort_by_key(|(ts, _)| *ts);
        Ok(candidates.into_iter().map(|(_, e)| e).collect())
    }
}
