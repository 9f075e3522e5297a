//! The outbox: everything that puts an event on the server. Answers and notices are rendered
//! into events that each fit the homeserver's limit ([`events`]), split into parts and
//! delivered into the parts already there ([`deliver`]), shown as they grow ([`stream`]), sent
//! once each with retries under one transaction id ([`send`]); the typing notice
//! ([`typing`]) runs beside them.
//!
//! It owns what sending leaves behind: the rooms whose current job gave up a send (they stay in
//! flight) and the parts an earlier run left for unfinished answers.

mod deliver;
mod events;
mod kind;
mod reply;
mod send;
mod stream;
mod typing;

pub(crate) use kind::Kind;
pub(crate) use send::{worth_retrying, SEND};
pub(crate) use stream::Shown;
pub(crate) use typing::Typing;

use crate::bot::runtime::lock;
use crate::markers::Slots;
use crate::metrics::Metrics;
use crate::strings::Texts;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The outbox: clone freely, clones share one state.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    inner: Arc<State>,
}

#[derive(Debug)]
struct State {
    metrics: Arc<Metrics>,
    /// `MATRIX_SEND_RETRY_FOR`: how long one send is tried.
    retry_for: Duration,
    texts: Texts,
    /// Rooms whose current job gave up a send (they stay in flight; see [`send`]).
    undelivered: Mutex<HashSet<OwnedRoomId>>,
    /// Parts of unfinished answers a previous run left, by the message they answer.
    partials: Mutex<HashMap<OwnedEventId, Slots>>,
    /// Answers being written again for a 🔁 reaction: the reaction, by the message answered.
    again: Mutex<HashMap<OwnedEventId, OwnedEventId>>,
    /// What answers about to be delivered cost, by the event whose text they answer.
    usage: Mutex<HashMap<OwnedEventId, Vec<crate::markers::UsageMark>>>,
}

impl Outbox {
    /// An outbox that tries each send for `retry_for` and writes its notes in `texts`.
    pub fn new(metrics: Arc<Metrics>, retry_for: Duration, texts: Texts) -> Outbox {
        Outbox {
            inner: Arc::new(State {
                metrics,
                retry_for,
                texts,
                undelivered: Mutex::default(),
                partials: Mutex::default(),
                again: Mutex::default(),
                usage: Mutex::default(),
            }),
        }
    }

    /// Parts an earlier run left for `message` (found by catch-up): its next answer goes there.
    pub fn remember_sent(&self, message: OwnedEventId, slots: Slots) {
        lock(&self.inner.partials).insert(message, slots);
    }

    /// The next answer using `message`'s text is written again for the 🔁 `reaction`: its
    /// parts say so.
    pub fn remember_again(&self, message: OwnedEventId, reaction: OwnedEventId) {
        lock(&self.inner.again).insert(message, reaction);
    }

    /// What the answer using `text_of`'s text cost: written in its last part's mark.
    pub fn remember_usage(&self, text_of: OwnedEventId, usage: &[lambda_matrix_platform::Usage]) {
        let marks = usage.iter().map(Into::into).collect();
        lock(&self.inner.usage).insert(text_of, marks);
    }

    /// The usage to write with the answer using `text_of`'s text (taken: written once).
    fn take_usage(
        &self,
        text_of: &matrix_sdk::ruma::EventId,
    ) -> Option<Vec<crate::markers::UsageMark>> {
        lock(&self.inner.usage).remove(text_of)
    }

    /// The 🔁 reaction the answer to `message` is written for, if it is written again.
    fn again_for(&self, message: &matrix_sdk::ruma::EventId) -> Option<OwnedEventId> {
        lock(&self.inner.again).get(message).cloned()
    }

    /// The answer to `message` was delivered (or will not be): a 🔁 it was written for is done.
    pub fn forget_again(&self, message: &matrix_sdk::ruma::EventId) {
        lock(&self.inner.again).remove(message);
    }

    /// The parts a previous run left for `message`, if any.
    pub fn take_sent(&self, message: &matrix_sdk::ruma::EventId) -> Slots {
        lock(&self.inner.partials)
            .remove(message)
            .unwrap_or_default()
    }
}
