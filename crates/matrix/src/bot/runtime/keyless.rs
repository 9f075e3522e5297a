//! Megolm sessions whose keys a wait did not bring. After a lost device (a revoked session, a
//! lost SDK store) a person's client may have sent dozens of messages in one room with one
//! session the bot never received; each would wait `KEY_WAIT` in turn, one after the other in
//! the room's order (the chaos soak measured 4 s each, minutes for one room). A message of a
//! session given up on, already on the homeserver when the wait gave up, is not waited for
//! again; a later one is (its sender may have shared the session since). Bounded: the oldest
//! entries go first.

use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many sessions are remembered (all rooms together).
const KEEP: usize = 1024;

/// The sessions given up on: room, session id, when (milliseconds since 1970).
#[derive(Debug, Default)]
pub(crate) struct Keyless {
    given_up: Mutex<VecDeque<(OwnedRoomId, String, u64)>>,
}

impl Keyless {
    /// A wait for `session`'s keys in `room` ended without them at `at_ms`.
    pub fn gave_up(&self, room: &RoomId, session: &str, at_ms: u64) {
        let mut given_up = self.given_up.lock().unwrap_or_else(|p| p.into_inner());
        given_up.retain(|(r, s, _)| !(r == room && s == session));
        if given_up.len() >= KEEP {
            given_up.pop_front();
        }
        given_up.push_back((room.to_owned(), session.to_owned(), at_ms));
    }

    /// Whether a message of `session` in `room`, sent at `sent_ms`, was already there when a
    /// wait for that session's keys gave up.
    pub fn already_waited(&self, room: &RoomId, session: &str, sent_ms: u64) -> bool {
        let given_up = self.given_up.lock().unwrap_or_else(|p| p.into_inner());
        given_up
            .iter()
            .any(|(r, s, at)| r == room && s == session && sent_ms <= *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_sdk::ruma::room_id;

    #[test]
    fn only_messages_already_there_of_the_same_session_and_room_skip_the_wait() {
        let keyless = Keyless::default();
        let (room, other) = (room_id!("!a:x"), room_id!("!b:x"));
        keyless.gave_up(room, "s1", 1_000);
        assert!(keyless.already_waited(room, "s1", 900));
        assert!(keyless.already_waited(room, "s1", 1_000));
        assert!(
            !keyless.already_waited(room, "s1", 1_001),
            "sent after: may have keys"
        );
        assert!(!keyless.already_waited(room, "s2", 900), "another session");
        assert!(!keyless.already_waited(other, "s1", 900), "another room");
        keyless.gave_up(room, "s1", 2_000);
        assert!(
            keyless.already_waited(room, "s1", 1_500),
            "the later give-up counts"
        );
    }

    #[test]
    fn the_oldest_sessions_are_forgotten_past_the_bound() {
        let keyless = Keyless::default();
        let room = room_id!("!a:x");
        for n in 0..=KEEP {
            keyless.gave_up(room, &format!("s{n}"), 10);
        }
        assert!(!keyless.already_waited(room, "s0", 5), "the oldest went");
        assert!(keyless.already_waited(room, "s1", 5));
        assert!(keyless.already_waited(room, &format!("s{KEEP}"), 5));
        assert_eq!(keyless.given_up.lock().map(|g| g.len()).unwrap_or(0), KEEP);
    }
}
