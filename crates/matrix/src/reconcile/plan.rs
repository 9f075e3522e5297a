//! The reconcile planner: a pure function from a server snapshot and the cache to the cache
//! the server implies, the changes that get there, the resume work, and the report.
//!
//! Rules (docs/DESIGN.md "Server-side records", "Startup"):
//! - records count only when the bot sent them with a known version;
//! - one Space per person: with several, the one linking the most chat rooms wins (then the
//!   smallest room id), the others are conflicts;
//! - one room per chat id: the one linked from the person's Space wins (then the smallest room
//!   id), the others are conflicts;
//! - an unmarked room is adopted only when linked from its owner's marked Space with the owner
//!   its only other member; its id comes from a "Chat N"/"Чат N" name if free, else the next
//!   free id; resume writes its marker;
//! - the highest id ever issued to a person = max(highest chat id, the Space's
//!   `last_chat_index`, the ids of their chat rooms in the leaving record); next chat index =
//!   that + 1, never lowered;
//! - rooms in the leaving record (a `!delete` or `!forget-me` a crash interrupted) are not
//!   placed; resume finishes leaving them;
//! - a Space gets its C1 from resume only if no id was ever issued to its owner (a crash
//!   between the Space and C1); a Space whose chats were all deleted gets nothing;
//! - a person with a recorded direct chat and nothing else (no Space, no chat room, no id
//!   issued) gets their first contact finished by resume (a crash after the record, or a room
//!   creation the homeserver refused);
//! - the server wins for Matrix metadata: rows that disagree are repaired, rows the server does
//!   not imply are removed;
//! - a room's name becomes its chat's name cleaned like a rename in a client (`ChatName`); one
//!   that cannot be a chat name gives the default name.
//!
//! `plan` runs in phases, one function each:
//! 1. `classify`: each room by its trusted records; unreadable rooms and rooms being left are
//!    settled here;
//! 2. `one_space_per_person`;
//! 3. `one_room_per_chat_id`;
//! 4. `adopt`: unmarked rooms that are unambiguously a person's chat;
//! 5. `people_rows` and `chat_rows`: the cache the server implies (`keep_unreadable` adds the
//!    rows of rooms that could not be read);
//! 6. resume links (`chat_rows`) and first chats (`first_chats`);
//! 7. `diff` (`plan/diff.rs`): the changes from the cache, one generic `diff_rows` per table.

use super::snapshot::{Read, ServerRoom, Skipped};
use lambda_matrix_core::{
    CacheDump, Change, Chat, ChatId, ChatName, ChatStatus, RoomKind, RoomRecord, UserRecord,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod diff;
mod placing;
mod reads;
mod rows;

use diff::diff;
pub use diff::inserts_only;
use placing::{adopt, one_room_per_chat_id, one_space_per_person};
pub use reads::{next_read, Record};
use rows::{
    chat_rows, first_chats, first_contacts, keep_unreadable, leaving_chat_id, people_rows,
    sort_rows,
};

/// The structured report of one reconcile (or resume).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Rooms the bot is joined to.
    pub joined_rooms: usize,
    /// `matrix_user` rows added.
    pub restored_user_meta: usize,
    /// `matrix_room` rows added.
    pub restored_room_meta: usize,
    /// `chat` rows added.
    pub restored_chat_rows: usize,
    /// Rows changed or removed to match the server.
    pub repaired: usize,
    /// Disagreements on the server itself, and how they were settled.
    pub conflicts: Vec<String>,
    /// Rooms that could not be placed.
    pub skipped_rooms: Vec<Skipped>,
    /// Time taken.
    pub duration_ms: u64,
}

impl Report {
    /// Whether the cache already matched the server.
    pub fn is_clean(&self) -> bool {
        self.restored_user_meta == 0
            && self.restored_room_meta == 0
            && self.restored_chat_rows == 0
            && self.repaired == 0
    }

    /// Records that `room_id` was not placed, and why.
    fn skip(&mut self, room_id: &str, reason: String) {
        self.skipped_rooms.push(Skipped {
            room_id: room_id.to_owned(),
            reason,
        });
    }
}

/// Work only resume may do (it writes to the server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum ResumeTask {
    /// An adopted room gets its chat marker.
    WriteChatMarker {
        /// The room.
        room_id: String,
        /// Its owner.
        owner: String,
        /// The id it was given.
        chat_id: ChatId,
    },
    /// An active chat room missing from its Space's child list gets linked.
    LinkChild {
        /// The person's Space.
        space_id: String,
        /// The chat room.
        room_id: String,
    },
    /// A Space that never had a chat (a crash between the Space and C1: no id issued yet)
    /// gets its C1. Never planned once an id was issued, so deleted chats stay deleted.
    CreateFirstChat {
        /// The person.
        owner: String,
        /// Their Space.
        space_id: String,
    },
    /// A person whose direct chat is recorded but who has no Space and no chat, and was never
    /// issued an id (a crash after the record, or a room creation refused): their first
    /// contact is finished.
    FinishFirstContact {
        /// The person.
        owner: String,
        /// Their direct chat (the first by id, if several).
        room_id: String,
    },
    /// A room in the leaving record is left and forgotten.
    Leave {
        /// The room.
        room_id: String,
    },
}

