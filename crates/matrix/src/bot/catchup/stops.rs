//! The reactions that steer answers, in a room's history read back by catch-up: the messages
//! a 🛑 stopped (on the message itself, or on the bot's reply to it), and the 🔁 not yet acted
//! on (no part of the bot's names it as the reaction it was written again for). Pure.

use crate::bot::runtime::Incoming;
use crate::markers::PartMark;
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId};
use std::collections::{HashMap, HashSet};

/// The reaction that stops an answer.
pub(crate) const STOP: &str = "🛑";
/// The reaction that asks for an answer again.
pub(crate) const AGAIN: &str = "🔁";

/// A reaction's key as meant: without the emoji presentation selector some clients add.
pub(crate) fn meant(key: &str) -> &str {
    key.trim_end_matches('\u{fe0f}')
}

/// The event `json` replies to (`m.in_reply_to`, also in a thread).
pub(crate) fn replied_to(json: &serde_json::Value) -> Option<OwnedEventId> {
    let id = json["content"]["m.relates_to"]["m.in_reply_to"]["event_id"].as_str()?;
    id.try_into().ok()
}

/// What catch-up reads of reactions in one room's history: the owner's 🛑 and the messages the
/// bot's events reply to.
#[derive(Debug, Default)]
pub(crate) struct Stops {
    /// Events the owner put 🛑 on.
    on: HashSet<OwnedEventId>,
    /// The bot's events, by the message each replies to.
    reply_of: HashMap<OwnedEventId, OwnedEventId>,
    /// The owner's 🔁, oldest first once read: (reaction, the event it is on, who, when).
    again: Vec<(OwnedEventId, OwnedEventId, OwnedUserId, u64)>,
    /// The 🔁 reactions the bot's parts say they were written again for.
    again_done: HashSet<String>,
}

impl Stops {
    /// Notes one event of the room's history (`bot`'s, or the owner's).
    pub(crate) fn note(&mut self, json: &serde_json::Value, bot: &str, owner: &str) {
        let sender = json["sender"].as_str().unwrap_or_default();
        if sender == bot {
            let id = json["event_id"].as_str().and_then(|id| id.try_into().ok());
            if let (Some(id), Some(message)) = (id, replied_to(json)) {
                self.reply_of.insert(id, message);
            }
            if let Some(again) = PartMark::of_event(json, bot).and_then(|mark| mark.again) {
                self.again_done.insert(again);
            }
        } else if sender == owner && json["type"] == "m.reaction" {
            let relation = &json["content"]["m.relates_to"];
            let key = relation["key"].as_str().map(meant);
            let target = relation["event_id"]
                .as_str()
                .and_then(|id| id.try_into().ok());
            match (key, target) {
                (Some(STOP), Some(target)) => {
                    self.on.insert(target);
                }
                (Some(AGAIN), Some(target)) => {
                    let reaction = json["event_id"].as_str().and_then(|id| id.try_into().ok());
                    let who = sender.try_into().ok();
                    let at = json["origin_server_ts"].as_u64().unwrap_or(0);
                    if let (Some(reaction), Some(who)) = (reaction, who) {
                        self.again.push((reaction, target, who, at));
                    }
                }
                _ => {}
            }
        }
    }

    /// The 🔁 reactions not yet acted on, as noted.
    fn waiting_agains(
        &self,
    ) -> impl Iterator<Item = &(OwnedEventId, OwnedEventId, OwnedUserId, u64)> {
        self.again
            .iter()
            .filter(|(reaction, ..)| !self.again_done.contains(reaction.as_str()))
    }

    /// Whether a 🔁 noted is not yet acted on.
    pub(crate) fn again_waiting(&self) -> bool {
        self.waiting_agains().next().is_some()
    }

    /// The 🔁 reactions not yet acted on, with when each was sent.
    pub(crate) fn agains(&self) -> Vec<(u64, Incoming)> {
        self.waiting_agains()
            .map(|(reaction, answer, sender, at)| {
                let again = Incoming::Again {
                    reaction: reaction.clone(),
                    answer: answer.clone(),
                    sender: sender.clone(),
                };
                (*at, again)
            })
            .collect()
    }

    /// The messages stopped: a 🛑 on the message, or on a reply of the bot's to it.
    pub(crate) fn stopped(&self) -> HashSet<OwnedEventId> {
        self.on
            .iter()
            .map(|target| self.reply_of.get(target).unwrap_or(target).clone())
            .collect()
    }
}

/// The messages of `events` stopped by a 🛑 in `stops`.
pub(crate) fn stopped_in(stops: &Stops, events: &[Incoming]) -> Vec<OwnedEventId> {
    let stopped = stops.stopped();
    events
        .iter()
        .map(|event| event.event_id().to_owned())
        .filter(|id| stopped.contains(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stop_on_a_message_or_on_the_bots_reply_to_it_stops_that_message() {
        let mut stops = Stops::default();
        let reaction = |target: &str, key: &str, sender: &str| {
            json!({"type": "m.reaction", "sender": sender, "event_id": "$r",
                   "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}})
        };
        stops.note(&reaction("$m1", "🛑", "@anna:x"), "@bot:x", "@anna:x");
        stops.note(
            &reaction("$a2", "🛑\u{fe0f}", "@anna:x"),
            "@bot:x",
            "@anna:x",
        );
        stops.note(&reaction("$m3", "👍", "@anna:x"), "@bot:x", "@anna:x");
        stops.note(&reaction("$m4", "🛑", "@eve:x"), "@bot:x", "@anna:x");
        let answer = json!({"type": "m.room.message", "sender": "@bot:x", "event_id": "$a2",
            "content": {"body": "…", "m.relates_to": {"m.in_reply_to": {"event_id": "$m2"}}}});
        stops.note(&answer, "@bot:x", "@anna:x");
        let stopped = stops.stopped();
        let ids = |list: &[&str]| -> HashSet<OwnedEventId> {
            list.iter()
                .map(|id| (*id).try_into().expect("id"))
                .collect()
        };
        assert_eq!(stopped, ids(&["$m1", "$m2"]));
    }

    #[test]
    fn an_again_is_waiting_until_a_part_of_the_bots_names_it() {
        let mut stops = Stops::default();
        let again = |id: &str, sender: &str| {
            json!({"type": "m.reaction", "sender": sender, "event_id": id, "origin_server_ts": 7,
                   "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "🔁"}}})
        };
        // Newest first, as history is read.
        let edit = json!({"type": "m.room.message", "sender": "@bot:x", "event_id": "$e",
            "content": {"body": "* new", "m.new_content": {"body": "new"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$a",
                    "org.lambda.matrix.part": {"index": 0, "count": 1, "again": "$r1"}}}});
        stops.note(&edit, "@bot:x", "@anna:x");
        stops.note(&again("$r2", "@anna:x"), "@bot:x", "@anna:x");
        stops.note(&again("$r1", "@anna:x"), "@bot:x", "@anna:x");
        stops.note(&again("$r3", "@eve:x"), "@bot:x", "@anna:x");
        let waiting: Vec<String> = stops
            .agains()
            .iter()
            .map(|(_, incoming)| incoming.event_id().to_string())
            .collect();
        assert_eq!(waiting, ["$r2"]);
    }
}
