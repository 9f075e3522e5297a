//! The 🛑 reactions in a room's history, read back by catch-up: the messages they stopped
//! (on the message itself, or on the bot's reply to it). Pure.

use crate::bot::runtime::Incoming;
use matrix_sdk::ruma::OwnedEventId;
use std::collections::{HashMap, HashSet};

/// The reaction that stops an answer.
pub(crate) const STOP: &str = "🛑";

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
        } else if sender == owner && json["type"] == "m.reaction" {
            let relation = &json["content"]["m.relates_to"];
            let key = relation["key"].as_str().map(meant);
            let target = relation["event_id"]
                .as_str()
                .and_then(|id| id.try_into().ok());
            if let (Some(STOP), Some(target)) = (key, target) {
                self.on.insert(target);
            }
        }
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
}
