//! What reconcile looks at: a snapshot of the server (the bot's joined rooms and their state,
//! read from the SDK store after the initial sync, no requests) and of the cache.

use crate::markers::{ChatMarker, DmRecord, SpaceMarker};
use serde::Serialize;

pub use crate::records::Read;

/// One joined room as the server describes it. Reconcile fills in only the records the planner
/// needs (`plan::next_read`): a record it did not need is left `None` or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerRoom {
    /// Room id.
    pub room_id: String,
    /// `m.room.create` type is `m.space`.
    pub is_space: bool,
    /// `m.room.name`, if any.
    pub name: Option<String>,
    /// `org.lambda.matrix.space`.
    pub space_marker: Option<Read<SpaceMarker>>,
    /// `org.lambda.matrix.chat`.
    pub chat_marker: Option<Read<ChatMarker>>,
    /// `org.lambda.matrix.dm` room account data.
    pub dm_record: Option<Read<DmRecord>>,
    /// State keys of `m.space.child` events sent by the bot with non-empty content (read only
    /// in a Space).
    pub children: Vec<String>,
    /// Joined and invited members other than the bot (read only in a room no record claims).
    pub members: Vec<String>,
    /// In the bot's leaving record (`!delete`, `!forget-me` not finished).
    pub leaving: bool,
    /// The room's records could not be read (why): the planner skips it and keeps its rows.
    pub unreadable: Option<String>,
}

/// A room that reconcile could not place, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The room.
    pub room_id: String,
    /// Why it was skipped.
    pub reason: String,
}
