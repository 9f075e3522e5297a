//! Ordering: one queue per room (events are handled one at a time, in order), and one lock per
//! person (provisioning and commands of one person never interleave).

use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::Room;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// A file message the SDK cannot read (no `url` nor `file`): answered "no file".
    UnreadableFile {
        /// The event.
        event_id: OwnedEventId,
        /// Its sender.
        sender: OwnedUserId,
    },
    /// A 🔁 reaction on an answer: the answer is written again.
    Again {
        /// The reaction.
        reaction: OwnedEventId,
        /// The answer's event it was put on.
        answer: OwnedEventId,
        /// Who reacted.
        sender: OwnedUserId,
    },
}

impl Incoming {
    /// The event's id.
    pub fn event_id(&self) -> &EventId {
        match self {
            Incoming::Message(event) => &event.event_id,
            Incoming::Undecryptable { event_id, .. }
            | Incoming::UnreadableFile { event_id, .. } => event_id,
            Incoming::Again { reaction, .. } => reaction,
        }
    }

    /// Who sent it.
    pub fn sender(&self) -> &matrix_sdk::ruma::UserId {
        match self {
            Incoming::Message(event) => &event.sender,
            Incoming::Undecryptable { sender, .. }
            | Incoming::UnreadableFile { sender, .. }
            | Incoming::Again { sender, .. } => sender,
        }
    }
}

/// A file message (`m.image`, `m.audio`, `m.file`, `m.video`) the SDK cannot read (its `url`
/// and `file` are both missing or malformed): its id and sender.
pub(crate) fn unreadable_file(
    raw: &Raw<OriginalSyncRoomMessageEvent>,
) -> Option<(OwnedEventId, OwnedUserId)> {
    unreadable_json(&raw.deserialize_as::<serde_json::Value>().ok()?)
}

/// [`unreadable_file`] for an event already read as JSON (which the SDK could not read as a
/// message).
pub(crate) fn unreadable_json(json: &serde_json::Value) -> Option<(OwnedEventId, OwnedUserId)> {
    let msgtype = json["content"]["msgtype"].as_str()?;
    if !matches!(msgtype, "m.image" | "m.audio" | "m.file" | "m.video") {
        return None;
    }
    let event_id = json["event_id"].as_str()?.try_into().ok()?;
    let sender = json["sender"].as_str()?.try_into().ok()?;
    Some((event_id, sender))
}

/// One unit of work for a room's queue: its room, the event, and when it was queued (for the
/// answer's stages).
pub type Job = (Room, Incoming, super::stopwatch::Arrival);

/// What a queue needs to know of a job: its room and its event.
pub trait Queued: Send + 'static {
    /// The room whose queue it goes to.
    fn room_id(&self) -> OwnedRoomId;
    /// The event it handles (a repeat of an id is handled as a repeat).
    fn event_id(&self) -> String;
}

impl Queued for Job {
    fn room_id(&self) -> OwnedRoomId {
        self.0.room_id().to_owned()
    }
    fn event_id(&self) -> String {
        self.1.event_id().to_string()
    }
}

/// The senders of the running workers, by room.
type Senders<J> = Arc<Mutex<HashMap<OwnedRoomId, mpsc::UnboundedSender<J>>>>;

/// Per-room FIFO queues, each drained by its own task; a worker idle for `idle` exits (and its
/// memory goes), the next job starts a new one.
#[derive(Debug)]
pub struct RoomQueues<J = Job> {
    senders: Senders<J>,
    idle: Duration,
}

impl<J: Queued> RoomQueues<J> {
    /// Queues whose workers exit after `idle` without work.
    pub fn new(idle: Duration) -> RoomQueues<J> {
        RoomQueues {
            senders: Arc::default(),
            idle,
        }
    }

    /// Rooms with a running worker.
    #[cfg(test)]
    pub fn workers(&self) -> usize {
        super::lock::lock(&self.senders).len()
    }

    /// Queues `job` for its room, starting the room's worker with `handle` if needed. `handle`
    /// gets every job in order, with `true` the first time its event is seen and `false` for a
    /// repeat (catch-up and live sync can both deliver an event: each is handled once), and
    /// says whether the job finished: an event whose job did not (a send given up) is not
    /// counted as seen, so it is handled again when it comes again.
    pub fn push<F, Fut>(&self, job: J, handle: F)
    where
        F: Fn(J, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let room_id = job.room_id();
        let mut senders = super::lock::lock(&self.senders);
        let job = match senders.get(&room_id) {
            Some(sender) => match sender.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job, // worker gone; start a new one
            },
            None => job,
        };
        let (sender, receiver) = mpsc::unbounded_channel::<J>();
        let _ = sender.send(job);
        let mine = sender.downgrade();
        senders.insert(room_id.clone(), sender);
        let worker = Worker {
            room_id,
            senders: self.senders.clone(),
            mine,
            idle: self.idle,
        };
        tokio::spawn(worker.run(receiver, handle));
    }
}

/// One room's worker.
struct Worker<J> {
    room_id: OwnedRoomId,
    senders: Senders<J>,
    mine: mpsc::WeakUnboundedSender<J>,
    idle: Duration,
}

impl<J: Queued> Worker<J> {
    async fn run<F, Fut>(self, mut receiver: mpsc::UnboundedReceiver<J>, handle: F)
    where
        F: Fn(J, bool) -> Fut,
        Fut: Future<Output = bool>,
    {
        let mut seen = RecentIds::default();
        while let Some(job) = self.next(&mut receiver).await {
            let id = job.event_id();
            let first_time = seen.insert(id.clone());
            if !handle(job, first_time).await {
                seen.forget(&id);
            }
        }
    }

