//! Messages waiting for an answer, per room, and what can still change them before the answer
//! is sent: an edit (answered in its edited form), a redaction (not answered), `!cancel`
//! (stopped, and the person told). Fed when events are queued, so live traffic and catch-up
//! behave alike; an entry lives until its message's job is done.

use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Most times an answer is restarted because its message was edited again (a later edit gets
/// an answer of its own).
pub const MAX_RESTARTS: usize = 3;

/// What happened to a waiting message by the time it is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Answer it with this text; `edit` names the edit the text comes from, if any.
    Answer {
        /// The text to answer.
        text: String,
        /// The edit the text was taken from.
        edit: Option<OwnedEventId>,
    },
    /// `!cancel` stopped it: tell the person.
    Cancelled,
    /// The person removed it: say nothing.
    Redacted,
}

/// What an answer that came back does ([`Pending::settle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The message was edited meanwhile and another try is allowed: ask again with this.
    Again(Fate),
    /// Deliver the answer, labelled with the fate it answered.
    Deliver(Fate),
    /// Cancelled or removed meanwhile.
    Stop(Fate),
}

#[derive(Debug, Default)]
struct Room {
    /// Conversation messages queued or being answered.
    waiting: HashSet<OwnedEventId>,
    cancelled: HashSet<OwnedEventId>,
    redacted: HashSet<OwnedEventId>,
    /// Latest edit of a waiting message: (edit id, new text).
    edits: HashMap<OwnedEventId, (OwnedEventId, String)>,
    /// Edits whose text an answer already used (their own job has nothing to do).
    covered: HashSet<OwnedEventId>,
    /// Answers `!cancel` stopped, by the `!cancel` event.
    cancel_counts: HashMap<OwnedEventId, usize>,
    /// Wakes the answer in progress when its message is cancelled or redacted.
    stop: HashMap<OwnedEventId, Arc<Notify>>,
}

impl Room {
    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.covered.is_empty() && self.cancel_counts.is_empty()
    }
}

/// Waiting messages of every room.
#[derive(Debug, Default)]
pub struct Pending {
    rooms: Mutex<HashMap<OwnedRoomId, Room>>,
}

impl Pending {
    fn with<T>(&self, room: &OwnedRoomId, f: impl FnOnce(&mut Room) -> T) -> T {
        let mut rooms = super::lock::lock(&self.rooms);
        let entry = rooms.entry(room.clone()).or_default();
        let out = f(entry);
        if entry.is_idle() {
            rooms.remove(room);
        }
        out
    }

    /// A conversation message was queued.
    pub fn wait(&self, room: &OwnedRoomId, message: &OwnedEventId) {
        self.with(room, |r| {
            r.waiting.insert(message.clone());
        });
    }

    /// An edit of `original` arrived: used if `original` is still waiting.
    pub fn edit(
        &self,
        room: &OwnedRoomId,
        original: &OwnedEventId,
        edit: &OwnedEventId,
        text: &str,
    ) {
        self.with(room, |r| {
            if r.waiting.contains(original) {
                // An earlier edit it replaces is superseded: its own job has nothing to do.
                // The same edit noted again (read back after it came live) is not superseded.
                if let Some((older, _)) = r
                    .edits
                    .insert(original.clone(), (edit.clone(), text.to_owned()))
                    .filter(|(older, _)| older != edit)
                {
                    r.covered.insert(older);
                }
            }
        });
    }

    /// `target` was redacted: if it is waiting, it will not be answered.
    pub fn redact(&self, room: &OwnedRoomId, target: &OwnedEventId) {
        self.with(room, |r| {
            if r.waiting.contains(target) {
                r.redacted.insert(target.clone());
                if let Some(stop) = r.stop.get(target) {
                    stop.notify_one();
                }
            }
        });
    }

