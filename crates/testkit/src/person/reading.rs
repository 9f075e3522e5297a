//! What a person reads: a room's messages as their client shows them (decrypted where it can),
//! the bot's replies and answers to a message, and a question asked and answered.

use super::Person;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::{OwnedEventId, UInt};

/// A message as the person's client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Event id.
    pub event_id: String,
    /// Sender.
    pub sender: String,
    /// `m.text`, `m.notice`, ... (`m.room.encrypted` if it could not be decrypted).
    pub msgtype: String,
    /// Plain body (for an event that could not be decrypted: its megolm session and device).
    pub body: String,
    /// HTML body, if any.
    pub html: Option<String>,
    /// The event it replies to, if any.
    pub in_reply_to: Option<String>,
    /// The thread root, if it is in a thread.
    pub thread: Option<String>,
    /// The event it edits (`m.replace`), if it is an edit.
    pub replaces: Option<String>,
    /// An edit's new body (`m.new_content`).
    pub new_body: Option<String>,
    /// The bot's part mark (`m.relates_to."org.lambda.matrix.part"`), if any: index, count.
    pub part: Option<(u64, Option<u64>)>,
    /// The part mark says the part is still growing.
    pub partial: bool,
    /// The usage the part mark records (an answer's last part): `[{model, prompt, completion}]`.
    pub usage: Option<serde_json::Value>,
    /// When the homeserver received it (`origin_server_ts`, milliseconds since 1970).
    pub ts: u64,
    /// The event whose text the bot's reply answered, as its part mark says (`text_of`).
    pub text_of: Option<String>,
    /// The room it is in (empty where the reader did not say).
    pub room: String,
}

impl Person {
    /// The latest messages of a room (newest last), decrypted where the person can.
    pub async fn messages(&self, room_id: &str) -> anyhow::Result<Vec<Message>> {
        self.history(room_id, 1).await
    }

    /// How many replies to `event_id` the latest messages of `room_id` hold now (no waiting).
    pub async fn reply_count(
        &self,
        room_id: &str,
        event_id: &OwnedEventId,
    ) -> anyhow::Result<usize> {
        Ok(self
            .messages(room_id)
            .await?
            .iter()
            .filter(|m| m.in_reply_to.as_deref() == Some(event_id.as_str()))
            .count())
    }

    /// A room's whole history of messages (newest last), up to `pages` pages of 100.
    pub async fn history(&self, room_id: &str, pages: usize) -> anyhow::Result<Vec<Message>> {
        let room = self.room(room_id)?;
        let mut out = Vec::new();
        let mut from = None;
        for _ in 0..pages {
            let mut options = MessagesOptions::backward();
            options.limit = UInt::from(100u32);
            options.from = from.take();
            let batch = room.messages(options).await?;
            out.extend(Self::parse(&batch.chunk).into_iter().map(|mut m| {
                m.room = room_id.to_owned();
                m
            }));
            match batch.end {
                Some(end) if !batch.chunk.is_empty() => from = Some(end),
                _ => break,
            }
        }
        out.reverse();
        Ok(out)
    }

