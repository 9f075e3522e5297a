//! Live gaps: a room whose timeline in a sync response had a gap (more events than one
//! response carries) is read back from its history, and its live events wait for that.
//!
//! Without the wait, the events after the gap went on the room's queue at once and the ones
//! behind it only once read back: a message's edit was answered on its own before the message
//! (whose answer then used the edited text too: two answers), and a later message was answered
//! before an earlier one, without it in the conversation. So from the moment a response with
//! a gap is noted ([`Gaps::note`], before the first of its events is queued and before its
//! position is saved) until the room's history was read back, the room's live jobs are held
//! ([`Gaps::hold`]); the read-back queues everything unanswered oldest first, then the held
//! jobs follow ([`Gaps::release`]); the ones it already queued are repeats, handled once.
//!
//! The room updates come from the SDK's broadcast, which is sent before the response's event
//! handlers run: whoever notes first (an event handler or the sync loop before it saves the
//! position) sees the gaps of the response being processed.
//!
//! A room the bot is still making can show up with a gap before its state is whole (no power
//! levels yet); reading its history then makes the SDK log an error (its push rules cannot be
//! evaluated), and nothing of anyone's is behind that gap anyway. Its read-back waits for a
//! later response ([`Gaps::defer`]), at most [`MAX_DEFERRALS`] times.

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::sync::RoomUpdates;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use tokio::sync::{broadcast, Notify};

/// How many responses a read-back waits at most for a room's state to be whole.
pub const MAX_DEFERRALS: u8 = 5;

/// Rooms with a live gap not yet read back, and the jobs held for them.
#[derive(Debug)]
pub struct Gaps<J> {
    state: Mutex<State<J>>,
    /// Raised when rooms are waiting to be read back.
    unread: Notify,
}

#[derive(Debug)]
struct State<J> {
    updates: Option<broadcast::Receiver<RoomUpdates>>,
    /// Rooms read back or waiting to be, with the jobs that came for them meanwhile.
    held: BTreeMap<OwnedRoomId, Vec<J>>,
    /// Held rooms not yet handed to the read-back.
    unread: BTreeSet<OwnedRoomId>,
    /// Held rooms whose read-back waits for the next response, with how often it did.
    deferred: BTreeMap<OwnedRoomId, u8>,
    /// Updates were missed: which rooms had gaps is unknown, every room is read back.
    lagged: bool,
}

impl<J> Default for Gaps<J> {
    fn default() -> Gaps<J> {
        Gaps {
            state: Mutex::new(State {
                updates: None,
                held: BTreeMap::new(),
                unread: BTreeSet::new(),
                deferred: BTreeMap::new(),
                lagged: false,
            }),
            unread: Notify::new(),
        }
    }
}

impl<J> Gaps<J> {
    /// Notes the gaps of the responses processed from now on (`None`: none; a stop).
    pub fn watch(&self, updates: Option<broadcast::Receiver<RoomUpdates>>) {
        super::lock(&self.state).updates = updates;
    }

