//! Reading the record of "handled" from a room's history: which of the person's messages the
//! bot answered completely, which it began to answer (some parts missing, or a part still
//! marked as growing), and which it never answered. Pure: fed the bot's events as JSON, newest
//! first (see `catchup`).
//!
//! An answer is complete when, for some count `n` written on one of its parts, parts `0..n`
//! all exist and are complete (not marked partial, or finished by a later edit). A reply
//! without a part mark (an older version's) is complete unless marked partial. The marks are
//! read from the relation, which stays readable without decrypting.

use crate::markers::{PartMark, Slot, Slots, PARTIAL_FIELD};
use matrix_sdk::ruma::OwnedEventId;
use serde_json::Value;
use std::collections::HashMap;

/// One reply of the bot's.
#[derive(Debug)]
struct Reply {
    event_id: String,
    message: String,
    index: Option<usize>,
    count: Option<usize>,
    partial: bool,
    at: u64,
    body: Option<String>,
    text_of: Option<String>,
}

/// The latest edit of one of the bot's replies.
#[derive(Debug)]
struct Edit {
    partial: bool,
    count: Option<usize>,
    body: Option<String>,
    text_of: Option<String>,
}

/// What the bot did about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Nothing.
    Unanswered,
    /// Answered completely; `at` is when its last part was sent.
    Answered {
        /// Timestamp of the newest part.
        at: u64,
        /// The event whose text the answer used (the message or an edit of it), when the
        /// answer says (older versions did not).
        text_of: Option<String>,
    },
    /// Begun: these parts exist, the answer is not complete.
    Unfinished(Slots),
}

/// The bot's replies and edits in a stretch of history.
#[derive(Debug)]
pub(crate) struct Answered {
    /// The bot's user id: only its events count, only its part marks are trusted.
    bot: String,
    replies: Vec<Reply>,
    edits: HashMap<String, Edit>,
}

impl Answered {
    /// An empty ledger of `bot`'s answers.
    pub fn new(bot: &str) -> Answered {
        Answered {
            bot: bot.to_owned(),
            replies: Vec::new(),
            edits: HashMap::new(),
        }
    }

    /// Takes one event of the history (`json`), newest first; only the bot's count.
    pub fn bot_event(&mut self, json: &Value) {
        if json["sender"] != self.bot.as_str() {
            return;
        }
        let content = &json["content"];
        let relates = &content["m.relates_to"];
        let mark = PartMark::of_event(json, &self.bot);
        let partial = mark.as_ref().is_some_and(|m| m.partial);
        let count = mark.as_ref().and_then(|m| m.count);
        let text_of = mark.as_ref().and_then(|m| m.text_of.clone());
        if relates["rel_type"] == "m.replace" {
            let Some(target) = relates["event_id"].as_str() else {
                return;
            };
            // Newest first: the first edit seen is the latest.
            self.edits.entry(target.to_owned()).or_insert_with(|| Edit {
                partial: partial || content["m.new_content"][PARTIAL_FIELD] == true,
                count,
                body: content["m.new_content"]["body"].as_str().map(str::to_owned),
                text_of,
            });
        } else if let Some(message) = relates["m.in_reply_to"]["event_id"].as_str() {
            self.replies.push(Reply {
                event_id: json["event_id"].as_str().unwrap_or_default().to_owned(),
                message: message.to_owned(),
                index: mark.as_ref().map(|m| m.index),
                count,
                partial: partial || content[PARTIAL_FIELD] == true,
                at: json["origin_server_ts"].as_u64().unwrap_or(0),
                body: content["body"].as_str().map(str::to_owned),
                text_of,
            });
        }
    }

    /// Whether the person's event `id` (sent at `at`; an edit of `original` if it is one) is
    /// handled: answered itself, or, for an edit, its original's answer used this edit's text or
    /// a later edit's (`sent_at` tells when an edit was sent). An answer that does not say whose
    /// text it used (older versions) counts for an edit when it came after it.
    pub fn handled(
        &self,
        id: &str,
        original: Option<&str>,
        at: u64,
        sent_at: impl Fn(&str) -> Option<u64>,
    ) -> bool {
        if matches!(self.state(id), State::Answered { .. }) {
            return true;
        }
        let Some(original) = original else {
            return false;
        };
        match self.state(original) {
            State::Answered {
                text_of: Some(used),
                ..
            } => used == id || (used != original && sent_at(&used).is_some_and(|t| t >= at)),
            State::Answered { at: answered, .. } => answered >= at,
            _ => false,
        }
    }

