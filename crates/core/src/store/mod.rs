//! The storage trait for the cache and its error type. [`sqlite::SqliteStore`] implements it.

pub mod sqlite;

use crate::ids::ChatId;
use crate::model::{CacheDump, Chat, RoomRecord, UserRecord};
use std::path::PathBuf;

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("cache database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation on the cache failed (moving a bad file aside, setting permissions).
    #[error("cache file {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file was written by a newer lambda-matrix; opening it could lose data.
    #[error(
        "the cache at {path} has schema version {found}, newer than this binary's {supported}; \
         run a newer lambda-matrix or remove the file (it is rebuilt from the homeserver)"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest this binary knows.
        supported: u32,
    },
    /// A stored value that this binary cannot read (a constraint the schema could not express).
    #[error("cache row is invalid: {0}")]
    InvalidRow(String),
}

/// One row change. A list of them is applied as one transaction by [`Store::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace a person's row.
    PutUser(UserRecord),
    /// Insert or replace a room's row.
    PutRoom(RoomRecord),
    /// Insert or replace a chat's row.
    PutChat(Chat),
    /// Remove a person's row.
    DeleteUser(String),
    /// Remove a room's row.
    DeleteRoom(String),
    /// Remove a chat's row.
    DeleteChat {
        /// The chat's owner.
        owner: String,
        /// The chat.
        id: ChatId,
    },
}

/// The cache: typed rows for people, rooms and chats.
///
/// Implementations must apply each [`Store::apply`] call atomically: all changes or none.
pub trait Store: Send + Sync {
    /// A person's row.
    fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// A room's row.
    fn room(&self, room_id: &str) -> Result<Option<RoomRecord>, StoreError>;
    /// One chat of a person.
    fn chat(&self, owner: &str, id: ChatId) -> Result<Option<Chat>, StoreError>;
    /// All chats of a person, by id.
    fn chats(&self, owner: &str) -> Result<Vec<Chat>, StoreError>;
    /// All rooms of a person (Space, chat rooms, direct chats), by room id.
    fn rooms_of(&self, owner: &str) -> Result<Vec<RoomRecord>, StoreError>;
    /// Applies all changes in one transaction.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;
    /// Every row, sorted.
    fn dump(&self) -> Result<CacheDump, StoreError>;
}
