//! The bot's shared state, in small groups by concern, so each part of the bot touches only
//! the group it works with.

use super::deliver::Slots;
use super::inflight::InFlight;
use super::pending::Pending;
use super::queue::{KeyedLocks, RoomQueues};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use matrix_sdk::sync::RoomUpdates;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;

/// Whether synced events are handled as they come, and what the start's responses
/// leave for catch-up ([`super::Bot::pause`], [`super::Bot::go_live`]).
#[derive(Debug, Default)]
pub(super) struct Lifecycle {
    /// `false` while the start's responses are processed: their events are old,
    /// catch-up decides what they need.
    pub live: AtomicBool,
    /// Room updates of the start's responses, read by catch-up.
    pub first_updates: Mutex<Option<broadcast::Receiver<RoomUpdates>>>,
    /// The task that reads back history when a live timeline had a gap.
    pub gap_watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Order: one queue per room, one lock per person, one repair at a time.
#[derive(Debug)]
pub(super) struct Order {
    /// Per-room queues ([`super::queue`]).
    pub queues: RoomQueues,
    /// Per-person locks (provisioning and commands of one person never interleave).
    pub people: KeyedLocks,
    /// Runtime repairs, one at a time.
    pub repairing: tokio::sync::Mutex<()>,
}

impl Order {
    /// Queues whose workers exit after `idle`.
    pub fn new(idle: Duration) -> Order {
        Order {
            queues: RoomQueues::new(idle),
            people: KeyedLocks::default(),
            repairing: tokio::sync::Mutex::new(()),
        }
    }
}

/// Answers in progress: what can still change them, what a previous run left, what could not
/// be sent, and which rooms have work in flight.
#[derive(Debug, Default)]
pub(super) struct Conversation {
    /// Messages waiting for an answer: edits, redactions and `!cancel` before it is sent.
    pub pending: Pending,
    /// Parts of unfinished answers a previous run left, by the message they answer.
    pub partials: Mutex<HashMap<OwnedEventId, Slots>>,
    /// Rooms whose current job gave up a send (they stay in flight; see [`super::send`]).
    pub undelivered: Mutex<HashSet<OwnedRoomId>>,
    /// Rooms with queued work, mirrored to the SDK store.
    pub in_flight: InFlight,
    /// Jobs queued or running, for a stop that lets them finish ([`super::Bot::drain`]).
    pub jobs: tokio::sync::watch::Sender<usize>,
}

/// Changes to the leaving record ([`super::leaving`]).
#[derive(Debug, Default)]
pub(super) struct Leaving {
    /// Serialises them.
    pub lock: tokio::sync::Mutex<()>,
    /// The record as this process last wrote it (the synced copy can lag behind).
    pub written: Mutex<Option<BTreeSet<String>>>,
}
