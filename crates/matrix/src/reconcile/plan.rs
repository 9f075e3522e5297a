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
mod reads;

use diff::diff;
pub use diff::inserts_only;
pub use reads::{next_read, Record};

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
        // The order resume meets them in: leaving, markers, links, first chats.
        resume: [leaving, adoptions, links, first]
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

/// Phase 2: one Space per person. Of several, the one linking the most rooms is kept (then the
/// smallest room id); each other one is a conflict and skipped. The kept Space's
/// `last_chat_index` counts as issued.
fn one_space_per_person<'a>(
    spaces: BTreeMap<String, Vec<(&'a ServerRoom, u32)>>,
    issued: &mut Issued,
    report: &mut Report,
) -> Spaces<'a> {
    let mut space_of = Spaces::new();
    for (owner, mut list) in spaces {
        list.sort_by(|(a, _), (b, _)| {
            b.children
                .len()
                .cmp(&a.children.len())
                .then(a.room_id.cmp(&b.room_id))
        });
        let (kept, last_chat_index) = list[0];
        for (other, _) in &list[1..] {
            report.conflicts.push(format!(
                "{owner} has two spaces: kept {}, skipped {}",
                kept.room_id, other.room_id
            ));
            report.skip(
                &other.room_id,
                format!("second space of {owner} (kept {})", kept.room_id),
            );
        }
        issued.raise(&owner, last_chat_index);
        space_of.insert(owner, kept);
    }
    space_of
}

/// Phase 3: one room per chat id. Of several rooms claiming one person's id, the one linked
/// from the person's Space is kept (then the smallest room id); each other one is a conflict
/// and skipped. The kept rooms come out by person and id.
fn one_room_per_chat_id<'a>(
    mut marked: Vec<ChatRoom<'a>>,
    space_of: &Spaces<'a>,
    report: &mut Report,
) -> Vec<ChatRoom<'a>> {
    marked.sort_by(|a, b| claim_rank(a, space_of).cmp(&claim_rank(b, space_of)));
    // Sorted by person and id, the rooms claiming one id are together, the one kept first.
    let mut kept: Vec<ChatRoom<'a>> = Vec::with_capacity(marked.len());
    for chat in marked {
        match kept
            .last()
            .filter(|k| k.owner == chat.owner && k.id == chat.id)
        {
            Some(first) => {
                report.conflicts.push(format!(
                    "two rooms claim {} {}: kept {}, skipped {}",
                    chat.owner, chat.id, first.room.room_id, chat.room.room_id
                ));
                report.skip(
                    &chat.room.room_id,
                    format!(
                        "duplicate {} of {} (kept {})",
                        chat.id, chat.owner, first.room.room_id
                    ),
                );
            }
            None => kept.push(chat),
        }
    }
    kept
}

/// The order of phase 3: by person and id, then linked rooms first, then by room id.
fn claim_rank<'c>(
    chat: &'c ChatRoom<'_>,
    space_of: &Spaces<'_>,
) -> (&'c str, ChatId, bool, &'c str) {
    (
        chat.owner.as_str(),
        chat.id,
        !links(space_of, &chat.owner, &chat.room.room_id),
        chat.room.room_id.as_str(),
    )
}

/// Whether `owner`'s Space links `room_id`.
fn links(space_of: &Spaces<'_>, owner: &str, room_id: &str) -> bool {
    space_of
        .get(owner)
        .is_some_and(|space| space.children.iter().any(|c| c == room_id))
}

/// Phase 4: adopts the unmarked rooms that are unambiguously a person's chat (see
/// `adoption_owner`), appending them to `chats` as active, and returns `WriteChatMarker` for
/// each: resume writes the marker. The id is the number of a "Chat N" name if that id is not
/// in use, else one past every id in use or issued. Every other unmarked room is skipped with
/// why (after why a record it carries was ignored, if one was).
fn adopt<'a>(
    unmarked: Vec<(&'a ServerRoom, Option<String>)>,
    space_of: &Spaces<'a>,
    issued: &Issued,
    chats: &mut Vec<ChatRoom<'a>>,
    report: &mut Report,
) -> Vec<ResumeTask> {
    let linked_by = linked_by(space_of);
    let mut used: HashMap<String, BTreeSet<u32>> = HashMap::new();
    for chat in chats.iter() {
        used.entry(chat.owner.clone())
            .or_default()
            .insert(chat.id.number());
    }
    let mut tasks = Vec::new();
    for (room, rejected) in unmarked {
        let owner = match adoption_owner(room, &linked_by) {
            Ok(owner) => owner,
            Err(reason) => {
                report.skip(
                    &room.room_id,
                    rejected.map_or(reason.clone(), |r| format!("{r}; {reason}")),
                );
                continue;
            }
        };
        let taken = used.entry(owner.clone()).or_default();
        let Ok(id) = ChatId::new(adopted_number(room, taken, issued.of(&owner))) else {
            continue;
        };
        taken.insert(id.number());
        tasks.push(ResumeTask::WriteChatMarker {
            room_id: room.room_id.clone(),
            owner: owner.clone(),
            chat_id: id,
        });
        chats.push(ChatRoom {
            room,
            owner,
            id,
            status: ChatStatus::Active,
        });
    }
    tasks
}

