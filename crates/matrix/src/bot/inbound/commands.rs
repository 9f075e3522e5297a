//! What each command does. The homeserver is written first, then the cache; the returned text
//! is the outcome the person sees (done, or why not).

use crate::bot::runtime::now_ms;
use crate::bot::Bot;
use crate::command::Command;
use crate::markers::ChatMarker;
use anyhow::Context;
use lambda_matrix_core::{Chat, ChatError, ChatId, ChatName, ChatStatus, RoomKind, RoomRecord};
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use matrix_sdk::Room;

/// Why a command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// The person's chats say no (no such chat, already archived, ...): told as such.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// Anything else: logged, and the person gets "something went wrong".
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

/// Errors that can only mean "something went wrong" for the person.
macro_rules! failed_from {
    ($($error:ty),*) => {$(
        impl From<$error> for CommandError {
            fn from(error: $error) -> Self {
                CommandError::Failed(error.into())
            }
        }
    )*};
}

failed_from!(
    lambda_matrix_core::StoreError,
    lambda_matrix_core::ChatIdError,
    lambda_matrix_core::NameError,
    matrix_sdk::IdParseError
);

impl Bot {
    /// Runs `command` given by the owner of `record`'s room; returns the outcome text.
    pub(crate) async fn run_command(
        &self,
        command: Command,
        record: &RoomRecord,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
    ) -> String {
        let person = record.owner.as_str();
        let here = match (record.kind, record.chat_id) {
            (RoomKind::Chat, Some(id)) => Some(id),
            _ => None,
        };
        tracing::info!(room_id = %room.room_id(), person, ?command, "command");
        let mut result = self
            .execute(command.clone(), person, here, room, event)
            .await;
        let missing_here = match &result {
            Err(error) => matches!(
                error,
                CommandError::Chat(ChatError::NotFound(id)) if Some(*id) == here
            ),
            Ok(_) => false,
        };
        if missing_here {
            // This room's chat row is missing: repair it from the room's records, try again.
            tracing::info!(room_id = %room.room_id(), person, "the chat row of this room is missing; repairing it");
            result = match self.repair(room.room_id().as_str(), person).await {
                Ok(_) => self.execute(command, person, here, room, event).await,
                Err(error) => Err(CommandError::Failed(error)),
            };
        }
        result.unwrap_or_else(|error| match error {
            CommandError::Chat(ChatError::NotFound(id)) => self.texts().no_such_chat(id),
            CommandError::Chat(ChatError::AlreadyArchived(id)) => self.texts().already_archived(id),
            CommandError::Chat(ChatError::NotArchived(id)) => self.texts().not_archived(id),
            other => {
                tracing::error!(room_id = %room.room_id(), person, error = %other, "command failed");
                self.texts().command_failed()
            }
        })
    }

    /// What `command` does, by `person` in `room` (chat `here`, if a chat room).
    async fn execute(
        &self,
        command: Command,
        person: &str,
        here: Option<ChatId>,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
    ) -> Result<String, CommandError> {
        match command {
            Command::Help => Ok(self.texts().help()),
            Command::Chats => self
                .chats()
                .list(person)
                .map(|c| self.texts().chat_list(&c))
                .map_err(Into::into),
            Command::New(name) => self.new_chat(person, name, event.event_id.as_str()).await,
            Command::Rename { target, name } => match target.or(here) {
                Some(id) => self.rename(person, id, name).await,
                None => Ok(self.texts().needs_chat_id("!rename C1 <name>")),
            },
            Command::Archive(target) => match target.or(here) {
                Some(id) => self.set_archived(person, id, true).await,
                None => Ok(self.texts().needs_chat_id("!archive C1")),
            },
            Command::Unarchive(id) => self.set_archived(person, id, false).await,
            Command::Invite(target) => self.reinvite(person, target).await,
            Command::Delete { target, confirmed } => match target.or(here) {
                Some(id) => self.delete_chat(person, id, confirmed).await,
                None => Ok(self.texts().needs_chat_id("!delete C1")),
            },
            Command::ForgetMe { confirmed } => self.forget_person(person, confirmed).await,
            Command::Cancel => Ok(self.cancel_outcome(room.room_id(), &event.event_id)),
            Command::Usage => Ok(self.usage_report(person).await),
            Command::Model(_) | Command::Instructions(_) | Command::Settings => match here {
                Some(_) => self.chat_setting(command, room).await,
                None => Ok(self.texts().chat_room_only(command.word())),
            },
        }
    }

