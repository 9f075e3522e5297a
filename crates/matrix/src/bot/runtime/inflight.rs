//! Rooms with work in flight: a room is in the set from the moment one of its events is queued
//! until its queue has drained. The set lives in the SDK store next to the sync position, and
//! each addition is written before the event handler returns, that is before the position that
//! delivered the event is saved. So after a crash a resumed connection (which will not deliver
//! those events again) still knows which rooms to read back through: catch-up checks them.
//! Losing the store loses both the set and the position; a new connection then shows every
//! room's latest events, which is enough.
//!
//! Counting is synchronous and the write comes after: an event's job can start while its
//! room's entry is being written (the write is not on the path of the answer), and writes are
//! serialised, each taking the set as it is when its turn comes, so a later write never
//! stores an older set.

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The SDK store key of the set.
const KEY: &[u8] = b"lambda-matrix.rooms-in-flight";

/// Counts of queued events per room, mirrored to the SDK store as a set.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Mutex<BTreeMap<OwnedRoomId, usize>>,
    writes: tokio::sync::Mutex<()>,
}

impl InFlight {
    /// The set a previous run left in the SDK store (empty if none). `Err` if it cannot be
    /// read or parsed: the caller cannot tell which rooms were in flight.
    pub async fn saved(client: &Client) -> anyhow::Result<BTreeSet<OwnedRoomId>> {
        let bytes = client
            .state_store()
            .get_custom_value(KEY)
            .await
            .map_err(|error| {
                anyhow::anyhow!("cannot read the saved rooms-in-flight set: {error}")
            })?;
        match bytes {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                anyhow::anyhow!("the saved rooms-in-flight set is unreadable: {error}")
            }),
            None => Ok(BTreeSet::new()),
        }
    }

    /// One more event queued in `room`. Returns whether the set changed (the room was idle):
    /// then [`InFlight::save`] must be awaited before the sync position moves on.
    pub fn enter(&self, room: &OwnedRoomId) -> bool {
        let mut counts = super::lock::lock(&self.counts);
        let count = counts.entry(room.clone()).or_default();
        *count += 1;
        *count == 1
    }

    /// Counts `rooms` as in flight without saving (they are saved already).
    pub fn hold(&self, rooms: &BTreeSet<OwnedRoomId>) {
        let mut counts = super::lock::lock(&self.counts);
        for room in rooms {
            *counts.entry(room.clone()).or_default() += 1;
        }
    }

    /// One queued event of `room` done; the set is saved if the room became idle.
    pub async fn end(&self, client: &Client, room: &OwnedRoomId) {
        let changed = {
            let mut counts = super::lock::lock(&self.counts);
            match counts.get_mut(room) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    counts.remove(room);
                    true
                }
                None => false,
            }
        };
        if changed {
            self.save(client).await;
        }
    }

    /// Writes the set as it is now (after any write already under way).
    pub async fn save(&self, client: &Client) {
        let _turn = self.writes.lock().await;
        let bytes = {
            let counts = super::lock::lock(&self.counts);
            let rooms: Vec<&OwnedRoomId> = counts.keys().collect();
            serde_json::to_vec(&rooms).unwrap_or_default()
        };
        if let Err(error) = client
            .state_store()
            .set_custom_value_no_read(KEY, bytes)
            .await
        {
            tracing::warn!(%error, "cannot save the rooms-in-flight set; a crash now may delay answers until the room's next message");
        }
    }
}