/// For each room some Space links, the first person (in `space_of`'s order) whose Space does.
fn linked_by<'s>(space_of: &'s Spaces<'_>) -> HashMap<&'s str, &'s str> {
    let mut linked_by = HashMap::new();
    for (owner, space) in space_of {
        for child in &space.children {
            linked_by.entry(child.as_str()).or_insert(owner.as_str());
        }
    }
    linked_by
}

/// The person whose chat an unmarked room is: not a Space, linked from their Space, and they
/// its only member besides the bot. Otherwise why it is nobody's.
fn adoption_owner(room: &ServerRoom, linked_by: &HashMap<&str, &str>) -> Result<String, String> {
    if room.is_space {
        return Err("a space without a trusted marker".to_owned());
    }
    let Some(&owner) = linked_by.get(room.room_id.as_str()) else {
        return Err("no trusted marker and not linked from a person's space".to_owned());
    };
    if room.members != [owner] {
        return Err(format!(
            "linked from {owner}'s space but its members are not only {owner}"
        ));
    }
    Ok(owner.to_owned())
}

/// The id number an adopted room gets: the number of its "Chat N"/"Чат N" name (cleaned) if
/// `taken` lacks it, else one past the highest of `taken` and `last_issued`.
fn adopted_number(room: &ServerRoom, taken: &BTreeSet<u32>, last_issued: u32) -> u32 {
    room.name
        .as_deref()
        .and_then(|raw| ChatName::parse(raw).ok())
        .and_then(|name| default_name_number(name.as_str()))
        .filter(|n| !taken.contains(n))
        .unwrap_or_else(|| {
            taken
                .last()
                .copied()
                .unwrap_or(0)
                .max(last_issued)
                .saturating_add(1)
        })
}

/// Phase 5, people: a row for each person with a Space, a chat room or a direct chat, plus the
/// room rows of their Space and direct chats. Their next chat index is one past every id placed
/// or issued, never lower than the cache's; their direct chat is the cache's while it is still
/// one of theirs, else the first.
fn people_rows(
    placed: &Placed<'_>,
    highest_of: &HashMap<&str, u32>,
    cache: &CacheDump,
    desired: &mut CacheDump,
) {
    let cached_user: HashMap<&str, &UserRecord> = cache
        .users
        .iter()
        .map(|u| (u.user_id.as_str(), u))
        .collect();
    let mut owners: BTreeSet<&String> = placed.space_of.keys().collect();
    owners.extend(placed.chats.iter().map(|c| &c.owner));
    owners.extend(placed.dms.keys());
    for owner in owners {
        let cached = cached_user.get(owner.as_str());
        let space = placed.space_of.get(owner);
        let highest = highest_of.get(owner.as_str()).copied().unwrap_or(0);
        let derived_next = highest.max(placed.issued.of(owner)).saturating_add(1);
        let owner_dms = placed.dms.get(owner).map(Vec::as_slice).unwrap_or_default();
        let dm = cached
            .and_then(|u| u.dm_room_id.clone())
            .filter(|id| owner_dms.iter().any(|r| &r.room_id == id))
            .or_else(|| owner_dms.first().map(|r| r.room_id.clone()));
        desired.users.push(UserRecord {
            user_id: owner.clone(),
            space_id: space.map(|s| s.room_id.clone()),
            dm_room_id: dm,
            next_chat_index: derived_next.max(cached.map_or(1, |u| u.next_chat_index)),
        });
        let rooms = space
            .map(|s| (*s, RoomKind::Space))
            .into_iter()
            .chain(owner_dms.iter().map(|r| (*r, RoomKind::Dm)));
        for (room, kind) in rooms {
            desired.rooms.push(RoomRecord {
                room_id: room.room_id.clone(),
                owner: owner.clone(),
                kind,
                chat_id: None,
            });
        }
    }
}

