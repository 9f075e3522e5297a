//! `!model`, `!instructions` and `!settings`: one chat's own settings, kept in the chat room's
//! settings record on the homeserver (no copy in the cache) and read for every answer.

use super::commands::CommandError;
use crate::bot::Bot;
use crate::command::{Command, Instructions};
use crate::markers::ChatSettings;
use matrix_sdk::Room;

impl Bot {
    /// Runs a chat settings command in the chat room `room`.
    pub(super) async fn chat_setting(
        &self,
        command: Command,
        room: &Room,
    ) -> Result<String, CommandError> {
        let current = self
            .chat_settings()
            .current(room, self.bot_id())
            .await
            .map_err(|error| anyhow::anyhow!("cannot read the chat's settings: {error}"))?;
        match command {
            Command::Model(None) => self.list_models(&current).await,
            Command::Model(Some(name)) => self.choose_model(room, current, name).await,
            Command::Instructions(what) => self.instruct(room, current, what).await,
            _ => Ok(self.texts().chat_settings(
                self.model_of(&current),
                current.model.is_some(),
                current.instructions.as_deref(),
            )),
        }
    }

    /// The model that answers a chat with `settings`.
    fn model_of<'a>(&'a self, settings: &'a ChatSettings) -> &'a str {
        settings
            .model
            .as_deref()
            .unwrap_or_else(|| self.platform().model())
    }

    /// The models the platform offers now; `Err` with the person's text when it cannot say.
    async fn offered_models(&self) -> Result<Vec<String>, String> {
        self.platform().models().await.map_err(|error| {
            tracing::warn!(%error, "cannot list the platform's models");
            self.texts().models_unavailable()
        })
    }

    async fn list_models(&self, current: &ChatSettings) -> Result<String, CommandError> {
        Ok(match self.offered_models().await {
            Ok(models) => self.texts().model_list(&models, self.model_of(current)),
            Err(text) => text,
        })
    }

    async fn choose_model(
        &self,
        room: &Room,
        current: ChatSettings,
        name: String,
    ) -> Result<String, CommandError> {
        let models = match self.offered_models().await {
            Ok(models) => models,
            Err(text) => return Ok(text),
        };
        if !models.contains(&name) {
            return Ok(self.texts().model_unknown(&name, &models));
        }
        let settings = ChatSettings {
            model: Some(name.clone()),
            ..current
        };
        self.chat_settings().write(room, &settings).await?;
        tracing::info!(room_id = %room.room_id(), model = name, "chat model chosen");
        Ok(self.texts().model_set(&name))
    }

    async fn instruct(
        &self,
        room: &Room,
        current: ChatSettings,
        what: Instructions,
    ) -> Result<String, CommandError> {
        let instructions = match what {
            Instructions::Show => {
                return Ok(match &current.instructions {
                    Some(text) => self.texts().instructions_shown(text),
                    None => self.texts().no_instructions(),
                })
            }
            Instructions::Clear => None,
            Instructions::Set(text) => {
                let chars = text.chars().count();
                let max = self.settings().limits.max_instructions_chars;
                if chars > max {
                    return Ok(self.texts().instructions_too_long(chars, max));
                }
                Some(text)
            }
        };
        let outcome = match &instructions {
            Some(text) => self.texts().instructions_set(text.chars().count()),
            None => self.texts().instructions_cleared(),
        };
        let settings = ChatSettings {
            instructions,
            ..current
        };
        self.chat_settings().write(room, &settings).await?;
        tracing::info!(room_id = %room.room_id(), "chat instructions changed");
        Ok(outcome)
    }
}