    /// The next job, or `None` once the worker has been idle for `idle` (it then leaves the
    /// map, under its lock, so no job can be queued to it afterwards).
    async fn next(&self, receiver: &mut mpsc::UnboundedReceiver<J>) -> Option<J> {
        if let Ok(job) = tokio::time::timeout(self.idle, receiver.recv()).await {
            return job;
        }
        let mut senders = super::lock::lock(&self.senders);
        if let Ok(job) = receiver.try_recv() {
            return Some(job);
        }
        if let Some(mine) = self.mine.upgrade() {
            if senders
                .get(&self.room_id)
                .is_some_and(|s| s.same_channel(&mine))
            {
                senders.remove(&self.room_id);
            }
        }
        None
    }
}

/// The most recent event ids a room's worker handled: at most [`RecentIds::CAPACITY`], none
/// older than [`RecentIds::KEEP`] (and none past the worker's life).
#[derive(Debug, Default)]
struct RecentIds {
    order: std::collections::VecDeque<(String, Instant)>,
    set: std::collections::HashSet<String>,
}

impl RecentIds {
    const CAPACITY: usize = 4096;
    const KEEP: Duration = Duration::from_secs(3600);

    /// Records `id`; `false` if it was already there.
    fn insert(&mut self, id: String) -> bool {
        let now = Instant::now();
        while self.order.front().is_some_and(|(_, at)| {
            now.duration_since(*at) > Self::KEEP || self.order.len() >= Self::CAPACITY
        }) {
            if let Some((old, _)) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.order.push_back((id, now));
        true
    }

    /// Forgets `id`: it is handled again when it comes again.
    fn forget(&mut self, id: &str) {
        if self.set.remove(id) {
            self.order.retain(|(kept, _)| kept != id);
        }
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
        let mut locks = super::lock::lock(&self.locks);
        // Locks nobody holds or waits for go: the map stays as small as the work.
        locks.retain(|held, lock| held == key || Arc::strong_count(lock) > 1);
        locks.entry(key.to_owned()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_sdk::ruma::owned_room_id;

    #[derive(Debug)]
    struct Test(OwnedRoomId, &'static str);

    impl Queued for Test {
        fn room_id(&self) -> OwnedRoomId {
            self.0.clone()
        }
        fn event_id(&self) -> String {
            self.1.to_owned()
        }
    }

    #[tokio::test]
    async fn an_idle_worker_exits_and_the_next_job_starts_a_new_one() {
        let queues = RoomQueues::new(Duration::from_millis(300));
        let handled = Arc::new(Mutex::new(Vec::new()));
        let record = |handled: Arc<Mutex<Vec<(String, bool)>>>| {
            move |job: Test, first: bool| {
                let handled = handled.clone();
                async move {
                    super::super::lock::lock(&handled).push((job.1.to_owned(), first));
                    job.1 != "$unfinished"
                }
            }
        };
        let room = owned_room_id!("!a:x");
        queues.push(Test(room.clone(), "$1"), record(handled.clone()));
        queues.push(Test(room.clone(), "$1"), record(handled.clone()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(queues.workers(), 1);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(queues.workers(), 0, "the idle worker left");
        queues.push(Test(room, "$2"), record(handled.clone()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            *super::super::lock::lock(&handled),
            vec![
                ("$1".into(), true),
                ("$1".into(), false),
                ("$2".into(), true)
            ]
        );
        assert_eq!(queues.workers(), 1);
    }

    #[tokio::test]
    async fn an_event_whose_job_did_not_finish_is_handled_again() {
        let queues = RoomQueues::new(Duration::from_secs(60));
        let (sender, mut handled) = mpsc::unbounded_channel();
        let record = move |job: Test, first: bool| {
            let sender = sender.clone();
            async move {
                let _ = sender.send((job.1, first));
                job.1 != "$unfinished" || !first
            }
        };
        let room = owned_room_id!("!a:x");
        for id in [
            "$unfinished",
            "$unfinished",
            "$unfinished",
            "$done",
            "$done",
        ] {
            queues.push(Test(room.clone(), id), record.clone());
        }
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(handled.recv().await.expect("handled"));
        }
        assert_eq!(
            got,
            vec![
                ("$unfinished", true),
                ("$unfinished", true),
                ("$unfinished", true),
                ("$done", true),
                ("$done", false)
            ]
        );
    }

    #[tokio::test]
    async fn a_persons_lock_serialises_and_goes_once_nobody_needs_it() {
        let locks = KeyedLocks::default();
        let anna = locks.get("@anna:x");
        let held = anna.lock().await;
        assert!(
            locks.get("@anna:x").try_lock().is_err(),
            "one lock per person"
        );
        drop(held);
        drop(anna);
        for n in 0..100 {
            drop(locks.get(&format!("@stranger{n}:x")));
        }
        assert!(
            super::super::lock::lock(&locks.locks).len() <= 1,
            "the locks of people nobody waits for are gone"
        );
    }

    #[test]
    fn recent_ids_are_bounded() {
        let mut ids = RecentIds::default();
        for i in 0..(RecentIds::CAPACITY + 10) {
            assert!(ids.insert(format!("${i}")));
        }
        assert!(ids.order.len() <= RecentIds::CAPACITY);
        assert!(
            !ids.insert(format!("${}", RecentIds::CAPACITY + 9)),
            "recent ones kept"
        );
    }
}
