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
//!
//! A room that goes idle is not written out at once: the stored set may hold more rooms than
//! are in flight (a crash then costs catch-up one read of each, which finds them answered),
//! never fewer. Idle rooms leave it with the next write, at most every [`TIDY_EVERY`] from the
//! sync loop ([`InFlight::tidy`]), and at a stop ([`InFlight::flush`]). So a conversation costs
//! one write when it starts, not two per message: each was a transaction of the SDK store
//! synced to disk (docs/BENCHMARKS.md, "CPU per answer").

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The SDK store key of the set.
const KEY: &[u8] = b"lambda-matrix.rooms-in-flight";
/// How often idle rooms are dropped from the stored set, at most.
pub const TIDY_EVERY: Duration = Duration::from_secs(10);

/// What is counted and what is known to be stored.
#[derive(Debug, Default)]
struct State {
    counts: BTreeMap<OwnedRoomId, usize>,
    /// Rooms the stored set is known to hold: a write drops here first the rooms it may drop
    /// there, and adds here the rooms it wrote once it is done. So a room found here is stored.
    stored: BTreeSet<OwnedRoomId>,
    /// Whether an event was queued since [`InFlight::take_entered`] last looked.
    entered: bool,
}

/// Counts of queued events per room, mirrored to the SDK store as a set.
#[derive(Debug, Default)]
pub struct InFlight {
    state: Mutex<State>,
    writes: tokio::sync::Mutex<()>,
    /// When idle rooms were last dropped from the stored set.
    tidied: Mutex<Option<Instant>>,
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

    /// One more event queued in `room`. Returns whether the stored set may lack the room:
    /// then [`InFlight::save`] must be awaited before the sync position moves on.
    pub fn enter(&self, room: &OwnedRoomId) -> bool {
        let mut state = super::lock::lock(&self.state);
        *state.counts.entry(room.clone()).or_default() += 1;
        state.entered = true;
        !state.stored.contains(room)
    }

    /// Counts `rooms` as in flight without saving (they are saved already).
    pub fn hold(&self, rooms: &BTreeSet<OwnedRoomId>) {
        let mut state = super::lock::lock(&self.state);
        for room in rooms {
            *state.counts.entry(room.clone()).or_default() += 1;
        }
        state.stored.extend(rooms.iter().cloned());
    }

    /// One queued event of `room` done. An idle room stays stored until the next write.
    pub fn end(&self, room: &OwnedRoomId) {
        let mut state = super::lock::lock(&self.state);
        match state.counts.get_mut(room) {
            Some(count) if *count > 1 => *count -= 1,
            Some(_) => {
                state.counts.remove(room);
            }
            None => {}
        }
    }

    /// Whether an event was queued since the last call: the position of the sync response
    /// that delivered it must be saved.
    pub fn take_entered(&self) -> bool {
        std::mem::take(&mut super::lock::lock(&self.state).entered)
    }

    /// Writes the set as it is now (after any write already under way).
    pub async fn save(&self, client: &Client) {
        let _turn = self.writes.lock().await;
        let rooms = self.to_write();
        let bytes = serde_json::to_vec(&rooms).unwrap_or_default();
        match client
            .state_store()
            .set_custom_value_no_read(KEY, bytes)
            .await
        {
            Ok(()) => self.written(rooms),
            Err(error) => {
                tracing::warn!(%error, "cannot save the rooms-in-flight set; a crash now may delay answers until the room's next message");
            }
        }
    }

    /// The set to write now. The rooms it drops are no longer known to be stored from this
    /// moment: one with news before the write is done must be written again.
    fn to_write(&self) -> BTreeSet<OwnedRoomId> {
        let mut state = super::lock::lock(&self.state);
        let rooms: BTreeSet<OwnedRoomId> = state.counts.keys().cloned().collect();
        state.stored.retain(|room| rooms.contains(room));
        rooms
    }

    /// `rooms` are stored now.
    fn written(&self, rooms: BTreeSet<OwnedRoomId>) {
        super::lock::lock(&self.state).stored.extend(rooms);
    }

    /// Writes the set if the stored one holds rooms that are idle now (at a stop, and through
    /// [`InFlight::tidy`]).
    pub async fn flush(&self, client: &Client) {
        let stale = {
            let state = super::lock::lock(&self.state);
            state
                .stored
                .iter()
                .any(|room| !state.counts.contains_key(room))
        };
        if stale {
            self.save(client).await;
        }
    }

    /// [`InFlight::flush`], at most every [`TIDY_EVERY`] (after a sync response).
    pub async fn tidy(&self, client: &Client) {
        {
            let mut tidied = super::lock::lock(&self.tidied);
            if tidied.is_some_and(|at| at.elapsed() < TIDY_EVERY) {
                return;
            }
            *tidied = Some(Instant::now());
        }
        self.flush(client).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(n: u32) -> OwnedRoomId {
        OwnedRoomId::try_from(format!("!r{n}:example.org")).expect("room id")
    }

    async fn client() -> Client {
        Client::builder()
            .homeserver_url("http://127.0.0.1:9")
            .build()
            .await
            .expect("client")
    }

    #[tokio::test]
    async fn a_conversation_writes_the_set_once_and_a_stop_writes_it_empty() {
        let (client, in_flight) = (client().await, InFlight::default());
        assert!(in_flight.enter(&room(1)), "a new room must be written");
        in_flight.save(&client).await;
        assert_eq!(
            InFlight::saved(&client).await.expect("read"),
            [room(1)].into()
        );
        in_flight.end(&room(1));
        // The next message of the same room: already stored, no write before its position.
        assert!(!in_flight.enter(&room(1)));
        in_flight.end(&room(1));
        assert_eq!(
            InFlight::saved(&client).await.expect("read"),
            [room(1)].into(),
            "an idle room stays stored until the next write"
        );
        in_flight.flush(&client).await;
        assert!(InFlight::saved(&client).await.expect("read").is_empty());
        assert!(
            in_flight.enter(&room(1)),
            "dropped: written again when it has news"
        );
    }

    #[test]
    fn a_room_is_never_taken_for_stored_while_a_write_without_it_is_under_way() {
        let in_flight = InFlight::default();
        in_flight.enter(&room(1));
        let first = in_flight.to_write();
        in_flight.written(first);
        in_flight.end(&room(1));
        // A write that drops the idle room has taken the set, and is not done yet ...
        let dropping = in_flight.to_write();
        assert!(dropping.is_empty());
        // ... when the room has news again: it must be written, not taken for stored.
        assert!(in_flight.enter(&room(1)));
        in_flight.written(dropping);
        assert!(in_flight.to_write().contains(&room(1)));
    }

    #[test]
    fn only_a_queued_event_asks_for_the_position_to_be_saved() {
        let in_flight = InFlight::default();
        assert!(!in_flight.take_entered());
        in_flight.enter(&room(2));
        assert!(in_flight.take_entered());
        assert!(!in_flight.take_entered(), "once per event");
        in_flight.hold(&[room(3)].into());
        assert!(
            !in_flight.take_entered(),
            "rooms saved already are not news"
        );
    }
}
