//! Counting the bot's answers from a person's side of the homeserver (their timeline), never
//! from the bot's logs: which messages were answered once, twice or not at all, which answers
//! miss a part, and which events a retry sent twice. Pure: it reads [`Message`]s.
//!
//! An answer is one reply, or one reply split into parts marked
//! `m.relates_to."org.lambda.matrix.part": {index, count}`; it is complete when parts
//! `0..count` all exist and none is still marked `partial`. A streamed answer the platform
//! broke off is marked [`INTERRUPTED`] and followed by a notice giving the reason: the two are
//! one answer. An edit of a message is answered either inside the message's own answer (it
//! came first) or by a reply of its own, not both.

use crate::person::Message;
use std::collections::{BTreeMap, BTreeSet};

/// The words the bot puts at the end of a streamed answer the platform broke off, before the
/// notice that says why.
pub const INTERRUPTED: &str = "this answer was interrupted";

/// What the person sent, for counting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// A message or a command: it needs exactly one answer.
    Message {
        /// Its event id.
        event_id: String,
    },
    /// An edit of an earlier message.
    Edit {
        /// The edit's event id.
        event_id: String,
        /// The message it edits.
        of: String,
        /// The new text.
        text: String,
    },
}

/// The bot's answer to one event, as the person sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerView {
    /// How many answers (unmarked replies, and first parts).
    pub answers: usize,
    /// Parts missing or left partial among `0..count`.
    pub parts_missing: usize,
    /// Reply events beyond the first of their kind (the same part twice, a second unmarked
    /// reply).
    pub duplicates: usize,
    /// Every reply's latest text, in timeline order, joined by blank lines.
    pub text: String,
    /// Whether every reply could be read (decrypted).
    pub readable: bool,
}

/// One reply in its latest form: part index, count, partial, text, readable.
struct Version {
    index: Option<u64>,
    count: Option<u64>,
    partial: bool,
    text: String,
    readable: bool,
}

/// The bot's (`bot`) answer to `event_id` in `history`.
pub fn answer_to(history: &[Message], bot: &str, event_id: &str) -> AnswerView {
    let versions: Vec<Version> = history
        .iter()
        .filter(|m| m.sender == bot && m.replaces.is_none())
        .filter(|m| m.in_reply_to.as_deref() == Some(event_id))
        .map(|reply| latest(history, bot, reply))
        .collect();
    let mut kinds: BTreeMap<Option<u64>, usize> = BTreeMap::new();
    for version in &versions {
        *kinds.entry(version.index).or_default() += 1;
    }
    let mut answers = versions
        .iter()
        .filter(|v| matches!(v.index, None | Some(0)))
        .count();
    let mut duplicates: usize = kinds.values().map(|n| n - 1).sum();
    // The notice after an interrupted answer belongs to it (marked as a part of its own or not).
    let interrupted = versions
        .iter()
        .any(|v| v.index.is_some() && v.text.contains(INTERRUPTED));
    let notice = versions
        .iter()
        .rfind(|v| matches!(v.index, None | Some(0)) && !v.text.contains(INTERRUPTED));
    if let Some(notice) = notice.filter(|_| interrupted && answers > 1) {
        answers -= 1;
        if notice.index.is_some() && kinds.get(&notice.index).is_some_and(|n| *n > 1) {
            duplicates = duplicates.saturating_sub(1);
        }
    }
    AnswerView {
        answers,
        parts_missing: parts_missing(&versions),
        duplicates,
        text: versions
            .iter()
            .map(|v| v.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
        readable: versions.iter().all(|v| v.readable),
    }
}

/// `reply` as its latest edit by the bot shows it.
fn latest(history: &[Message], bot: &str, reply: &Message) -> Version {
    let edit = history
        .iter()
        .rev()
        .find(|m| m.sender == bot && m.replaces.as_deref() == Some(reply.event_id.as_str()));
    let (part, partial, text) = match edit {
        Some(edit) => (
            edit.part.or(reply.part),
            edit.partial,
            edit.new_body.clone().unwrap_or_default(),
        ),
        None => (reply.part, reply.partial, reply.body.clone()),
    };
    Version {
        index: part.map(|(index, _)| index),
        count: part
            .and_then(|(_, count)| count)
            .or(reply.part.and_then(|(_, count)| count)),
        partial,
        text,
        readable: reply.msgtype != "m.room.encrypted"
            && edit.is_none_or(|e| e.msgtype != "m.room.encrypted"),
    }
}

/// Parts of a marked answer missing or partial (0 for an unmarked one).
fn parts_missing(versions: &[Version]) -> usize {
    let marked: Vec<&Version> = versions.iter().filter(|v| v.index.is_some()).collect();
    if marked.is_empty() {
        return 0;
    }
    let finals: BTreeSet<u64> = marked
        .iter()
        .filter(|v| !v.partial)
        .filter_map(|v| v.index)
        .collect();
    match marked.iter().filter_map(|v| v.count).max() {
        Some(count) => (0..count).filter(|i| !finals.contains(i)).count(),
        // No part says how many there are (a stream never finished): at least one is missing.
        None => {
            let top = marked.iter().filter_map(|v| v.index).max().unwrap_or(0);
            1 + (0..=top).filter(|i| !finals.contains(i)).count()
        }
    }
}

/// The counts over everything sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages and commands sent (edits not counted).
    pub sent: usize,
    /// ... answered exactly once.
    pub answered_once: usize,
    /// ... answered more than once.
    pub answered_twice: usize,
    /// ... not answered.
    pub unanswered: usize,
    /// Parts missing or left partial, over all answers (edits' included).
    pub parts_missing: usize,
    /// Reply events sent twice (same part, or a second unmarked reply), edits' included.
    pub duplicate_events: usize,
    /// Edits sent.
    pub edits: usize,
    /// Edits answered twice: two replies, or a reply although the message's answer already
    /// shows the edited text.
    pub edits_answered_twice: usize,
    /// Edits neither answered nor shown in the message's (readable) answer.
    pub edits_lost: usize,
}