    async fn new_chat(
        &self,
        person: &str,
        name: Option<ChatName>,
        cause: &str,
    ) -> Result<String, CommandError> {
        let owner = OwnedUserId::try_from(person)?;
        let Some(space) = self.space_room(person)? else {
            return Ok(self.texts().no_space());
        };
        // A replayed command (catch-up after a crash between creating the room and replying)
        // finds the room it made by the marker's cause, instead of making a second one.
        for chat in self.chats().list(person)? {
            let Ok(room) = self.room(&chat.room_id) else {
                continue;
            };
            if self
                .listed_chat_marker(&room)
                .await?
                .is_some_and(|m| m.cause == cause)
            {
                tracing::info!(person, chat_id = %chat.id, cause, "command already done; replying again");
                return Ok(self.texts().created(&chat));
            }
        }
        let max_chats = self.settings().limits.max_chats_per_user;
        if self.chats().list(person)?.len() >= max_chats as usize {
            return Ok(self.texts().too_many_chats(max_chats));
        }
        if !self.take_new_chat_slot(person) {
            return Ok(self
                .texts()
                .slow_down(self.settings().limits.max_new_per_minute));
        }
        // The id: past the cache's counter and the Space marker's last issued id.
        let issued = self
            .space_marker(&space)
            .await?
            .map_or(0, |m| m.last_chat_index);
        let id = self
            .chats()
            .next_id(person)?
            .max(ChatId::new(issued.saturating_add(1))?);
        // Server first: raise last_chat_index before the room exists, so the id is never reused.
        self.raise_last_index(&space, person, id).await?;
        crate::crash_point!("after-index-before-room");
        self.chats().reserve_id(person)?;
        let name = match name {
            Some(name) => name,
            None => ChatName::parse(&self.texts().chat_name(id))?,
        };
        let chat = self
            .create_chat_room(&owner, &space, id, &name, cause)
            .await?;
        Ok(self.texts().created(&chat))
    }

    async fn rename(
        &self,
        person: &str,
        id: ChatId,
        name: ChatName,
    ) -> Result<String, CommandError> {
        let chat = self.chats().get(person, id)?;
        let room = self.room(&chat.room_id)?;
        room.set_name(name.as_str().to_owned())
            .await
            .context("cannot rename the room")?;
        let chat = self.chats().rename(person, id, &name)?;
        Ok(self.texts().renamed(&chat))
    }

    async fn set_archived(
        &self,
        person: &str,
        id: ChatId,
        archived: bool,
    ) -> Result<String, CommandError> {
        let chat = self.chats().get(person, id)?;
        match (chat.status, archived) {
            (ChatStatus::Archived, true) => return Ok(self.texts().already_archived(id)),
            (ChatStatus::Active, false) => return Ok(self.texts().not_archived(id)),
            _ => {}
        }
        let room = self.room(&chat.room_id)?;
        let space = self
            .space_room(person)?
            .context("the person's space is not known")?;
        let status = if archived {
            ChatStatus::Archived
        } else {
            ChatStatus::Active
        };
        let mut marker = self
            .listed_chat_marker(&room)
            .await?
            .unwrap_or_else(|| ChatMarker::new(person, id, ""));
        marker.status = status.as_str().to_owned();
        crate::records::write_chat_marker(&room, &marker).await?;
        let room_id: OwnedRoomId = room.room_id().to_owned();
        self.link_child(&space, &room_id, !archived).await?;
        let chat: Chat = if archived {
            self.chats().archive(person, id)?
        } else {
            self.chats().unarchive(person, id)?
        };
        Ok(if archived {
            self.texts().archived(&chat)
        } else {
            self.texts().unarchived(&chat)
        })
    }

    async fn reinvite(&self, person: &str, target: Option<ChatId>) -> Result<String, CommandError> {
        let owner = OwnedUserId::try_from(person)?;
        let (room, done) = match target {
            Some(id) => {
                let chat = self.chats().get(person, id)?;
                (
                    self.room(&chat.room_id)?,
                    self.texts().invited_to_chat(&chat),
                )
            }
            None => match self.space_room(person)? {
                Some(space) => (space, self.texts().invited_to_space()),
                None => return Ok(self.texts().no_space()),
            },
        };
        // The startup snapshot stores no one's membership but the bot's: `get_member` asks the
        // homeserver for the list the first time. An unreadable list means invite anyway: the
        // homeserver refuses an invite of a member, and the person is told.
        let joined = match room.get_member(&owner).await {
            Ok(member) => member.is_some_and(|m| *m.membership() == MembershipState::Join),
            Err(error) => {
                tracing::warn!(room_id = %room.room_id(), %error, "cannot read the members; inviting anyway");
                false
            }
        };
        if joined {
            return Ok(self.texts().already_member());
        }
        room.invite_user_by_id(&owner)
            .await
            .context("cannot invite")?;
        Ok(done)
    }

    /// Records a room-creating command if the person is under MATRIX_MAX_NEW_PER_MINUTE.
    fn take_new_chat_slot(&self, person: &str) -> bool {
        let max = self.settings().limits.max_new_per_minute;
        self.runtime()
            .limits()
            .new_chats
            .take(person, now_ms(), max)
    }
}