/// The planner's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The cache the server implies.
    pub desired: CacheDump,
    /// Changes from the current cache to `desired`, for one transaction.
    pub changes: Vec<Change>,
    /// Server writes for resume.
    pub resume: Vec<ResumeTask>,
    /// The report (without duration).
    pub report: Report,
}

impl Plan {
    /// The rooms this plan adopts. No run served them before, so a message written in one was
    /// seen by a live bot that dropped it: catch-up reads them back whatever the start showed.
    pub fn adopted(&self) -> impl Iterator<Item = &str> {
        self.resume.iter().filter_map(|task| match task {
            ResumeTask::WriteChatMarker { room_id, .. } => Some(room_id.as_str()),
            _ => None,
        })
    }
}

/// The chat number in a default name ("Chat 3", "Чат 3"), if it is one.
pub fn default_name_number(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("Chat ")
        .or_else(|| name.strip_prefix("Чат "))?;
    rest.parse::<ChatId>()
        .ok()
        .or_else(|| format!("C{rest}").parse().ok())
        .map(ChatId::number)
}

/// A chat room placed by its marker (or adopted): whose it is, its id and its status.
struct ChatRoom<'a> {
    room: &'a ServerRoom,
    owner: String,
    id: ChatId,
    status: ChatStatus,
}

/// Per person, the one Space kept (phase 2).
type Spaces<'a> = BTreeMap<String, &'a ServerRoom>;

/// Per person, the highest chat id issued to them by what is not a placed chat room: their
/// Space's `last_chat_index` and the ids of their chat rooms being left.
#[derive(Default)]
struct Issued(HashMap<String, u32>);

impl Issued {
    /// Raises `owner`'s highest issued id to at least `number`.
    fn raise(&mut self, owner: &str, number: u32) {
        let highest = self.0.entry(owner.to_owned()).or_default();
        *highest = (*highest).max(number);
    }

    /// `owner`'s highest issued id, 0 if none.
    fn of(&self, owner: &str) -> u32 {
        self.0.get(owner).copied().unwrap_or(0)
    }
}

/// What phase 1 found: the rooms by their trusted records, and what it settled itself.
#[derive(Default)]
struct Classified<'a> {
    /// Per person, every Space marked as theirs, with its `last_chat_index`.
    spaces: BTreeMap<String, Vec<(&'a ServerRoom, u32)>>,
    /// Rooms with a trusted, well-formed chat marker.
    marked: Vec<ChatRoom<'a>>,
    /// Per person, their direct chats.
    dms: BTreeMap<String, Vec<&'a ServerRoom>>,
    /// Rooms with no trusted record, and why a record they carry was ignored.
    unmarked: Vec<(&'a ServerRoom, Option<String>)>,
    /// `Leave` for every room in the leaving record.
    leaving: Vec<ResumeTask>,
    /// The ids of chat rooms being left.
    issued: Issued,
    /// Rooms whose records could not be read.
    unreadable: BTreeSet<String>,
}

/// Where every placed room went (phases 1 to 4): what the rows and resume links are made from.
struct Placed<'a> {
    space_of: Spaces<'a>,
    /// Every chat room kept or adopted.
    chats: Vec<ChatRoom<'a>>,
    dms: BTreeMap<String, Vec<&'a ServerRoom>>,
    issued: Issued,
}

impl Placed<'_> {
    /// Per person, the highest id of their chat rooms placed.
    fn highest_of(&self) -> HashMap<&str, u32> {
        let mut highest_of: HashMap<&str, u32> = HashMap::new();
        for chat in &self.chats {
            let highest = highest_of.entry(chat.owner.as_str()).or_default();
            *highest = (*highest).max(chat.id.number());
        }
        highest_of
    }
}

