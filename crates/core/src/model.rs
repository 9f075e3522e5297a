//! The rows of the local cache. Every one of them can be derived from the homeserver.

use crate::ids::ChatId;
use serde::Serialize;

/// Whether a chat is in use or put away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatStatus {
    /// Listed in the person's Space; messages are answered.
    Active,
    /// Out of the Space's child list, still readable; messages get a hint to unarchive.
    Archived,
}

impl ChatStatus {
    /// The stored and on-the-wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Active => "active",
            ChatStatus::Archived => "archived",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ChatStatus::Active),
            "archived" => Some(ChatStatus::Archived),
            _ => None,
        }
    }
}

/// One conversation of one person (table `chat`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chat {
    /// The person who owns it (an opaque user id).
    pub owner: String,
    /// Its id among the owner's chats.
    pub id: ChatId,
    /// Its label (the room name).
    pub name: String,
    /// Active or archived.
    pub status: ChatStatus,
    /// The room that holds it.
    pub room_id: String,
}

/// What the bot knows about one person (table `matrix_user`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// The person's user id.
    pub user_id: String,
    /// Their personal Space, once made.
    pub space_id: Option<String>,
    /// The direct chat where they talk to the bot.
    pub dm_room_id: Option<String>,
    /// The number the next new chat gets. Never lowered, so ids are never reused.
    pub next_chat_index: u32,
}

impl UserRecord {
    /// A person the bot has just met.
    pub fn new(user_id: impl Into<String>) -> Self {
        UserRecord {
            user_id: user_id.into(),
            space_id: None,
            dm_room_id: None,
            next_chat_index: 1,
        }
    }
}

/// The role a room plays for the bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// A person's Space.
    Space,
    /// A chat room (holds one chat).
    Chat,
    /// A direct chat with the bot.
    Dm,
}

impl RoomKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Space => "space",
            RoomKind::Chat => "chat",
            RoomKind::Dm => "dm",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "space" => Some(RoomKind::Space),
            "chat" => Some(RoomKind::Chat),
            "dm" => Some(RoomKind::Dm),
            _ => None,
        }
    }
}

/// What a room is to the bot (table `matrix_room`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoomRecord {
    /// The room id.
    pub room_id: String,
    /// The person it belongs to.
    pub owner: String,
    /// Space, chat room or direct chat.
    pub kind: RoomKind,
    /// For a chat room, the chat it holds.
    pub chat_id: Option<ChatId>,
}

/// The whole cache, sorted, for comparisons and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheDump {
    /// `matrix_user` rows by user id.
    pub users: Vec<UserRecord>,
    /// `matrix_room` rows by room id.
    pub rooms: Vec<RoomRecord>,
    /// `chat` rows by owner and chat id.
    pub chats: Vec<Chat>,
}
