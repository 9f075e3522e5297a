//! The chat core of lambda-matrix: people, their chats and chat ids, and the local cache.
//!
//! Nothing here knows about Matrix. Room ids and user ids are opaque strings to this crate.
//!
//! - [`ids`]: chat ids `C1`, `C2`, ... (per person, never reused).
//! - [`model`]: the rows the cache holds.
//! - [`name`]: validation of chat names people type.
//! - [`store`]: the [`Store`] trait and its SQLite implementation with versioned migrations.
//! - [`chats`]: [`ChatManager`], the operations commands perform on chats.

pub mod chats;
pub mod ids;
pub mod model;
pub mod name;
pub mod store;

pub use chats::{ChatError, ChatManager};
pub use ids::{ChatId, ChatIdError};
pub use model::{CacheDump, Chat, ChatStatus, RoomKind, RoomRecord, UserRecord};
pub use name::{ChatName, NameError, MAX_NAME_CHARS};
pub use store::{sqlite::SqliteStore, Change, Store, StoreError};
