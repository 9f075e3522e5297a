//! Ordering: one queue per room (events are handled one at a time, in order), and one lock per
//! person (provisioning and commands of one person never interleave).

use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::Room;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// An event from a person that needs handling.
#[derive(Clone, Debug)]
pub enum Incoming {
    /// A message the bot can read.
    Message(Box<OriginalSyncRoomMessageEvent>),
    /// An encrypted event the bot could not decrypt.
    Undecryptable {
        /// The event.
        event_id: OwnedEventId,
        /// Its sender.
        sender: OwnedUserId,
    },
}

impl Incoming {
    /// The event's id.
    pub fn event_id(&self) -> &EventId {
        match self {
            Incoming::Message(event) => &event.event_id,
            Incoming::Undecryptable { event_id, .. } => event_id,
        }
    }

    /// Who sent it.
    pub fn sender(&self) -> &matrix_sdk::ruma::UserId {
        match self {
            Incoming::Message(event) => &event.sender,
            Incoming::Undecryptable { sender, .. } => sender,
        }
    }
}

/// One unit of work for a room's queue.
pub type Job = (Room, Incoming);

/// Per-room FIFO queues, each drained by its own task.
#[derive(Debug, Default)]
pub struct RoomQueues {
    senders: Mutex<HashMap<OwnedRoomId, mpsc::UnboundedSender<Job>>>,
}

impl RoomQueues {
    /// Queues `job` for its room, starting the room's worker with `handle` if needed. `handle`
    /// gets every job in order, with `true` the first time its event is seen and `false` for a
    /// repeat (catch-up and live sync can both deliver an event: each is handled once).
    pub fn push<F, Fut>(&self, job: Job, handle: F)
    where
        F: Fn(Job, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let room_id = job.0.room_id().to_owned();
        let mut senders = super::lock(&self.senders);
        let job = match senders.get(&room_id) {
            Some(sender) => match sender.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job, // worker gone; start a new one
            },
            None => job,
        };
        let (sender, mut receiver) = mpsc::unbounded_channel::<Job>();
        let _ = sender.send(job);
        senders.insert(room_id, sender);
        tokio::spawn(async move {
            let mut seen = RecentIds::default();
            while let Some(job) = receiver.recv().await {
                let first_time = seen.insert(job.1.event_id().to_string());
                handle(job, first_time).await;
            }
        });
    }
}

/// The most recent event ids a room's worker handled (bounded).
#[derive(Debug, Default)]
struct RecentIds {
    order: std::collections::VecDeque<String>,
    set: std::collections::HashSet<String>,
}

impl RecentIds {
    const CAPACITY: usize = 4096;

    /// Records `id`; `false` if it was already there.
    fn insert(&mut self, id: String) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Async locks keyed by a string (a person's user id).
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// The lock for `key`.
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = super::lock(&self.locks);
        locks.entry(key.to_owned()).or_default().clone()
    }
}