    /// `!cancel` (event `command`): every waiting message is stopped. Counted once per command.
    pub fn cancel(&self, room: &OwnedRoomId, command: &OwnedEventId) {
        self.with(room, |r| {
            if r.cancel_counts.contains_key(command) {
                return;
            }
            let targets: Vec<OwnedEventId> = r
                .waiting
                .iter()
                .filter(|id| !r.cancelled.contains(*id) && !r.redacted.contains(*id))
                .cloned()
                .collect();
            for id in &targets {
                if let Some(stop) = r.stop.get(id) {
                    stop.notify_one();
                }
            }
            r.cancel_counts.insert(command.clone(), targets.len());
            r.cancelled.extend(targets);
        });
    }

    /// A 🛑 reaction: `message` is stopped if it is still waiting (like `!cancel` for it
    /// alone). Whether it was.
    pub fn stop(&self, room: &OwnedRoomId, message: &OwnedEventId) -> bool {
        self.with(room, |r| {
            let stoppable = r.waiting.contains(message)
                && !r.cancelled.contains(message)
                && !r.redacted.contains(message);
            if stoppable {
                r.cancelled.insert(message.clone());
                if let Some(stop) = r.stop.get(message) {
                    stop.notify_one();
                }
            }
            stoppable
        })
    }

    /// How many answers `!cancel` (event `command`) stopped; forgets the count.
    pub fn cancelled_by(&self, room: &OwnedRoomId, command: &OwnedEventId) -> usize {
        self.with(room, |r| r.cancel_counts.remove(command).unwrap_or(0))
    }

    /// What to do with `message` now; `original` is its own text. Marks the edit used.
    pub fn fate(&self, room: &OwnedRoomId, message: &OwnedEventId, original: &str) -> Fate {
        self.with(room, |r| {
            if r.redacted.contains(message) {
                return Fate::Redacted;
            }
            if r.cancelled.contains(message) {
                return Fate::Cancelled;
            }
            match r.edits.get(message) {
                Some((edit, text)) => {
                    r.covered.insert(edit.clone());
                    Fate::Answer {
                        text: text.clone(),
                        edit: Some(edit.clone()),
                    }
                }
                None => Fate::Answer {
                    text: original.to_owned(),
                    edit: None,
                },
            }
        })
    }

    /// An answer to `asked` (the [`Fate::Answer`] it was asked with) came back: what to do
    /// with it, given what happened to its message meanwhile. A newer edit restarts it when
    /// `may_restart` (and is then taken); otherwise the answer is delivered labelled with what
    /// it answered, and the newer edit is left to its own job, which answers it.
    pub fn settle(
        &self,
        room: &OwnedRoomId,
        message: &OwnedEventId,
        asked: &Fate,
        may_restart: bool,
    ) -> Settled {
        let Fate::Answer { edit: used, .. } = asked else {
            return Settled::Stop(asked.clone());
        };
        self.with(room, |r| {
            if r.redacted.contains(message) {
                return Settled::Stop(Fate::Redacted);
            }
            if r.cancelled.contains(message) {
                return Settled::Stop(Fate::Cancelled);
            }
            match r.edits.get(message) {
                Some((edit, text)) if Some(edit) != used.as_ref() && may_restart => {
                    r.covered.insert(edit.clone());
                    Settled::Again(Fate::Answer {
                        text: text.clone(),
                        edit: Some(edit.clone()),
                    })
                }
                _ => Settled::Deliver(asked.clone()),
            }
        })
    }

    /// The signal that wakes the answer to `message` when it is cancelled or redacted.
    pub fn stop_signal(&self, room: &OwnedRoomId, message: &OwnedEventId) -> Arc<Notify> {
        self.with(room, |r| r.stop.entry(message.clone()).or_default().clone())
    }

    /// Whether an answer already used `edit`'s text (consumes the mark).
    pub fn take_covered(&self, room: &OwnedRoomId, edit: &OwnedEventId) -> bool {
        self.with(room, |r| r.covered.remove(edit))
    }