    /// Every part of the complete answer to `message` (`None`: not answered completely).
    pub fn complete_parts(&self, message: &str) -> Option<Slots> {
        if !matches!(self.state(message), State::Answered { .. }) {
            return None;
        }
        let mut slots = Slots::new();
        for reply in self.replies.iter().filter(|r| r.message == message) {
            let edit = self.edits.get(&reply.event_id);
            insert(
                &mut slots,
                reply.index.unwrap_or(0),
                reply,
                edit,
                true,
                true,
            );
        }
        Some(slots)
    }

    /// What the bot did about `message`.
    pub fn state(&self, message: &str) -> State {
        let mut slots = Slots::new();
        let mut counts = Vec::new();
        let mut newest = 0;
        let mut any = false;
        let mut text_of = None;
        for reply in self.replies.iter().filter(|r| r.message == message) {
            any = true;
            let edit = self.edits.get(&reply.event_id);
            let done = edit.map_or(!reply.partial, |e| !e.partial);
            let count = edit.and_then(|e| e.count).or(reply.count);
            let Some(index) = reply.index else {
                if done {
                    return State::Answered {
                        at: reply.at,
                        text_of: None,
                    };
                }
                insert(&mut slots, 0, reply, edit, done, false);
                continue;
            };
            counts.extend(count);
            newest = newest.max(reply.at);
            if count.is_some() {
                text_of = edit
                    .and_then(|e| e.text_of.clone())
                    .or_else(|| reply.text_of.clone())
                    .or(text_of);
            }
            insert(&mut slots, index, reply, edit, done, count.is_some());
        }
        if !any {
            return State::Unanswered;
        }
        let complete = counts
            .iter()
            .any(|n| *n > 0 && (0..*n).all(|i| slots.get(&i).is_some_and(|s| s.done)));
        if complete {
            State::Answered {
                at: newest,
                text_of,
            }
        } else {
            State::Unfinished(slots)
        }
    }
}

/// Whether `event` (its JSON) was removed: redacted, its content gone. A removed message is
/// never answered, nor counted as waiting for an answer.
pub(crate) fn removed(event: &Value) -> bool {
    event["unsigned"]["redacted_because"].is_object()
}

/// State events that make a room (whoever sent them: a person creates their direct chat) and
/// say nothing of a conversation.
const SET_UP: &[&str] = &[
    "m.room.create",
    "m.room.member",
    "m.room.power_levels",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.encryption",
    "m.room.server_acl",
];

/// Whether a room must be read back, judged from its latest events (`window`, oldest first,
/// as JSON; `limited`: older events exist that are not in it): a message from someone other
/// than `bot` there has no complete answer there, or the window shows no such message at all
/// while older events are hidden behind the bot's messages or anything someone else did
/// (reactions, redactions, stickers, renames, a topic: a person's message can be behind any
/// of them; answers are sent in order, so a message answered in the window means the older ones
/// were handled). A gap behind the room's set-up only — the bot's state events, [`SET_UP`]
/// events by anyone (a person creates their direct chat), people joining — needs no reading: the bot never writes ten state events in a chat room without a
/// message between them (without this rule a cold start read back every room that never had a
/// conversation).
pub(crate) fn needs_reading(window: &[Value], limited: bool, bot: &str) -> bool {
    if again_waiting(window, bot) {
        return true;
    }
    let mut answered = Answered::new(bot);
    let mut messages = Vec::new();
    for json in window.iter().rev() {
        let sender = json["sender"].as_str().unwrap_or_default();
        if sender == bot {
            answered.bot_event(json);
        } else if ((json["type"] == "m.room.message" && json["content"]["msgtype"] != "m.notice")
            || json["type"] == "m.room.encrypted")
            && !removed(json)
        {
            messages.push(json);
        }
    }
    if messages.is_empty() {
        let bot_spoke = |json: &&Value| {
            json["sender"] == bot
                && (json["type"] == "m.room.message" || json["type"] == "m.room.encrypted")
        };
        let someone_else_acted = |json: &&Value| {
            let set_up = json.get("state_key").is_some()
                && SET_UP.contains(&json["type"].as_str().unwrap_or_default());
            json["sender"] != bot && !set_up
        };
        return limited
            && window
                .iter()
                .any(|json| bot_spoke(&json) || someone_else_acted(&json));
    }
    let sent_at: HashMap<&str, u64> = messages
        .iter()
        .filter_map(|json| {
            let id = json["event_id"].as_str()?;
            Some((id, json["origin_server_ts"].as_u64().unwrap_or(0)))
        })
        .collect();
    messages.iter().any(|json| {
        let id = json["event_id"].as_str().unwrap_or_default();
        let relates = &json["content"]["m.relates_to"];
        let original = relates["event_id"]
            .as_str()
            .filter(|_| relates["rel_type"] == "m.replace");
        let at = json["origin_server_ts"].as_u64().unwrap_or(0);
        !answered.handled(id, original, at, |e| sent_at.get(e).copied())
    })
}

