//! [`ChatManager`]: what commands do to a person's chats, on the cache.
//!
//! The adapter writes to the homeserver first and then calls these, so the cache always follows
//! the server. Ids come from [`ChatManager::reserve_id`] and are never reused.

use crate::ids::{ChatId, ChatIdError};
use crate::model::{Chat, ChatStatus, RoomKind, RoomRecord, UserRecord};
use crate::name::ChatName;
use crate::store::{Change, Store, StoreError};
use std::sync::Arc;

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The person has no chat with that id.
    #[error("no chat {0}")]
    NotFound(ChatId),
    /// Archiving a chat that is already archived.
    #[error("chat {0} is already archived")]
    AlreadyArchived(ChatId),
    /// Unarchiving a chat that is active.
    #[error("chat {0} is not archived")]
    NotArchived(ChatId),
    /// The id is held by a chat in another room.
    #[error("chat {id} already lives in room {room_id}")]
    IdTaken {
        /// The id.
        id: ChatId,
        /// The room that holds it.
        room_id: String,
    },
    /// No chat ids are left for this person.
    #[error("no chat ids left")]
    IdsExhausted,
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ChatIdError> for ChatError {
    fn from(_: ChatIdError) -> Self {
        ChatError::IdsExhausted
    }
}

/// Chat operations for all people, over a shared [`Store`].
#[derive(Clone)]
pub struct ChatManager {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for ChatManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatManager").finish_non_exhaustive()
    }
}

impl ChatManager {
    /// A manager over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        ChatManager { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The id the next new chat of `owner` would get: past both the stored counter and every
    /// existing chat, so a stale counter never hands out a used id.
    pub fn next_id(&self, owner: &str) -> Result<ChatId, ChatError> {
        let counter = self
            .store
            .user(owner)?
            .map_or(1, |user| user.next_chat_index.max(1));
        let past_existing = match self.store.chats(owner)?.iter().map(|c| c.id).max() {
            Some(highest) => highest.next()?.number(),
            None => 1,
        };
        Ok(ChatId::new(counter.max(past_existing))?)
    }

    /// Takes the next id for `owner` and raises the stored counter past it.
    pub fn reserve_id(&self, owner: &str) -> Result<ChatId, ChatError> {
        let id = self.next_id(owner)?;
        let mut user = self.user_or_new(owner)?;
        user.next_chat_index = id.next()?.number();
        self.store.apply(&[Change::PutUser(user)])?;
        Ok(id)
    }

    /// Records a chat that now exists in `room_id`: chat row, room row and counter in one
    /// transaction. Recording the same chat in the same room again is a no-op.
    pub fn create(
        &self,
        owner: &str,
        id: ChatId,
        name: &ChatName,
        room_id: &str,
    ) -> Result<Chat, ChatError> {
        if let Some(existing) = self.store.chat(owner, id)? {
            if existing.room_id == room_id {
                return Ok(existing);
            }
            return Err(ChatError::IdTaken {
                id,
                room_id: existing.room_id,
            });
        }
        let mut user = self.user_or_new(owner)?;
        user.next_chat_index = user.next_chat_index.max(id.next()?.number());
        let chat = Chat {
            owner: owner.to_owned(),
            id,
            name: name.as_str().to_owned(),
            status: ChatStatus::Active,
            room_id: room_id.to_owned(),
        };
        self.store.apply(&[
            Change::PutUser(user),
            Change::PutRoom(RoomRecord {
                room_id: room_id.to_owned(),
                owner: owner.to_owned(),
                kind: RoomKind::Chat,
                chat_id: Some(id),
            }),
            Change::PutChat(chat.clone()),
        ])?;
        Ok(chat)
    }

    /// One chat, or [`ChatError::NotFound`].
    pub fn get(&self, owner: &str, id: ChatId) -> Result<Chat, ChatError> {
        self.store.chat(owner, id)?.ok_or(ChatError::NotFound(id))
    }

    /// The chat held by `room_id`, if the cache knows one.
    pub fn by_room(&self, room_id: &str) -> Result<Option<Chat>, ChatError> {
        match self.store.room(room_id)? {
            Some(RoomRecord {
                owner,
                kind: RoomKind::Chat,
                chat_id: Some(id),
                ..
            }) => Ok(self.store.chat(&owner, id)?),
            _ => Ok(None),
        }
    }

    /// All chats of `owner`, active and archived, by id.
    pub fn list(&self, owner: &str) -> Result<Vec<Chat>, ChatError> {
        Ok(self.store.chats(owner)?)
    }

    /// Gives a chat a new name.
    pub fn rename(&self, owner: &str, id: ChatId, name: &ChatName) -> Result<Chat, ChatError> {
        self.update(owner, id, |chat| {
            chat.name = name.as_str().to_owned();
            Ok(())
        })
    }

    /// Marks an active chat archived.
    pub fn archive(&self, owner: &str, id: ChatId) -> Result<Chat, ChatError> {
        self.update(owner, id, |chat| match chat.status {
            ChatStatus::Archived => Err(ChatError::AlreadyArchived(id)),
            ChatStatus::Active => {
                chat.status = ChatStatus::Archived;
                Ok(())
            }
        })
    }

    /// Marks an archived chat active again.
    pub fn unarchive(&self, owner: &str, id: ChatId) -> Result<Chat, ChatError> {
        self.update(owner, id, |chat| match chat.status {
            ChatStatus::Active => Err(ChatError::NotArchived(id)),
            ChatStatus::Archived => {
                chat.status = ChatStatus::Active;
                Ok(())
            }
        })
    }

    fn update(
        &self,
        owner: &str,
        id: ChatId,
        change: impl FnOnce(&mut Chat) -> Result<(), ChatError>,
    ) -> Result<Chat, ChatError> {
        let mut chat = self.get(owner, id)?;
        change(&mut chat)?;
        self.store.apply(&[Change::PutChat(chat.clone())])?;
        Ok(chat)
    }

    fn user_or_new(&self, owner: &str) -> Result<UserRecord, ChatError> {
        Ok(self
            .store
            .user(owner)?
            .unwrap_or_else(|| UserRecord::new(owner)))
    }
}

#[cfg(test)]
mod tests;
