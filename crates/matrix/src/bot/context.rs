//! The conversation so far, for platforms that want context: read from the chat room's own
//! history on the homeserver (never a local copy), so a restart or a lost cache changes nothing
//! about what the platform sees. Commands, the bot's notices and edits are not context; an
//! edited message counts in its latest form.

use super::history::{walk_back, Walk};
use super::Bot;
use crate::command;
use lambda_matrix_platform::{Role, Turn};
use matrix_sdk::ruma::EventId;
use matrix_sdk::Room;
use std::collections::HashMap;

/// Most history pages read for context.
const MAX_PAGES: usize = 5;

/// The content field that marks a streamed answer as unfinished (see `stream`).
pub(super) const PARTIAL_FIELD: &str = "org.lambda.matrix.partial";

impl Bot {
    /// Up to `limit` turns before `before` in `room`, oldest first: the owner's messages and the
    /// bot's answers.
    pub(super) async fn context(
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
            if content["msgtype"] != "m.text" && content["msgtype"] != "m.emote" {
                return Walk::On; // notices (the bot's own words), files, …
            }
            let id = json["event_id"].as_str().unwrap_or_default();
            let Some(body) = latest_edit
                .get(id)
                .cloned()
                .or_else(|| content["body"].as_str().map(str::to_owned))
            else {
                return Walk::On;
            };
            if role == Role::User && command::parse(&body).is_some() {
                return Walk::On;
            }
            let text = strip_marks(&body, self);
            if text.trim().is_empty() {
                return Walk::On;
            }
            turns.push(Turn {
                role,
                text,
                attachments: Vec::new(),
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