    /// `message`'s job is over: forgets it.
    pub fn done(&self, room: &OwnedRoomId, message: &OwnedEventId) {
        self.with(room, |r| {
            r.waiting.remove(message);
            r.cancelled.remove(message);
            r.redacted.remove(message);
            r.edits.remove(message);
            r.stop.remove(message);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `signal` was raised (its wake is kept for the next wait).
    fn woken(signal: &Notify) -> bool {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(1), signal.notified())
                    .await
                    .is_ok()
            })
    }

    fn ids() -> (OwnedRoomId, OwnedEventId, OwnedEventId, OwnedEventId) {
        (
            "!r:x".try_into().expect("room"),
            "$m".try_into().expect("event"),
            "$e".try_into().expect("event"),
            "$c".try_into().expect("event"),
        )
    }

    #[test]
    fn an_edit_before_the_answer_is_answered_instead_and_covered() {
        let (room, m, e, _) = ids();
        let pending = Pending::default();
        pending.wait(&room, &m);
        pending.edit(&room, &m, &e, "fixed");
        assert_eq!(
            pending.fate(&room, &m, "typo"),
            Fate::Answer {
                text: "fixed".into(),
                edit: Some(e.clone())
            }
        );
        pending.done(&room, &m);
        assert!(pending.take_covered(&room, &e));
        assert!(!pending.take_covered(&room, &e), "once");
        assert!(
            super::super::lock::lock(&pending.rooms).is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn an_edit_noted_again_is_not_superseded_by_itself() {
        let (room, m, e, _) = ids();
        let pending = Pending::default();
        pending.wait(&room, &m);
        pending.edit(&room, &m, &e, "fixed");
        assert!(matches!(
            pending.fate(&room, &m, "typo"),
            Fate::Answer { .. }
        ));
        assert!(
            pending.take_covered(&room, &e),
            "its own job has nothing to do"
        );
        // The read-back of a gap queues the same edit again while its message is answered.
        pending.edit(&room, &m, &e, "fixed");
        pending.done(&room, &m);
        assert!(
            super::super::lock::lock(&pending.rooms).is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn an_edit_of_an_answered_message_is_not_taken() {
        let (room, m, e, _) = ids();
        let pending = Pending::default();
        pending.edit(&room, &m, &e, "late");
        assert!(!pending.take_covered(&room, &e));
        assert!(super::super::lock::lock(&pending.rooms).is_empty());
    }

    #[test]
    fn a_stop_reaction_stops_one_waiting_message_once() {
        let (room, m, other, _) = ids();
        let pending = Pending::default();
        assert!(!pending.stop(&room, &m), "nothing waits");
        pending.wait(&room, &m);
        pending.wait(&room, &other);
        let signal = pending.stop_signal(&room, &m);
        assert!(pending.stop(&room, &m));
        assert!(!pending.stop(&room, &m), "already stopped");
        assert_eq!(pending.fate(&room, &m, "hi"), Fate::Cancelled);
        assert!(
            matches!(pending.fate(&room, &other, "b"), Fate::Answer { .. }),
            "only the one it was put on"
        );
        // The answer in progress is woken (notify_one keeps the wake for the next wait).
        assert!(woken(&signal));
        pending.done(&room, &m);
        pending.done(&room, &other);
        assert!(super::super::lock::lock(&pending.rooms).is_empty());
    }

    #[test]
    fn cancel_and_redaction_stop_only_waiting_messages() {
        let (room, m, _, c) = ids();
        let pending = Pending::default();
        pending.cancel(&room, &c);
        assert_eq!(pending.cancelled_by(&room, &c), 0);

        pending.wait(&room, &m);
        let stop = pending.stop_signal(&room, &m);
        pending.cancel(&room, &c);
        pending.cancel(&room, &c); // delivered twice: counted once
        assert_eq!(pending.fate(&room, &m, "x"), Fate::Cancelled);
        assert_eq!(pending.cancelled_by(&room, &c), 1);
        // The signal was raised for the answer in progress.
        assert!(woken(&stop));
        pending.done(&room, &m);

        pending.wait(&room, &m);
        pending.redact(&room, &m);
        assert_eq!(pending.fate(&room, &m, "x"), Fate::Redacted);
        pending.done(&room, &m);
        assert!(super::super::lock::lock(&pending.rooms).is_empty());
    }

    /// One message and `slots.len()` edits of it, edit `i` arriving in slot `slots[i]`: 0 before
    /// its answer starts, `t` during try `t` of the platform call, and any slot after the
    /// tries it got: after the answer was delivered. Runs the answer (as `Bot::ask` does) and
    /// then each edit's own job (as `handle_edit` does); returns every answer as (the event
    /// whose text it is labelled with, the text it answered), and how many tries were made.
    fn run(slots: &[usize]) -> (Vec<(String, String)>, usize) {
        let room: OwnedRoomId = "!r:x".try_into().expect("room");
        let message: OwnedEventId = "$m".try_into().expect("event");
        let edits: Vec<OwnedEventId> = (0..slots.len())
            .map(|i| format!("$e{i}").try_into().expect("event"))
            .collect();
        let text = |i: usize| format!("version {i} ✓ ünïcode");
        let pending = Pending::default();
        pending.wait(&room, &message);
        let arrive = |slot: usize| {
            for (i, _) in slots.iter().enumerate().filter(|(_, s)| **s == slot) {
                pending.edit(&room, &message, &edits[i], &text(i + 1));
            }
        };
        arrive(0);
        let mut fate = pending.fate(&room, &message, &text(0));
        let (mut tries, mut restarts) = (1, 0);
        let answered = loop {
            let Fate::Answer { text: asked, edit } = fate.clone() else {
                unreachable!("nothing stops this message")
            };
            arrive(tries);
            match pending.settle(&room, &message, &fate, restarts < MAX_RESTARTS) {
                Settled::Again(next) => {
                    fate = next;
                    restarts += 1;
                    tries += 1;
                }
                Settled::Deliver(Fate::Answer { text, edit: label }) => {
                    assert_eq!((&text, &label), (&asked, &edit), "delivered as asked");
                    let label = label.map_or(message.to_string(), |e| e.to_string());
                    break (label, asked);
                }
                other => unreachable!("{other:?}"),
            }
        };
        pending.done(&room, &message);
        for slot in tries + 1..=slots.iter().copied().max().unwrap_or(0) {
            arrive(slot);
        }
        let mut answers = vec![answered];
        for (i, edit) in edits.iter().enumerate() {
            if !pending.take_covered(&room, edit) {
                answers.push((edit.to_string(), text(i + 1)));
            }
        }
        (answers, tries)
    }

    proptest::proptest! {
        #[test]
        fn whatever_the_timing_of_edits_answers_say_what_they_answered_and_the_last_edit_once(
            mut slots in proptest::collection::vec(0usize..7, 0..7)
        ) {
            slots.sort_unstable();
            let (answers, tries) = run(&slots);
            let text_of = |label: &str| match label.strip_prefix("$e") {
                Some(i) => format!("version {} ✓ ünïcode", i.parse::<usize>().unwrap_or(0) + 1),
                None => "version 0 ✓ ünïcode".to_owned(),
            };
            for (label, text) in &answers {
                proptest::prop_assert_eq!(&text_of(label), text, "labelled with what it answered");
            }
            if let Some(last) = slots.len().checked_sub(1) {
                let last = format!("$e{last}");
                let times = answers.iter().filter(|(label, _)| *label == last).count();
                proptest::prop_assert_eq!(times, 1, "the last edit answered once: {:?}", answers);
            }
            // Apart from the first answer, only an edit too late for it gets one: during its
            // last try (no restart left) or after it was delivered. A superseded edit never.
            for (label, _) in &answers[1..] {
                let i: usize = label.trim_start_matches("$e").parse().unwrap_or(0);
                proptest::prop_assert!(slots[i] >= tries, "{label} was known before: {answers:?}");
            }
            proptest::prop_assert!(tries <= MAX_RESTARTS + 1);
        }
    }
}