impl Tally {
    /// Counts the bot's (`bot`) answers in `history` (every room's messages) to `sent`.
    pub fn count(sent: &[Sent], history: &[Message], bot: &str) -> Tally {
        let mut tally = Tally::default();
        for item in sent {
            match item {
                Sent::Message { event_id } => tally.message(&answer_to(history, bot, event_id)),
                Sent::Edit { event_id, of, text } => tally.edit(
                    &answer_to(history, bot, event_id),
                    &answer_to(history, bot, of),
                    text,
                ),
            }
        }
        tally
    }

    fn message(&mut self, answer: &AnswerView) {
        self.sent += 1;
        match answer.answers {
            0 => self.unanswered += 1,
            1 => self.answered_once += 1,
            _ => self.answered_twice += 1,
        }
        self.parts_missing += answer.parts_missing;
        self.duplicate_events += answer.duplicates;
    }

    fn edit(&mut self, own: &AnswerView, original: &AnswerView, text: &str) {
        self.edits += 1;
        let shown = original.text.contains(text);
        match own.answers {
            0 if !shown && original.readable && original.answers > 0 => self.edits_lost += 1,
            1 if shown => self.edits_answered_twice += 1,
            0 | 1 => {}
            _ => self.edits_answered_twice += 1,
        }
        self.parts_missing += own.parts_missing;
        self.duplicate_events += own.duplicates;
    }

