//! The conversation so far, for platforms that want context: read from the chat room's own
//! history on the homeserver (never a local copy), so a restart or a lost cache changes nothing
//! about what the platform sees. Commands, the bot's notices and edits are not context; an
//! edited message counts in its latest form.

use super::fallback;
use crate::bot::catchup::{walk_back, Walk};
use crate::bot::Bot;
use crate::command;
use lambda_matrix_platform::{AttachmentKind, AttachmentNote, Role, Turn};
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::EventId;
use matrix_sdk::Room;
use std::collections::HashMap;

/// Most history pages read for context.
const MAX_PAGES: usize = 5;

impl Bot {
    /// The text of the message `event` replies to (read from the room by its id, decrypted,
    /// its own reply quote removed), if it replies to a text message the bot can read.
    pub(crate) async fn replied_to(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
    ) -> Option<String> {
        let target = match &event.content.relates_to {
            Some(Relation::Reply(reply)) => reply.in_reply_to.event_id.clone(),
            Some(Relation::Thread(thread)) if !thread.is_falling_back => {
                thread.in_reply_to.as_ref()?.event_id.clone()
            }
            _ => return None,
        };
        let config = matrix_sdk::config::RequestConfig::short_retry();
        let read = match room.load_or_fetch_event(&target, Some(config)).await {
            Ok(read) => read,
            Err(error) => {
                tracing::info!(room_id = %room.room_id(), event_id = %target, %error, "cannot read the message replied to; answering without it");
                return None;
            }
        };
        let json: serde_json::Value = read.raw().deserialize_as().ok()?;
        if json["type"] != "m.room.message" {
            return None;
        }
        fallback::body(&json["content"])
            .filter(|body| !body.is_empty())
            .map(str::to_owned)
    }

    /// Up to `limit` turns before `before` in `room`, oldest first: the owner's messages and the
    /// bot's answers.
    pub(crate) async fn context(
        &self,
        room: &Room,
        before: &EventId,
        owner: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<Turn>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut turns = Vec::new(); // newest first
        let mut latest_edit: HashMap<String, String> = HashMap::new();
        let mut reached = false;
        walk_back(room, MAX_PAGES, |json| {
            if !reached {
                reached = json["event_id"] == before.as_str();
                return Walk::On;
            }
            if json["type"] != "m.room.message" {
                return Walk::On;
            }
            let content = &json["content"];
            let sender = json["sender"].as_str().unwrap_or_default();
            let role = if sender == owner {
                Role::User
            } else if sender == self.bot_id() {
                Role::Assistant
            } else {
                return Walk::On;
            };
            let relates = &content["m.relates_to"];
            if relates["rel_type"] == "m.replace" {
                // Newest first: the first edit seen is the latest.
                if let (Some(target), Some(body)) = (
                    relates["event_id"].as_str(),
                    content["m.new_content"]["body"].as_str(),
                ) {
                    latest_edit
                        .entry(target.to_owned())
                        .or_insert_with(|| body.to_owned());
                }
                return Walk::On;
            }
            let note = match role {
                Role::User => attachment_note(content),
                Role::Assistant => None,
            };
            let is_text = content["msgtype"] == "m.text" || content["msgtype"] == "m.emote";
            if !is_text && note.is_none() {
                return Walk::On; // notices (the bot's own words), locations, …
            }
            let id = json["event_id"].as_str().unwrap_or_default();
            let Some(body) = latest_edit.get(id).cloned().or_else(|| match &note {
                Some(_) => Some(caption(content)),
                None => super::fallback::body(content).map(str::to_owned),
            }) else {
                return Walk::On;
            };
            if note.is_none() && role == Role::User && command::parse(&body).is_some() {
                return Walk::On;
            }
            let text = strip_marks(&body, self);
            if text.trim().is_empty() && note.is_none() {
                return Walk::On;
            }
            turns.push(Turn {
                role,
                text,
                attachments: note.into_iter().collect(),
            });
            if turns.len() >= limit {
                Walk::Stop
            } else {
                Walk::On
            }
        })
        .await?;
        turns.reverse();
        Ok(turns)
    }
}

/// What an earlier file message was, from its content (never its bytes): by its `msgtype`.
fn attachment_note(content: &serde_json::Value) -> Option<AttachmentNote> {
    let kind = match content["msgtype"].as_str()? {
        "m.image" => AttachmentKind::Image,
        "m.audio" if content.get("org.matrix.msc3245.voice").is_some() => AttachmentKind::Voice,
        "m.audio" => AttachmentKind::Audio,
        "m.file" | "m.video" => AttachmentKind::File,
        _ => return None,
    };
    let body = content["body"].as_str().unwrap_or_default();
    Some(AttachmentNote {
        kind,
        mime: content["info"]["mimetype"].as_str().map(str::to_owned),
        name: content["filename"].as_str().unwrap_or(body).to_owned(),
        size: content["info"]["size"].as_u64(),
    })
}

/// A file message's caption: its body when a different file name is given, else none.
fn caption(content: &serde_json::Value) -> String {
    match (content["body"].as_str(), content["filename"].as_str()) {
        (Some(body), Some(name)) if body != name => body.to_owned(),
        _ => String::new(),
    }
}

/// An answer without the bot's progress marks.
fn strip_marks(body: &str, bot: &Bot) -> String {
    let mut text = body.to_owned();
    for mark in [
        bot.texts().answer_in_progress(),
        bot.texts().answer_interrupted(),
        bot.texts().edited_answer_heading(),
    ] {
        let plain = mark.trim_matches('*');
        text = text.replace(&mark, "").replace(plain, "");
    }
    text.trim().to_owned()
}