    fn parse(chunk: &[matrix_sdk::deserialized_responses::TimelineEvent]) -> Vec<Message> {
        chunk
            .iter()
            .filter_map(|event| {
                let json: serde_json::Value = event.raw().deserialize_as().ok()?;
                let kind = json["type"].as_str()?;
                if kind != "m.room.message" && kind != "m.room.encrypted" {
                    return None;
                }
                let content = &json["content"];
                Some(Message {
                    event_id: json["event_id"].as_str()?.to_owned(),
                    sender: json["sender"].as_str()?.to_owned(),
                    msgtype: content["msgtype"].as_str().unwrap_or(kind).to_owned(),
                    // What an unreadable event was encrypted with, for a failure's report.
                    body: match content["body"].as_str() {
                        Some(body) => body.to_owned(),
                        None if kind == "m.room.encrypted" => format!(
                            "(cannot decrypt: session {} of device {})",
                            content["session_id"].as_str().unwrap_or("?"),
                            content["device_id"].as_str().unwrap_or("?")
                        ),
                        None => String::new(),
                    },
                    html: content["formatted_body"].as_str().map(str::to_owned),
                    in_reply_to: content["m.relates_to"]["m.in_reply_to"]["event_id"]
                        .as_str()
                        .map(str::to_owned),
                    thread: (content["m.relates_to"]["rel_type"] == "m.thread")
                        .then(|| {
                            content["m.relates_to"]["event_id"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .flatten(),
                    replaces: (content["m.relates_to"]["rel_type"] == "m.replace")
                        .then(|| {
                            content["m.relates_to"]["event_id"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .flatten(),
                    new_body: content["m.new_content"]["body"].as_str().map(str::to_owned),
                    part: content["m.relates_to"]["org.lambda.matrix.part"]["index"]
                        .as_u64()
                        .map(|index| {
                            let count = &content["m.relates_to"]["org.lambda.matrix.part"]["count"];
                            (index, count.as_u64())
                        }),
                    partial: content["m.relates_to"]["org.lambda.matrix.part"]["partial"] == true,
                    usage: Some(content["m.relates_to"]["org.lambda.matrix.part"]["usage"].clone())
                        .filter(|usage| !usage.is_null()),
                    ts: json["origin_server_ts"].as_u64().unwrap_or_default(),
                    text_of: content["m.relates_to"]["org.lambda.matrix.part"]["text_of"]
                        .as_str()
                        .map(str::to_owned),
                    room: String::new(), // set by the caller, who knows the room
                })
            })
            .collect()
    }

    /// The replies in `room_id` to `event_id` (waits for at least one, and until every reply
    /// found can be decrypted: room keys may arrive a sync after the message).
    pub async fn replies_to(
        &self,
        room_id: &str,
        event_id: &OwnedEventId,
    ) -> anyhow::Result<Vec<Message>> {
        self.until(&format!("a reply to {event_id}"), || async {
            let replies: Vec<Message> = self
                .messages(room_id)
                .await
                .ok()?
                .into_iter()
                .filter(|m| m.in_reply_to.as_deref() == Some(event_id.as_str()))
                .collect();
            let readable = replies.iter().all(|m| m.msgtype != "m.room.encrypted");
            (!replies.is_empty() && readable).then_some(replies)
        })
        .await
    }

    /// The bot's complete answer to `event_id` in `room_id`: its parts in order, once every part
    /// from 0 to the count written on them is there and none is still growing (a reply without
    /// part marks is a whole answer by itself). Waits until then.
    pub async fn answer(
        &self,
        room_id: &str,
        event_id: &OwnedEventId,
    ) -> anyhow::Result<Vec<Message>> {
        self.until(&format!("a complete answer to {event_id}"), || async {
            let replies: Vec<Message> = self
                .history(room_id, 3)
                .await
                .ok()?
                .into_iter()
                .filter(|m| m.in_reply_to.as_deref() == Some(event_id.as_str()))
                .collect();
            if replies
                .iter()
                .any(|m| m.msgtype == "m.room.encrypted" || m.partial)
            {
                return None;
            }
            if let Some(whole) = replies.iter().find(|m| m.part.is_none()) {
                return Some(vec![whole.clone()]);
            }
            let count = replies.iter().find_map(|m| m.part.and_then(|(_, c)| c))? as usize;
            let mut parts: Vec<Message> = replies
                .into_iter()
                .filter(|m| m.part.is_some_and(|(i, _)| (i as usize) < count))
                .collect();
            parts.sort_by_key(|m| m.part.map(|(i, _)| i));
            parts.dedup_by_key(|m| m.part.map(|(i, _)| i));
            (parts.len() == count).then_some(parts)
        })
        .await
    }

    /// Sends `text` and returns the body of the first reply to it.
    pub async fn ask(&self, room_id: &str, text: &str) -> anyhow::Result<String> {
        let event_id = self.send(room_id, text).await?;
        let replies = self.replies_to(room_id, &event_id).await?;
        Ok(replies[0].body.clone())
    }
}