    /// Whether the promise held: everything answered once and whole, nothing sent twice, no
    /// edit lost or answered twice.
    pub fn holds(&self) -> bool {
        self.answered_once == self.sent
            && self.parts_missing == 0
            && self.duplicate_events == 0
            && self.edits_answered_twice == 0
            && self.edits_lost == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "@bot:x";

    fn message(id: &str, sender: &str) -> Message {
        Message {
            event_id: id.into(),
            sender: sender.into(),
            msgtype: "m.text".into(),
            body: String::new(),
            html: None,
            in_reply_to: None,
            thread: None,
            replaces: None,
            new_body: None,
            part: None,
            partial: false,
            usage: None,
            ts: 0,
            text_of: None,
            room: String::new(),
        }
    }

    fn reply(id: &str, to: &str, text: &str, part: Option<(u64, u64)>) -> Message {
        Message {
            in_reply_to: Some(to.into()),
            body: text.into(),
            part: part.map(|(i, c)| (i, Some(c))),
            ..message(id, BOT)
        }
    }

    fn sent(id: &str) -> Sent {
        Sent::Message {
            event_id: id.into(),
        }
    }

    #[test]
    fn once_twice_and_never() {
        let history = vec![
            message("$a", "@p:x"),
            reply("$ra", "$a", "echo a", Some((0, 1))),
            message("$b", "@p:x"),
            reply("$rb1", "$b", "echo b", Some((0, 1))),
            reply("$rb2", "$b", "echo b", Some((0, 1))),
            message("$c", "@p:x"),
            message("$d", "@p:x"),
            reply("$rd", "$d", "Sorry, I could not answer that", None),
        ];
        let tally = Tally::count(
            &[sent("$a"), sent("$b"), sent("$c"), sent("$d")],
            &history,
            BOT,
        );
        assert_eq!(
            tally,
            Tally {
                sent: 4,
                answered_once: 2,
                answered_twice: 1,
                unanswered: 1,
                duplicate_events: 1,
                ..Tally::default()
            }
        );
        assert!(!tally.holds());
    }

    #[test]
    fn parts_are_counted_missing_duplicated_or_partial() {
        let whole = [
            reply("$1", "$m", "one", Some((0, 3))),
            reply("$2", "$m", "two", Some((1, 3))),
            reply("$3", "$m", "three", Some((2, 3))),
        ];
        let view = answer_to(&whole, BOT, "$m");
        assert_eq!(
            (view.answers, view.parts_missing, view.duplicates),
            (1, 0, 0)
        );
        assert_eq!(view.text, "one\n\ntwo\n\nthree");

        let gap = [whole[0].clone(), whole[2].clone()];
        assert_eq!(answer_to(&gap, BOT, "$m").parts_missing, 1);

        let twice = [
            whole[0].clone(),
            whole[1].clone(),
            whole[1].clone(),
            whole[2].clone(),
        ];
        let view = answer_to(&twice, BOT, "$m");
        assert_eq!((view.answers, view.duplicates), (1, 1));

        let mut growing = reply("$1", "$m", "on", None);
        growing.part = Some((0, None));
        growing.partial = true;
        assert_eq!(answer_to(&[growing.clone()], BOT, "$m").parts_missing, 2);
        // The final edit makes it whole.
        let done = Message {
            replaces: Some("$1".into()),
            new_body: Some("one".into()),
            part: Some((0, Some(1))),
            ..message("$e", BOT)
        };
        let view = answer_to(&[growing, done], BOT, "$m");
        assert_eq!(
            (view.answers, view.parts_missing, view.text.as_str()),
            (1, 0, "one")
        );
    }

    #[test]
    fn an_edit_is_answered_in_the_message_or_on_its_own_never_both_nor_neither() {
        let edit = |id: &str| Sent::Edit {
            event_id: id.into(),
            of: "$m".into(),
            text: "m edited".into(),
        };
        let used = vec![reply("$r", "$m", "echo: m edited", Some((0, 1)))];
        let tally = Tally::count(&[sent("$m"), edit("$e")], &used, BOT);
        assert!(tally.holds(), "{tally:?}");

        let mut own = vec![reply("$r", "$m", "echo: m", Some((0, 1)))];
        own.push(reply(
            "$re",
            "$e",
            "edited answer: echo: m edited",
            Some((0, 1)),
        ));
        assert!(Tally::count(&[sent("$m"), edit("$e")], &own, BOT).holds());

        let lost = vec![reply("$r", "$m", "echo: m", Some((0, 1)))];
        assert_eq!(Tally::count(&[edit("$e")], &lost, BOT).edits_lost, 1);

        let mut both = used.clone();
        both.push(reply("$re", "$e", "echo: m edited", Some((0, 1))));
        assert_eq!(
            Tally::count(&[edit("$e")], &both, BOT).edits_answered_twice,
            1
        );
    }

    #[test]
    fn an_interrupted_answer_and_its_notice_are_one_answer() {
        let history = vec![
            reply(
                "$1",
                "$m",
                "half of it\n\n*(this answer was interrupted; the full answer follows)*",
                Some((0, 1)),
            ),
            reply("$2", "$m", "Sorry, I could not answer that just now.", None),
        ];
        let view = answer_to(&history, BOT, "$m");
        assert_eq!(
            (view.answers, view.parts_missing, view.duplicates),
            (1, 0, 0)
        );
        let mut twice = history.clone();
        twice.push(reply("$3", "$m", "Sorry, again.", None));
        assert_eq!(answer_to(&twice, BOT, "$m").answers, 2);
        // The notice marked as a one-part answer of its own, as the bot sends it.
        let marked = vec![
            history[0].clone(),
            reply(
                "$2",
                "$m",
                "Sorry, the answering service is busy.",
                Some((0, 1)),
            ),
        ];
        let view = answer_to(&marked, BOT, "$m");
        assert_eq!(
            (view.answers, view.parts_missing, view.duplicates),
            (1, 0, 0)
        );
    }

    #[test]
    fn replies_by_others_and_edits_of_replies_are_not_answers() {
        let mut by_person = reply("$x", "$m", "me too", None);
        by_person.sender = "@p:x".into();
        let edit_of_reply = Message {
            replaces: Some("$r".into()),
            new_body: Some("echo m".into()),
            in_reply_to: Some("$m".into()),
            ..message("$e", BOT)
        };
        let history = vec![by_person, reply("$r", "$m", "echo", None), edit_of_reply];
        let view = answer_to(&history, BOT, "$m");
        assert_eq!(
            (view.answers, view.duplicates, view.text.as_str()),
            (1, 0, "echo m")
        );
    }
}
