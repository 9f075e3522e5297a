//! The runtime: the order work is done in and how much of it may run. One queue per room
//! ([`queue`]), one lock per person, one repair at a time, the messages waiting for an answer
//! ([`pending`]), the rooms with work in flight ([`inflight`]), the per-person bounds
//! ([`limits`]), the megolm sessions given up on ([`keyless`]), the rooms whose live gap is
//! being read back ([`gaps`]), each job's times ([`stopwatch`], with its waits on the homeserver
//! from [`waits`]), the count of jobs a stop waits for, and whether synced events
//! are handled as they come. Knows nothing of what a job does: the bot hands it the handler.

mod fair;
mod gaps;
mod inflight;
mod keyless;
mod limits;
mod lock;
mod pending;
mod queue;
pub(crate) mod stopwatch;
pub(crate) mod waits;

pub(crate) use fair::FairPermits;
pub(crate) use gaps::Gaps;
pub(crate) use inflight::InFlight;
pub(crate) use keyless::Keyless;
pub(crate) use limits::{now_ms, Limits};
pub(crate) use lock::lock;
pub(crate) use pending::{Fate, Pending, Settled, MAX_RESTARTS};
pub(crate) use queue::{unreadable_file, unreadable_json, Incoming, Job, KeyedLocks};

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::sync::RoomUpdates;
use queue::RoomQueues;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// The runtime's state; each piece is reached through a method.
#[derive(Debug)]
pub(crate) struct Runtime {
    /// `false` while the start's responses are processed: their events are old, catch-up
    /// decides what they need.
    live: AtomicBool,
    /// Room updates of the start's responses, read by catch-up.
    first_updates: Mutex<Option<broadcast::Receiver<RoomUpdates>>>,
    /// The task that reads back history when a live timeline had a gap.
    gap_watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
    queues: RoomQueues,
    people: KeyedLocks,
    repairing: tokio::sync::Mutex<()>,
    pending: Pending,
    in_flight: InFlight,
    /// Jobs queued or running, for a stop that lets them finish ([`Runtime::drain`]).
    jobs: watch::Sender<usize>,
    limits: Limits,
    /// Platform calls at once (`LAMBDA_MAX_CONCURRENT_ANSWERS`), fair between people.
    answers: FairPermits,
    /// Attachment bodies held at once (`MATRIX_MAX_CONCURRENT_DOWNLOADS`), fair between people.
    downloads: FairPermits,
    /// Rooms whose job gave up a send: still in flight, read back once the homeserver takes
    /// events again.
    stranded: Mutex<BTreeSet<OwnedRoomId>>,
    keyless: Keyless,
    /// Rooms whose live timeline had a gap, with the live jobs held until it is read back.
    gaps: Gaps<(matrix_sdk::Room, Incoming)>,
}

impl Runtime {
    /// A runtime with the bounds of `limits`.
    pub fn new(limits: &crate::config::Limits) -> Runtime {
        let (idle, provisioning) = (limits.room_worker_idle, limits.max_concurrent_provisioning);
        Runtime {
            answers: FairPermits::new(limits.max_concurrent_answers),
            downloads: FairPermits::new(limits.max_concurrent_downloads),
            live: AtomicBool::new(false),
            first_updates: Mutex::default(),
            gap_watch: Mutex::default(),
            queues: RoomQueues::new(idle),
            people: KeyedLocks::default(),
            repairing: tokio::sync::Mutex::new(()),
            pending: Pending::default(),
            in_flight: InFlight::default(),
            jobs: watch::Sender::new(0),
            limits: Limits::new(provisioning),
            stranded: Mutex::default(),
            keyless: Keyless::default(),
            gaps: Gaps::default(),
        }
    }

    /// `room`'s job gave up a send: its room waits to be read back (it stays in flight).
    pub fn strand(&self, room: OwnedRoomId) {
        lock(&self.stranded).insert(room);
    }

    /// The rooms waiting to be read back (they are no longer listed: one that cannot be read
    /// yet is stranded again).
    pub fn take_stranded(&self) -> BTreeSet<OwnedRoomId> {
        std::mem::take(&mut *lock(&self.stranded))
    }

    /// Whether any room waits to be read back.
    pub fn any_stranded(&self) -> bool {
        !lock(&self.stranded).is_empty()
    }

    /// Messages waiting for an answer: edits, redactions and `!cancel` before it is sent.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }

