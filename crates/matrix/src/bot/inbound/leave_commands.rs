//! `!delete` and `!forget-me`: what the person is asked and told. The leaving itself, in its
//! crash-safe order, is the lifecycle's ([`crate::bot::lifecycle`]).

use super::commands::CommandError;
use crate::bot::Bot;
use crate::records::erase_dm_record;
use anyhow::Context;
use lambda_matrix_core::{Chat, ChatId};
use matrix_sdk::ruma::OwnedRoomId;

impl Bot {
    /// `!delete`: asks, or (confirmed) deletes chat `id` of `person`. Returns the text to reply
    /// with; the bot leaves after replying ([`Bot::finish_leaving`]).
    pub(crate) async fn delete_chat(
        &self,
        person: &str,
        id: ChatId,
        confirmed: bool,
    ) -> Result<String, CommandError> {
        let chat = self.chats().get(person, id)?;
        if !confirmed {
            return Ok(self.texts().delete_ask(&chat));
        }
        let space = self.space_room(person)?;
        if let Some(space) = &space {
            self.count_as_issued(space, person, id).await?;
        }
        self.record_leaving(std::slice::from_ref(&chat.room_id))
            .await?;
        if let Some(space) = &space {
            let room_id = OwnedRoomId::try_from(chat.room_id.as_str())?;
            self.link_child(space, &room_id, false).await?;
        }
        tracing::info!(person, chat_id = %id, room_id = %chat.room_id, "chat deleted; leaving its room");
        Ok(self.texts().deleted(&chat))
    }

    /// `!forget-me`: asks, or (confirmed) erases what the bot and the platform hold about
    /// `person`: every room of theirs (each direct chat included) is recorded as leaving and
    /// each direct chat's record is erased. The bot leaves after replying
    /// ([`Bot::finish_leaving`]).
    pub(crate) async fn forget_person(
        &self,
        person: &str,
        confirmed: bool,
    ) -> Result<String, CommandError> {
        let chats: Vec<Chat> = self.chats().list(person)?;
        if !confirmed {
            return Ok(self.texts().forget_ask(chats.len()));
        }
        let rooms = self.rooms_of(person).await?;
        self.platform()
            .forget_person(person)
            .await
            .context("the platform could not erase the person's data")?;
        self.record_leaving(&rooms.all()).await?;
        for dm in &rooms.dms {
            let Ok(dm) = self.room(dm) else { continue };
            if let Err(error) = erase_dm_record(&dm).await {
                // Leaving tries again first (and does not leave until it is erased).
                tracing::warn!(room_id = %dm.room_id(), error = format!("{error:#}"), "cannot erase a direct chat record yet");
            }
        }
        tracing::info!(
            person,
            chats = rooms.chats.len(),
            direct_chats = rooms.dms.len(),
            "forgetting a person; leaving their rooms"
        );
        Ok(self.texts().forgotten())
    }
}