/// Phases 5, chats, and 6: the room and chat rows of every placed chat room, named by the
/// room's name (cleaned, `chat_name`), else the cache's name, else the default; and
/// `LinkChild` for each active chat its owner's Space does not link.
fn chat_rows(
    placed: &Placed<'_>,
    cache: &CacheDump,
    default_name: &dyn Fn(ChatId) -> String,
    desired: &mut CacheDump,
) -> Vec<ResumeTask> {
    let cached_chat: HashMap<(&str, ChatId), &Chat> = cache
        .chats
        .iter()
        .map(|c| ((c.owner.as_str(), c.id), c))
        .collect();
    let mut links = Vec::new();
    for ChatRoom {
        room,
        owner,
        id,
        status,
    } in &placed.chats
    {
        desired.rooms.push(RoomRecord {
            room_id: room.room_id.clone(),
            owner: owner.clone(),
            kind: RoomKind::Chat,
            chat_id: Some(*id),
        });
        let name = match room.name.as_deref() {
            Some(raw) => chat_name(raw, &room.room_id, *id, default_name),
            None => cached_chat
                .get(&(owner.as_str(), *id))
                .map(|c| c.name.clone())
                .unwrap_or_else(|| default_name(*id)),
        };
        desired.chats.push(Chat {
            owner: owner.clone(),
            id: *id,
            name,
            status: *status,
            room_id: room.room_id.clone(),
        });
        if let Some(space) = placed.space_of.get(owner) {
            if *status == ChatStatus::Active && !space.children.contains(&room.room_id) {
                links.push(ResumeTask::LinkChild {
                    space_id: space.room_id.clone(),
                    room_id: room.room_id.clone(),
                });
            }
        }
    }
    links
}

/// Phase 6, first chats: C1 for each Space whose owner has no chat room and was never issued an
/// id (a crash between the Space and C1). A Space with an id issued and no chat had its chats
/// deleted: nothing to make (`!delete` first counts an id the marker missed, see
/// `Bot::create_first_chat`).
fn first_chats(placed: &Placed<'_>, highest_of: &HashMap<&str, u32>) -> Vec<ResumeTask> {
    placed
        .space_of
        .iter()
        .filter(|(owner, _)| {
            !highest_of.contains_key(owner.as_str()) && placed.issued.of(owner) == 0
        })
        .map(|(owner, space)| ResumeTask::CreateFirstChat {
            owner: owner.clone(),
            space_id: space.room_id.clone(),
        })
        .collect()
}

/// Puts the rows in the cache's order: people and rooms by id, chats by person and id.
fn sort_rows(desired: &mut CacheDump) {
    desired.users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    desired.rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    desired
        .chats
        .sort_by(|a, b| (a.owner.as_str(), a.id).cmp(&(b.owner.as_str(), b.id)));
}

/// Rooms whose records could not be read keep their cache rows as they are, and so do the
/// people whose Space or direct chat they are: not knowing is not "absent".
fn keep_unreadable(unreadable: &BTreeSet<String>, cache: &CacheDump, desired: &mut CacheDump) {
    if unreadable.is_empty() {
        return;
    }
    for room in cache
        .rooms
        .iter()
        .filter(|r| unreadable.contains(&r.room_id))
    {
        if !desired.rooms.iter().any(|d| d.room_id == room.room_id) {
            desired.rooms.push(room.clone());
        }
    }
    for chat in cache
        .chats
        .iter()
        .filter(|c| unreadable.contains(&c.room_id))
    {
        if !desired
            .chats
            .iter()
            .any(|d| d.owner == chat.owner && d.id == chat.id)
        {
            desired.chats.push(chat.clone());
        }
    }
    let in_unreadable = |id: &Option<String>| id.as_ref().is_some_and(|id| unreadable.contains(id));
    for user in cache
        .users
        .iter()
        .filter(|u| in_unreadable(&u.space_id) || in_unreadable(&u.dm_room_id))
    {
        match desired.users.iter_mut().find(|d| d.user_id == user.user_id) {
            Some(known) => {
                known.space_id = known.space_id.take().or_else(|| user.space_id.clone());
                known.dm_room_id = known.dm_room_id.take().or_else(|| user.dm_room_id.clone());
                known.next_chat_index = known.next_chat_index.max(user.next_chat_index);
            }
            None => desired.users.push(user.clone()),
        }
    }
}

/// The chat name a room's `m.room.name` gives: cleaned as a rename in a client is (invisible
/// and direction characters dropped, whitespace collapsed); a name that cannot be a chat name
/// (nothing visible left, or longer than `MAX_NAME_CHARS`) gives the default name, logged.
fn chat_name(
    raw: &str,
    room_id: &str,
    id: ChatId,
    default_name: &dyn Fn(ChatId) -> String,
) -> String {
    match ChatName::parse(raw) {
        Ok(name) => name.into_string(),
        Err(error) => {
            tracing::warn!(room_id, chat_id = %id, %error, "the room's name is not a usable chat name; using the default name");
            default_name(id)
        }
    }
}

/// The owner and id of a chat room being left, if its marker is trusted.
fn leaving_chat_id(room: &ServerRoom) -> Option<(&str, ChatId)> {
    match &room.chat_marker {
        Some(Read::Trusted(m)) if !room.is_space => Some((m.owner.as_str(), m.id()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