/// Whether `window` holds a 🔁 from someone other than `bot` that no part of the bot's there
/// names as acted on (reactions are not messages: without this a 🔁 sent while the bot was
/// away would wait until something else brought the room back).
fn again_waiting(window: &[Value], bot: &str) -> bool {
    let mut stops = super::stops::Stops::default();
    for json in window {
        // Whoever reacted: the owner is not known here.
        let sender = json["sender"].as_str().unwrap_or_default();
        stops.note(json, bot, sender);
    }
    stops.again_waiting()
}

/// Records `reply` as slot `index`, unless a complete one is there already.
fn insert(
    slots: &mut Slots,
    index: usize,
    reply: &Reply,
    edit: Option<&Edit>,
    done: bool,
    counted: bool,
) {
    let Ok(event_id) = OwnedEventId::try_from(reply.event_id.as_str()) else {
        return;
    };
    if slots.get(&index).is_some_and(|s| s.done) {
        return;
    }
    slots.insert(
        index,
        Slot {
            event_id,
            body: edit
                .and_then(|e| e.body.clone())
                .or_else(|| reply.body.clone()),
            done,
            counted,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::PART_MARK;
    use serde_json::json;

    const BOT: &str = "@bot:x";

    fn reply(id: &str, to: &str, at: u64, mark: Value) -> Value {
        json!({
            "event_id": id, "origin_server_ts": at, "type": "m.room.message", "sender": BOT,
            "content": {"body": format!("text of {id}"), "m.relates_to": {"m.in_reply_to": {"event_id": to}, PART_MARK: mark}}
        })
    }

    fn edit(of: &str, mark: Value) -> Value {
        json!({
            "event_id": format!("{of}-edit"), "type": "m.room.message", "sender": BOT,
            "content": {"body": "* new", "m.new_content": {"body": "new"}, "m.relates_to": {"rel_type": "m.replace", "event_id": of, PART_MARK: mark}}
        })
    }

    /// Feeds events given oldest first, as the walk would (newest first).
    fn ledger(events: &[Value]) -> Answered {
        let mut answered = Answered::new(BOT);
        for event in events.iter().rev() {
            answered.bot_event(event);
        }
        answered
    }

    #[test]
    fn all_parts_present_is_answered_and_a_missing_one_is_not() {
        let two_of_three = ledger(&[
            reply("$a", "$m", 1, json!({"index": 0, "count": 3})),
            reply("$b", "$m", 2, json!({"index": 1, "count": 3})),
        ]);
        let State::Unfinished(slots) = two_of_three.state("$m") else {
            panic!("unfinished expected");
        };
        assert_eq!(slots.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert!(slots.values().all(|s| s.done));
        let all = ledger(&[
            reply("$a", "$m", 1, json!({"index": 0, "count": 3})),
            reply("$b", "$m", 2, json!({"index": 1, "count": 3})),
            reply("$c", "$m", 3, json!({"index": 2, "count": 3})),
        ]);
        assert_eq!(
            all.state("$m"),
            State::Answered {
                at: 3,
                text_of: None
            }
        );
        assert_eq!(all.state("$other"), State::Unanswered);
    }

    #[test]
    fn a_stream_is_answered_only_once_its_last_part_is_final() {
        let growing = [
            reply("$a", "$m", 1, json!({"index": 0, "partial": true})),
            edit("$a", json!({"index": 0})),
            reply("$b", "$m", 2, json!({"index": 1, "partial": true})),
        ];
        assert!(matches!(ledger(&growing).state("$m"), State::Unfinished(_)));
        let mut finished = growing.to_vec();
        finished.push(edit("$b", json!({"index": 1, "count": 2})));
        assert_eq!(
            ledger(&finished).state("$m"),
            State::Answered {
                at: 2,
                text_of: None
            }
        );
        // A part finished without a count, and no count anywhere: not complete.
        let uncounted = [
            reply("$a", "$m", 1, json!({"index": 0, "partial": true})),
            edit("$a", json!({"index": 0})),
        ];
        let State::Unfinished(slots) = ledger(&uncounted).state("$m") else {
            panic!("unfinished expected");
        };
        assert_eq!(slots[&0].body.as_deref(), Some("new"), "the body shown now");
        assert!(slots[&0].done && !slots[&0].counted);
    }

    fn message(id: &str, at: u64) -> Value {
        json!({"event_id": id, "sender": "@anna:x", "origin_server_ts": at, "type": "m.room.message", "content": {"msgtype": "m.text", "body": "hi"}})
    }

    fn from_bot(mut event: Value) -> Value {
        event["sender"] = json!("@bot:x");
        event
    }

    #[test]
    fn a_message_after_the_bots_last_word_is_not_missed() {
        // m0 answered by a stream whose final edit lands after m1: the latest event is the
        // bot's, yet m1 needs an answer.
        let window = [
            message("$m0", 1),
            from_bot(reply("$a", "$m0", 2, json!({"index": 0, "partial": true}))),
            message("$m1", 3),
            from_bot(edit("$a", json!({"index": 0, "count": 1}))),
        ];
        assert!(needs_reading(&window, false, "@bot:x"));
        let answered = [
            message("$m0", 1),
            from_bot(reply("$a", "$m0", 2, json!({"index": 0, "count": 1}))),
        ];
        assert!(!needs_reading(&answered, true, "@bot:x"), "quiet: no read");
        let only_bot = [from_bot(edit("$a", json!({"index": 0})))];
        assert!(
            needs_reading(&only_bot, true, "@bot:x"),
            "hidden older events"
        );
        assert!(!needs_reading(&only_bot, false, "@bot:x"));
        let set_up: Vec<Value> = ["m.room.name", "m.room.encryption", "org.lambda.matrix.chat"]
            .iter()
            .map(|kind| json!({"type": kind, "sender": "@bot:x", "state_key": "", "content": {}}))
            .chain([json!({"type": "m.room.member", "sender": "@anna:x", "state_key": "@anna:x", "content": {"membership": "join"}})])
            .collect();
        assert!(
            !needs_reading(&set_up, true, "@bot:x"),
            "a room's set-up behind a gap hides no message"
        );
        let made_by_anna: Vec<Value> = ["m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.encryption"]
            .iter()
            .map(|kind| json!({"type": kind, "sender": "@anna:x", "state_key": "", "content": {}}))
            .chain([json!({"type": "m.room.member", "sender": "@anna:x", "state_key": "@bot:x", "content": {"membership": "invite"}})])
            .collect();
        assert!(
            !needs_reading(&made_by_anna, true, "@bot:x"),
            "a direct chat a person made hides no message behind its set-up"
        );
    }

    #[test]
    fn a_room_with_an_again_not_acted_on_is_read_back() {
        let again = json!({"type": "m.reaction", "sender": "@anna:x", "event_id": "$r",
            "origin_server_ts": 5,
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "🔁\u{fe0f}"}}});
        assert!(needs_reading(std::slice::from_ref(&again), false, BOT));
        let acted = edit("$a", json!({"index": 0, "count": 1, "again": "$r"}));
        assert!(!needs_reading(&[again.clone(), acted], false, BOT));
        let thumbs = json!({"type": "m.reaction", "sender": "@anna:x", "event_id": "$t",
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "👍"}}});
        assert!(!needs_reading(&[thumbs], false, BOT));
    }

    #[test]
    fn a_message_hidden_behind_what_a_person_did_since_is_read_back() {
        let by_anna = |kind: &str, content: Value| json!({"type": kind, "sender": "@anna:x", "event_id": "$x", "origin_server_ts": 5, "content": content});
        let reaction = by_anna(
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "👍"}}),
        );
        let redaction = by_anna("m.room.redaction", json!({"redacts": "$r"}));
        let sticker = by_anna("m.sticker", json!({"body": "cat", "url": "mxc://x/y"}));
        let mut rename = by_anna("m.room.name", json!({"name": "Plans"}));
        rename["state_key"] = json!("");
        let mut topic = by_anna("m.room.topic", json!({"topic": "work"}));
        topic["state_key"] = json!("");
        for event in [reaction, redaction, sticker, rename, topic] {
            let window = vec![event; 10];
            assert!(
                needs_reading(&window, true, "@bot:x"),
                "hidden behind {}",
                window[0]["type"]
            );
            assert!(
                !needs_reading(&window, false, "@bot:x"),
                "nothing hidden: the window is all there is"
            );
        }
    }

    #[test]
    fn an_edit_is_handled_only_if_the_answer_used_its_text() {
        let answer = |text_of: &str| {
            ledger(&[reply(
                "$a",
                "$m",
                9,
                json!({"index": 0, "count": 1, "text_of": text_of}),
            )])
        };
        let sent_at = |e: &str| match e {
            "$e1" => Some(5),
            "$e2" => Some(7),
            _ => None,
        };
        // The answer (at 9) came after the edit (at 5) but used the original text: the edit
        // still needs its answer.
        assert!(!answer("$m").handled("$e1", Some("$m"), 5, sent_at));
        assert!(answer("$e1").handled("$e1", Some("$m"), 5, sent_at));
        assert!(
            answer("$e2").handled("$e1", Some("$m"), 5, sent_at),
            "a later edit's text"
        );
        assert!(
            !answer("$e1").handled("$e2", Some("$m"), 7, sent_at),
            "an earlier edit's text"
        );
        // Answers of older versions say nothing: the time decides, as before.
        let old = ledger(&[reply("$a", "$m", 9, json!({"index": 0, "count": 1}))]);
        assert!(old.handled("$e1", Some("$m"), 5, sent_at));
        assert!(!old.handled("$e1", Some("$m"), 10, sent_at));
        assert!(!old.handled("$other", None, 1, sent_at));
    }

    #[test]
    fn replies_without_marks_are_read_as_before() {
        let old = json!({"event_id": "$r", "origin_server_ts": 5, "sender": BOT, "content": {"body": "x", "m.relates_to": {"m.in_reply_to": {"event_id": "$m"}}}});
        assert_eq!(
            ledger(&[old]).state("$m"),
            State::Answered {
                at: 5,
                text_of: None
            }
        );
        let old_partial = json!({"event_id": "$r", "origin_server_ts": 5, "sender": BOT, "content": {"body": "x", PARTIAL_FIELD: true, "m.relates_to": {"m.in_reply_to": {"event_id": "$m"}}}});
        assert!(matches!(
            ledger(&[old_partial]).state("$m"),
            State::Unfinished(_)
        ));
    }

    #[test]
    fn encrypted_parts_are_read_from_the_clear_relation() {
        let encrypted = |id: &str, mark: Value| {
            json!({"event_id": id, "origin_server_ts": 1, "type": "m.room.encrypted", "sender": BOT,
                   "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "…", "m.relates_to": {"m.in_reply_to": {"event_id": "$m"}, PART_MARK: mark}}})
        };
        let one = ledger(&[encrypted("$a", json!({"index": 0, "count": 2}))]);
        let State::Unfinished(slots) = one.state("$m") else {
            panic!("unfinished expected");
        };
        assert_eq!(slots[&0].body, None, "unknown text: it will be edited");
        let both = ledger(&[
            encrypted("$a", json!({"index": 0, "count": 2})),
            encrypted("$b", json!({"index": 1, "count": 2})),
        ]);
        assert!(matches!(both.state("$m"), State::Answered { .. }));
    }
}
