//! Rooms with work in flight: a room is in the set from the moment one of its events is queued
//! until its queue has drained. The set lives in the SDK store next to the sync position, and
//! each addition is written before the event handler returns, that is before the position that
//! delivered the event is saved. So after a crash a resumed connection (which will not deliver
//! those events again) still knows which rooms to read back through: catch-up checks them.
//! Losing the store loses both the set and the position; a new connection then shows every
//! room's latest events, which is enough.

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Client;
use std::collections::{BTreeMap, BTreeSet};

/// The SDK store key of the set.
const KEY: &[u8] = b"lambda-matrix.rooms-in-flight";

/// Counts of queued events per room, mirrored to the SDK store as a set.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: tokio::sync::Mutex<BTreeMap<OwnedRoomId, usize>>,
}

impl InFlight {
    /// The set a previous run left in the SDK store (empty if none or unreadable).
    pub async fn saved(client: &Client) -> BTreeSet<OwnedRoomId> {
        match client.state_store().get_custom_value(KEY).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(%error, "the saved rooms-in-flight set is unreadable; ignoring it");
                BTreeSet::new()
            }),
            Ok(None) => BTreeSet::new(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the saved rooms-in-flight set");
                BTreeSet::new()
            }
        }
    }

    /// One more event queued in `room`; the set is saved if the room was idle.
    pub async fn begin(&self, client: &Client, room: &OwnedRoomId) {
        let mut counts = self.counts.lock().await;
        let count = counts.entry(room.clone()).or_default();
        *count += 1;
        if *count == 1 {
            save(client, &counts).await;
        }
    }

    /// Counts `rooms` as in flight without saving (they are saved already).
    pub async fn hold(&self, rooms: &BTreeSet<OwnedRoomId>) {
        let mut counts = self.counts.lock().await;
        for room in rooms {
            *counts.entry(room.clone()).or_default() += 1;
        }
    }

    /// One queued event of `room` done; the set is saved if the room became idle.
    pub async fn end(&self, client: &Client, room: &OwnedRoomId) {
        let mut counts = self.counts.lock().await;
        let Some(count) = counts.get_mut(room) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(room);
            save(client, &counts).await;
        }
    }
}

async fn save(client: &Client, counts: &BTreeMap<OwnedRoomId, usize>) {
    let rooms: Vec<&OwnedRoomId> = counts.keys().collect();
    let bytes = serde_json::to_vec(&rooms).unwrap_or_default();
    if let Err(error) = client
        .state_store()
        .set_custom_value_no_read(KEY, bytes)
        .await
    {
        tracing::warn!(%error, "cannot save the rooms-in-flight set; a crash now may delay answers until the room's next message");
    }
}
