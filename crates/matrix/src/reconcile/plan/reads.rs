//! Which of a room's records the planner needs, so reconcile reads no more of the store than
//! that: the records that can say what a room is, in the order [`kind_of`] weighs them, until
//! one does; a Space's links; and the members only of a room no record claims (adoption is the
//! one rule that looks at them). Reading every record of every room was most of a warm start at
//! 5,000 rooms; reading only these made reconcile there 0.3 s instead of 0.9 s
//! (docs/BENCHMARKS.md, "Reconcile reads only what the planner weighs").

use super::{kind_of, Kind, ServerRoom};

/// A record reconcile reads from the SDK store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// `ServerRoom::space_marker`.
    SpaceMarker,
    /// `ServerRoom::chat_marker`.
    ChatMarker,
    /// `ServerRoom::dm_record`.
    DmRecord,
    /// `ServerRoom::children`.
    Children,
    /// `ServerRoom::members`.
    Members,
}

/// The record to read next into `room`, given the ones in `read` already; `None` once the
/// planner has all it needs. A Space marker decides only a Space, a chat marker or direct-chat
/// record only another room; the records that cannot decide are read last, and only while
/// none has, because then they give the reason the room is nobody's. The plan of rooms read
/// this way is the plan of rooms read in full (tested).
pub fn next_read(room: &ServerRoom, read: &[Record]) -> Option<Record> {
    use Record::*;
    let claimed = !matches!(kind_of(room), Kind::Unmarked(_));
    let marks = if room.is_space {
        [SpaceMarker, ChatMarker, DmRecord]
    } else {
        [ChatMarker, DmRecord, SpaceMarker]
    };
    let marks = marks.into_iter().filter(|_| !claimed);
    let links = room.is_space.then_some(Children);
    let members = (!room.is_space && !claimed).then_some(Members);
    marks
        .chain(links)
        .chain(members)
        .find(|record| !read.contains(record))
}
