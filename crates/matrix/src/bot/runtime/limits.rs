//! Bounds a hostile but allowed person cannot exceed: messages and new chats per minute,
//! first contacts provisioned at once, and the one notice a person removed from
//! `MATRIX_ALLOWED_USERS` gets. Memory stays bounded: a person's window is dropped once empty.

pub(crate) use crate::calendar::now_ms;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The length of a rate window.
const MINUTE: Duration = Duration::from_secs(60);

/// Sliding one-minute windows of events per person, by the time each happened (milliseconds
/// since the Unix epoch: a message's `origin_server_ts`, so messages caught up after downtime
/// count by when they were sent, not when they are handled).
#[derive(Debug, Default)]
pub(crate) struct Windows {
    times: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl Windows {
    /// Counts an event of `person` at `at_ms` if fewer than `max` happened in the minute before
    /// it; `false` (not counted) otherwise.
    pub fn take(&self, person: &str, at_ms: u64, max: u32) -> bool {
        let mut times = super::lock::lock(&self.times);
        let window = times.entry(person.to_owned()).or_default();
        let since = at_ms.saturating_sub(MINUTE.as_millis() as u64);
        window.retain(|t| *t > since);
        let allowed = window.len() < max as usize;
        if allowed {
            window.push_back(at_ms);
        }
        // Every person's window only holds the last minute; empty ones go.
        times.retain(|_, w| w.back().is_some_and(|t| *t > since));
        allowed
    }
}

/// The bot's limits.
#[derive(Debug)]
pub(crate) struct Limits {
    /// Messages per person (`MATRIX_MAX_MESSAGES_PER_MINUTE`).
    pub messages: Windows,
    /// Room-creating commands per person (`MATRIX_MAX_NEW_PER_MINUTE`).
    pub new_chats: Windows,
    /// First contacts at once (`MATRIX_MAX_CONCURRENT_PROVISIONING`).
    pub provisioning: Semaphore,
    /// People no longer allowed who were told so (once per run).
    told_not_allowed: Mutex<HashSet<String>>,
    /// Rooms whose other members were told the bot answers only the owner (once per run).
    told_shared: Mutex<HashSet<String>>,
}

impl Limits {
    /// Limits with `provisioning` first contacts at once.
    pub fn new(provisioning: u32) -> Limits {
        Limits {
            messages: Windows::default(),
            new_chats: Windows::default(),
            provisioning: Semaphore::new(provisioning.max(1) as usize),
            told_not_allowed: Mutex::new(HashSet::new()),
            told_shared: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `person`, no longer allowed, is to be told so now (the first time this run).
    pub fn tell_not_allowed(&self, person: &str) -> bool {
        super::lock::lock(&self.told_not_allowed).insert(person.to_owned())
    }

    /// Whether the room, which gained a member besides its owner, is to be told so now (the
    /// first time this run).
    pub fn tell_shared(&self, room_id: &str) -> bool {
        super::lock::lock(&self.told_shared).insert(room_id.to_owned())
    }

    /// `person` is allowed again: told again if removed again.
    pub fn allowed_again(&self, person: &str) {
        super::lock::lock(&self.told_not_allowed).remove(person);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_max_per_minute_by_event_time() {
        let windows = Windows::default();
        let start = 1_000_000;
        for i in 0..3 {
            assert!(windows.take("@a:x", start + i, 3));
        }
        assert!(
            !windows.take("@a:x", start + 10, 3),
            "the fourth in a minute"
        );
        assert!(
            windows.take("@b:x", start + 10, 3),
            "others are not affected"
        );
        // Sent a minute later (even if handled at once, as after downtime): allowed.
        assert!(windows.take("@a:x", start + 60_001, 3));
    }

    #[test]
    fn empty_windows_are_dropped() {
        let windows = Windows::default();
        for i in 0..100 {
            windows.take(&format!("@p{i}:x"), 1_000, 5);
        }
        windows.take("@late:x", 1_000 + 120_000, 5);
        assert_eq!(super::super::lock::lock(&windows.times).len(), 1);
    }

    #[test]
    fn a_removed_person_is_told_once() {
        let limits = Limits::new(2);
        assert!(limits.tell_not_allowed("@a:x"));
        assert!(!limits.tell_not_allowed("@a:x"));
        limits.allowed_again("@a:x");
        assert!(limits.tell_not_allowed("@a:x"));
    }
}