    /// Reads the room updates processed since the last call: every room whose timeline had a
    /// gap is held until read back. Returns the rooms newly held (the caller counts them in
    /// flight, so a crash before the read-back leaves them to the next start).
    pub fn note(&self) -> Vec<OwnedRoomId> {
        let mut newly = Vec::new();
        let mut state = super::lock(&self.state);
        let state = &mut *state;
        let Some(updates) = state.updates.as_mut() else {
            return newly;
        };
        let mut responses = 0;
        loop {
            match updates.try_recv() {
                Ok(update) => {
                    responses += 1;
                    let gaps = update
                        .joined
                        .into_iter()
                        .filter(|(_, u)| u.timeline.limited);
                    for (room_id, _) in gaps {
                        if !state.held.contains_key(&room_id) {
                            state.held.insert(room_id.clone(), Vec::new());
                            newly.push(room_id.clone());
                        }
                        state.unread.insert(room_id);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => state.lagged = true,
                Err(_) => break,
            }
        }
        // A response came: the deferred read-backs try again.
        if responses > 0 {
            let State {
                deferred, unread, ..
            } = state;
            unread.extend(deferred.keys().cloned());
        }
        if !state.unread.is_empty() || state.lagged {
            self.unread.notify_one();
        }
        newly
    }

    /// `job` of `room_id` from the live sync: back if it can be queued now, `None` if it is held
    /// until the room is read back.
    pub fn hold(&self, room_id: &OwnedRoomId, job: J) -> Option<J> {
        match super::lock(&self.state).held.get_mut(room_id) {
            Some(jobs) => {
                jobs.push(job);
                None
            }
            None => Some(job),
        }
    }

    /// Waits until rooms are waiting to be read back; returns them, and whether updates were
    /// missed (then every room is read back).
    pub async fn unread(&self) -> (BTreeSet<OwnedRoomId>, bool) {
        loop {
            {
                let mut state = super::lock(&self.state);
                if !state.unread.is_empty() || state.lagged {
                    let lagged = std::mem::take(&mut state.lagged);
                    return (std::mem::take(&mut state.unread), lagged);
                }
            }
            self.unread.notified().await;
        }
    }

    /// The read-back of `room_id` (handed out by [`Gaps::unread`]) waits for the next response:
    /// `false` once it has waited [`MAX_DEFERRALS`] times (then it is read back now).
    pub fn defer(&self, room_id: &OwnedRoomId) -> bool {
        let mut state = super::lock(&self.state);
        let waited = state.deferred.entry(room_id.clone()).or_default();
        *waited += 1;
        *waited <= MAX_DEFERRALS
    }

    /// `room_id` was read back: its jobs that came meanwhile, in order, and whether it is no
    /// longer held (`false`: a new gap was noted meanwhile; it stays held for its next
    /// read-back).
    pub fn release(&self, room_id: &OwnedRoomId) -> (Vec<J>, bool) {
        let mut state = super::lock(&self.state);
        state.deferred.remove(room_id);
        if state.unread.contains(room_id) {
            let jobs = state.held.get_mut(room_id).map(std::mem::take);
            return (jobs.unwrap_or_default(), false);
        }
        match state.held.remove(room_id) {
            Some(jobs) => (jobs, true),
            None => (Vec::new(), false),
        }
    }

    /// Stops noting gaps and forgets the held rooms and their jobs (a stop or a pause). Returns
    /// the rooms: they are still in flight, and the runtime strands them, so they are read back
    /// after the next catch-up (or at the next start).
    pub fn clear(&self) -> Vec<OwnedRoomId> {
        let mut state = super::lock(&self.state);
        state.updates = None;
        state.unread.clear();
        state.deferred.clear();
        state.lagged = false;
        std::mem::take(&mut state.held).into_keys().collect()
    }

    /// Every held room (after missed updates, every room is read back).
    pub fn held(&self) -> Vec<OwnedRoomId> {
        super::lock(&self.state).held.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_sdk::sync::JoinedRoomUpdate;

    fn update(rooms: &[(&str, bool)]) -> RoomUpdates {
        let mut update = RoomUpdates::default();
        for (room, limited) in rooms {
            let mut joined = JoinedRoomUpdate::default();
            joined.timeline.limited = *limited;
            update
                .joined
                .insert((*room).try_into().expect("room id"), joined);
        }
        update
    }

    fn id(room: &str) -> OwnedRoomId {
        room.try_into().expect("room id")
    }

    #[tokio::test]
    async fn a_rooms_live_jobs_wait_for_its_gap_to_be_read_back() {
        let gaps: Gaps<&str> = Gaps::default();
        let (sender, receiver) = broadcast::channel(4);
        assert_eq!(gaps.hold(&id("!a:x"), "before"), Some("before"));
        gaps.watch(Some(receiver));
        sender
            .send(update(&[("!a:x", true), ("!b:x", false)]))
            .expect("send");
        assert_eq!(gaps.note(), vec![id("!a:x")], "the room with a gap");
        assert!(gaps.note().is_empty(), "noted once");
        assert_eq!(gaps.hold(&id("!a:x"), "edit"), None, "held");
        assert_eq!(gaps.hold(&id("!b:x"), "other"), Some("other"), "no gap");
        let (rooms, lagged) = gaps.unread().await;
        assert_eq!((rooms, lagged), (BTreeSet::from([id("!a:x")]), false));
        // A second gap in the same room while it is read back: still held after.
        assert_eq!(gaps.hold(&id("!a:x"), "later"), None);
        sender.send(update(&[("!a:x", true)])).expect("send");
        assert!(gaps.note().is_empty(), "already held");
        assert_eq!(gaps.release(&id("!a:x")), (vec!["edit", "later"], false));
        assert_eq!(gaps.hold(&id("!a:x"), "meanwhile"), None, "still held");
        let (rooms, _) = gaps.unread().await;
        assert_eq!(rooms, BTreeSet::from([id("!a:x")]));
        assert_eq!(gaps.release(&id("!a:x")), (vec!["meanwhile"], true));
        assert_eq!(gaps.hold(&id("!a:x"), "after"), Some("after"), "released");
        assert!(gaps.held().is_empty(), "nothing kept");
        sender.send(update(&[("!c:x", true)])).expect("send");
        assert_eq!(gaps.note(), vec![id("!c:x")]);
        assert_eq!(
            gaps.clear(),
            vec![id("!c:x")],
            "a pause hands back the held rooms"
        );
        assert_eq!(gaps.hold(&id("!c:x"), "job"), Some("job"));
    }

    #[tokio::test]
    async fn a_read_back_deferred_waits_for_the_next_response_a_bounded_number_of_times() {
        let gaps: Gaps<&str> = Gaps::default();
        let (sender, receiver) = broadcast::channel(8);
        gaps.watch(Some(receiver));
        sender.send(update(&[("!a:x", true)])).expect("send");
        assert_eq!(gaps.note(), vec![id("!a:x")]);
        let mut waits = 0;
        loop {
            let (rooms, _) = gaps.unread().await;
            assert_eq!(rooms, BTreeSet::from([id("!a:x")]));
            if !gaps.defer(&id("!a:x")) {
                break;
            }
            waits += 1;
            assert!(gaps.note().is_empty(), "no response yet");
            assert_eq!(gaps.hold(&id("!a:x"), "waiting"), None, "still held");
            sender.send(update(&[("!b:x", false)])).expect("send");
            assert!(gaps.note().is_empty(), "the next response");
        }
        assert_eq!(usize::from(MAX_DEFERRALS), waits);
        let (jobs, ended) = gaps.release(&id("!a:x"));
        assert!(ended && jobs.len() == waits);
        assert!(gaps.held().is_empty());
    }

    #[tokio::test]
    async fn missed_updates_read_every_room_back() {
        let gaps: Gaps<&str> = Gaps::default();
        let (sender, receiver) = broadcast::channel(1);
        gaps.watch(Some(receiver));
        sender.send(update(&[("!a:x", true)])).expect("send");
        sender.send(update(&[("!b:x", false)])).expect("send");
        assert!(gaps.note().is_empty(), "the gap was missed");
        let (rooms, lagged) = gaps.unread().await;
        assert!(rooms.is_empty() && lagged);
        assert!(gaps.clear().is_empty(), "nothing was held");
        // Nobody listens any more.
        assert!(sender.send(update(&[("!a:x", true)])).is_err());
        assert!(gaps.note().is_empty(), "stopped");
        assert_eq!(gaps.hold(&id("!a:x"), "job"), Some("job"));
    }
}