    /// Megolm sessions whose keys a wait did not bring.
    pub fn keyless(&self) -> &Keyless {
        &self.keyless
    }

    /// Rooms whose live gap is being read back.
    pub fn gaps(&self) -> &Gaps<(matrix_sdk::Room, Incoming)> {
        &self.gaps
    }

    /// Notes the gaps of the responses processed since the last call: each newly held room
    /// counts as in flight (until released). Whether the set changed: then
    /// [`InFlight::save`] must be awaited before the sync position moves on.
    pub fn note_gaps(&self) -> bool {
        let mut changed = false;
        for room in self.gaps.note() {
            changed |= self.in_flight.enter(&room);
        }
        changed
    }

    /// Rooms with queued work, mirrored to the SDK store.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Per-person locks: provisioning and commands of one person never interleave.
    pub fn people(&self) -> &KeyedLocks {
        &self.people
    }

    /// The per-person bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Platform calls: one permit each, fair between people.
    pub fn answers(&self) -> &FairPermits {
        &self.answers
    }

    /// Attachment bodies in memory: one permit each, from the download to the answer's end.
    pub fn downloads(&self) -> &FairPermits {
        &self.downloads
    }

    /// Waits for the runtime repair lock: repairs run one at a time.
    pub async fn one_repair_at_a_time(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.repairing.lock().await
    }

    /// Whether synced events are handled as they come.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// Stops handling synced events as they come; `updates` collects the start's room updates
    /// for catch-up. The gap watch of an earlier live period stops.
    pub fn pause(&self, updates: broadcast::Receiver<RoomUpdates>) {
        self.stop();
        *lock(&self.first_updates) = Some(updates);
    }

    /// Stops handling synced events and ends the gap watch. Rooms held for a gap stay in
    /// flight, stranded: read back after the next catch-up (or at the next start).
    pub fn stop(&self) {
        self.live.store(false, Ordering::SeqCst);
        if let Some(watch) = lock(&self.gap_watch).take() {
            watch.abort();
        }
        for room in self.gaps.clear() {
            self.strand(room);
        }
    }

    /// Handles synced events from now on, with `gap_watch` reading back live gaps, noted from
    /// `updates`.
    pub fn go_live(
        &self,
        gap_watch: tokio::task::JoinHandle<()>,
        updates: broadcast::Receiver<RoomUpdates>,
    ) {
        self.gaps.watch(Some(updates));
        *lock(&self.gap_watch) = Some(gap_watch);
        self.live.store(true, Ordering::SeqCst);
    }

    /// The room updates the start's responses carried (once).
    pub fn take_first_updates(&self) -> Option<broadcast::Receiver<RoomUpdates>> {
        lock(&self.first_updates).take()
    }

    /// Puts `job` on its room's queue, run by `handle` in the room's order; counted as a job a
    /// stop waits for until `handle` calls [`Runtime::job_done`].
    pub fn push<F, Fut>(&self, job: Job, handle: F)
    where
        F: Fn(Job, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.job_started();
        self.queues.push(job, handle);
    }

    /// One more job a stop waits for: queued by [`Runtime::push`], or work off the room queues
    /// (a first contact, a leave) counted until it ends.
    pub fn job_started(&self) {
        self.jobs.send_modify(|jobs| *jobs += 1);
    }

    /// One job of [`Runtime::push`] or [`Runtime::job_started`] has ended.
    pub fn job_done(&self) {
        self.jobs.send_modify(|jobs| *jobs = jobs.saturating_sub(1));
    }

    /// On a stop: waits up to `grace` for the queued and running jobs to finish (the sync has
    /// stopped, so no new ones come). What is left is finished at the next start (catch-up
    /// reads back the rooms still in flight), so a short grace loses nothing; it only spares
    /// the person the wait for that start.
    pub async fn drain(&self, grace: Duration) {
        let mut jobs = self.jobs.subscribe();
        let waiting = *jobs.borrow();
        if waiting == 0 {
            return;
        }
        tracing::info!(
            jobs = waiting,
            ?grace,
            "stopping: letting the answers in progress finish"
        );
        let finished = tokio::time::timeout(grace, jobs.wait_for(|jobs| *jobs == 0))
            .await
            .is_ok();
        if finished {
            tracing::info!("every answer in progress finished");
        } else {
            let left = *self.jobs.borrow();
            tracing::warn!(
                jobs = left,
                "stopping with answers in progress; they are finished at the next start"
            );
        }
    }
}