/// Plans the cache from `server` (every joined room) and the current `cache`.
/// `default_name` names a chat whose room has no name.
pub fn plan(
    server: &[ServerRoom],
    cache: &CacheDump,
    default_name: &dyn Fn(ChatId) -> String,
) -> Plan {
    let mut rooms: Vec<&ServerRoom> = server.iter().collect();
    rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    let mut report = Report {
        joined_rooms: rooms.len(),
        ..Report::default()
    };

    let Classified {
        spaces,
        marked,
        dms,
        unmarked,
        leaving,
        mut issued,
        unreadable,
    } = classify(&rooms, &mut report);
    let space_of = one_space_per_person(spaces, &mut issued, &mut report);
    let mut chats = one_room_per_chat_id(marked, &space_of, &mut report);
    let adoptions = adopt(unmarked, &space_of, &issued, &mut chats, &mut report);
    let placed = Placed {
        space_of,
        chats,
        dms,
        issued,
    };

    let highest_of = placed.highest_of();
    let mut desired = CacheDump::default();
    people_rows(&placed, &highest_of, cache, &mut desired);
    let links = chat_rows(&placed, cache, default_name, &mut desired);
    let first = first_chats(&placed, &highest_of);
    let contacts = first_contacts(&placed, &highest_of);
    keep_unreadable(&unreadable, cache, &mut desired);
    sort_rows(&mut desired);

    let changes = diff(cache, &desired, &mut report);
    report.conflicts.sort();
    report
        .skipped_rooms
        .sort_by(|a, b| a.room_id.cmp(&b.room_id));
    Plan {
        desired,
        changes,
        // The order resume meets them in: leaving, markers, links, first chats, first contacts.
        resume: [leaving, adoptions, links, first, contacts]
            .into_iter()
            .flatten()
            .collect(),
        report,
    }
}

/// Phase 1: sorts the rooms by their trusted records. A room whose records cannot be read is
/// skipped (its rows are kept later, `keep_unreadable`). A room in the leaving record is skipped
/// and gets `Leave`; if it is a chat room with a trusted marker, its id still counts as issued.
fn classify<'a>(rooms: &[&'a ServerRoom], report: &mut Report) -> Classified<'a> {
    let mut found = Classified::default();
    for &room in rooms {
        if let Some(reason) = &room.unreadable {
            report.skip(
                &room.room_id,
                format!("its records cannot be read ({reason}); its rows are kept"),
            );
            found.unreadable.insert(room.room_id.clone());
            continue;
        }
        if room.leaving {
            if let Some((owner, id)) = leaving_chat_id(room) {
                found.issued.raise(owner, id.number());
            }
            report.skip(
                &room.room_id,
                "being left (deleted or forgotten by its owner)".to_owned(),
            );
            found.leaving.push(ResumeTask::Leave {
                room_id: room.room_id.clone(),
            });
            continue;
        }
        match kind_of(room) {
            Kind::Space {
                owner,
                last_chat_index,
            } => found
                .spaces
                .entry(owner)
                .or_default()
                .push((room, last_chat_index)),
            Kind::Chat(chat) => found.marked.push(chat),
            Kind::Dm { owner } => found.dms.entry(owner).or_default().push(room),
            Kind::Unmarked(rejected) => found.unmarked.push((room, rejected)),
        }
    }
    found
}

/// What a room's trusted records make it.
enum Kind<'a> {
    Space {
        owner: String,
        last_chat_index: u32,
    },
    Chat(ChatRoom<'a>),
    Dm {
        owner: String,
    },
    /// No trusted record; why the first record it carries was ignored, if any.
    Unmarked(Option<String>),
}

/// The first usable record decides, in this order: a Space marker in a Space, a well-formed chat
/// marker in a room that is not a Space, a direct-chat record in a room that is not a Space. A
/// record that is untrusted, malformed or in the wrong kind of room is ignored; the first
/// such reason is kept for the report.
fn kind_of(room: &ServerRoom) -> Kind<'_> {
    let mut rejected: Option<String> = None;
    let mut note = |what: &str, reason: &str| {
        rejected.get_or_insert_with(|| format!("{what} ignored: {reason}"));
    };
    match &room.space_marker {
        Some(Read::Trusted(m)) if room.is_space => {
            return Kind::Space {
                owner: m.owner.clone(),
                last_chat_index: m.last_chat_index,
            }
        }
        Some(Read::Trusted(_)) => note("space marker", "the room is not a space"),
        Some(Read::Rejected(reason)) => note("space marker", reason),
        None => {}
    }
    match &room.chat_marker {
        Some(Read::Trusted(m)) if !room.is_space => match (m.id(), m.chat_status()) {
            (Some(id), Some(status)) => {
                return Kind::Chat(ChatRoom {
                    room,
                    owner: m.owner.clone(),
                    id,
                    status,
                })
            }
            _ => note("chat marker", "malformed chat id or status"),
        },
        Some(Read::Trusted(_)) => note("chat marker", "the room is a space"),
        Some(Read::Rejected(reason)) => note("chat marker", reason),
        None => {}
    }
    match &room.dm_record {
        Some(Read::Trusted(r)) if !room.is_space => {
            return Kind::Dm {
                owner: r.owner.clone(),
            }
        }
        Some(Read::Trusted(_)) => note("direct chat record", "the room is a space"),
        Some(Read::Rejected(reason)) => note("direct chat record", reason),
        None => {}
    }
    Kind::Unmarked(rejected)
}

#[cfg(test)]
mod tests;
