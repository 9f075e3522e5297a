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

use super::snapshot::{Read, ServerRoom, Skipped};
use lambda_matrix_core::{
    CacheDump, Change, Chat, ChatId, ChatName, ChatStatus, RoomKind, RoomRecord, UserRecord,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

struct MarkedChat<'a> {
    room: &'a ServerRoom,
    owner: String,
    id: ChatId,
    status: ChatStatus,
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
    let mut skip = |room_id: &str, reason: String| {
        report.skipped_rooms.push(Skipped {
            room_id: room_id.to_owned(),
            reason,
        })
    };

    // 1. Classify by trusted records.
    let mut spaces: BTreeMap<String, Vec<(&ServerRoom, u32)>> = BTreeMap::new();
    let mut marked: Vec<MarkedChat<'_>> = Vec::new();
    let mut dms: BTreeMap<String, Vec<&ServerRoom>> = BTreeMap::new();
    let mut unmarked: Vec<(&ServerRoom, Option<String>)> = Vec::new();
    let mut leaving = Vec::new();
    // Per person, the highest id of their chat rooms being left: still issued.
    let mut issued: HashMap<String, u32> = HashMap::new();
    let mut unreadable = BTreeSet::new();
    for room in &rooms {
        if let Some(reason) = &room.unreadable {
            skip(
                &room.room_id,
                format!("its records cannot be read ({reason}); its rows are kept"),
            );
            unreadable.insert(room.room_id.clone());
            continue;
        }
        if room.leaving {
            if let Some((owner, id)) = leaving_chat_id(room) {
                raise(&mut issued, owner, id.number());
            }
            skip(
                &room.room_id,
                "being left (deleted or forgotten by its owner)".to_owned(),
            );
            leaving.push(ResumeTask::Leave {
                room_id: room.room_id.clone(),
            });
            continue;
        }
        let mut rejected: Option<String> = None;
        let mut note = |what: &str, reason: &str| {
            rejected.get_or_insert_with(|| format!("{what} ignored: {reason}"));
        };
        match &room.space_marker {
            Some(Read::Trusted(m)) if room.is_space => {
                spaces
                    .entry(m.owner.clone())
                    .or_default()
                    .push((room, m.last_chat_index));
                continue;
            }
            Some(Read::Trusted(_)) => note("space marker", "the room is not a space"),
            Some(Read::Rejected(reason)) => note("space marker", reason),
            None => {}
        }
        match &room.chat_marker {
            Some(Read::Trusted(m)) if !room.is_space => match (m.id(), m.chat_status()) {
                (Some(id), Some(status)) => {
                    marked.push(MarkedChat {
                        room,
                        owner: m.owner.clone(),
                        id,
                        status,
                    });
                    continue;
                }
                _ => note("chat marker", "malformed chat id or status"),
            },
            Some(Read::Trusted(_)) => note("chat marker", "the room is a space"),
            Some(Read::Rejected(reason)) => note("chat marker", reason),
            None => {}
        }
        match &room.dm_record {
            Some(Read::Trusted(r)) if !room.is_space => {
                dms.entry(r.owner.clone()).or_default().push(room);
                continue;
            }
            Some(Read::Trusted(_)) => note("direct chat record", "the room is a space"),
            Some(Read::Rejected(reason)) => note("direct chat record", reason),
            None => {}
        }
        unmarked.push((room, rejected));
    }

    // 2. One Space per person.
    let mut space_of: BTreeMap<String, (&ServerRoom, u32)> = BTreeMap::new();
    for (owner, mut list) in spaces {
        list.sort_by(|(a, _), (b, _)| {
            b.children
                .len()
                .cmp(&a.children.len())
                .then(a.room_id.cmp(&b.room_id))
        });
        let kept = list[0];
        for (other, _) in &list[1..] {
            report.conflicts.push(format!(
                "{owner} has two spaces: kept {}, skipped {}",
                kept.0.room_id, other.room_id
            ));
            skip(
                &other.room_id,
                format!("second space of {owner} (kept {})", kept.0.room_id),
            );
        }
        raise(&mut issued, &owner, kept.1);
        space_of.insert(owner, kept);
    }
    let linked = |owner: &str, room_id: &str| {
        space_of
            .get(owner)
            .is_some_and(|(space, _)| space.children.iter().any(|c| c == room_id))
    };

    // 3. One room per chat id.
    marked.sort_by(|a, b| {
        (
            a.owner.as_str(),
            a.id,
            !linked(&a.owner, &a.room.room_id),
            a.room.room_id.as_str(),
        )
            .cmp(&(
                b.owner.as_str(),
                b.id,
                !linked(&b.owner, &b.room.room_id),
                b.room.room_id.as_str(),
            ))
    });
    let mut chats: Vec<(String, ChatId, ChatStatus, &ServerRoom)> = Vec::new();
    let mut kept_rooms: HashMap<(String, ChatId), &ServerRoom> = HashMap::new();
    let mut used: HashMap<String, BTreeSet<u32>> = HashMap::new();
    for chat in marked {
        if let Some(kept) = kept_rooms.get(&(chat.owner.clone(), chat.id)) {
            report.conflicts.push(format!(
                "two rooms claim {} {}: kept {}, skipped {}",
                chat.owner, chat.id, kept.room_id, chat.room.room_id
            ));
            skip(
                &chat.room.room_id,
                format!(
                    "duplicate {} of {} (kept {})",
                    chat.id, chat.owner, kept.room_id
                ),
            );
            continue;
        }
        used.entry(chat.owner.clone())
            .or_default()
            .insert(chat.id.number());
        kept_rooms.insert((chat.owner.clone(), chat.id), chat.room);
        chats.push((chat.owner, chat.id, chat.status, chat.room));
    }

    // 4. Adopt unmarked rooms that are unambiguously a person's chat.
    let mut resume = leaving;
    // The first owner (in `space_of`'s order) whose Space links each room.
    let mut linked_by: HashMap<&str, &String> = HashMap::new();
    for (owner, (space, _)) in &space_of {
        for child in &space.children {
            linked_by.entry(child.as_str()).or_insert(owner);
        }
    }
    for (room, rejected) in unmarked {
        let owner = linked_by.get(room.room_id.as_str()).map(|o| (*o).clone());
        let reason = match (&owner, room.is_space) {
            (_, true) => Some("a space without a trusted marker".to_owned()),
            (None, _) => Some("no trusted marker and not linked from a person's space".to_owned()),
            (Some(owner), _) if room.members != [owner.clone()] => Some(format!(
                "linked from {owner}'s space but its members are not only {owner}"
            )),
            _ => None,
        };
        let (Some(owner), None) = (owner, reason.clone()) else {
            let reason = reason.unwrap_or_default();
            skip(
                &room.room_id,
                rejected.map_or(reason.clone(), |r| format!("{r}; {reason}")),
            );
            continue;
        };
        let taken = used.entry(owner.clone()).or_default();
        let last_issued = issued.get(&owner).copied().unwrap_or(0);
        let from_name = room
            .name
            .as_deref()
            .and_then(|raw| ChatName::parse(raw).ok())
            .and_then(|name| default_name_number(name.as_str()))
            .filter(|n| !taken.contains(n));
        let number = from_name.unwrap_or_else(|| {
            taken
                .iter()
                .max()
                .copied()
                .unwrap_or(0)
                .max(last_issued)
                .saturating_add(1)
        });
        let Ok(id) = ChatId::new(number) else {
            continue;
        };
        taken.insert(number);
        resume.push(ResumeTask::WriteChatMarker {
            room_id: room.room_id.clone(),
            owner: owner.clone(),
            chat_id: id,
        });
        chats.push((owner, id, ChatStatus::Active, room));
    }

    // 5. The cache the server implies.
    let mut desired = CacheDump::default();
    let cached_user: HashMap<&str, &UserRecord> = cache
        .users
        .iter()
        .map(|u| (u.user_id.as_str(), u))
        .collect();
    let cached_chat: HashMap<(&str, ChatId), &Chat> = cache
        .chats
        .iter()
        .map(|c| ((c.owner.as_str(), c.id), c))
        .collect();
    let mut owners: BTreeSet<String> = space_of.keys().cloned().collect();
    owners.extend(chats.iter().map(|(o, ..)| o.clone()));
    owners.extend(dms.keys().cloned());
    let mut highest_of: HashMap<&str, u32> = HashMap::new();
    for (owner, id, ..) in &chats {
        let highest = highest_of.entry(owner.as_str()).or_default();
        *highest = (*highest).max(id.number());
    }
    for owner in &owners {
        let cached = cached_user.get(owner.as_str());
        let space = space_of.get(owner);
        let highest = highest_of.get(owner.as_str()).copied().unwrap_or(0);
        let last_issued = issued.get(owner).copied().unwrap_or(0);
        let derived_next = highest.max(last_issued).saturating_add(1);
        let owner_dms = dms.get(owner).map(Vec::as_slice).unwrap_or_default();
        let dm = cached
            .and_then(|u| u.dm_room_id.clone())
            .filter(|id| owner_dms.iter().any(|r| &r.room_id == id))
            .or_else(|| owner_dms.first().map(|r| r.room_id.clone()));
        desired.users.push(UserRecord {
            user_id: owner.clone(),
            space_id: space.map(|(s, _)| s.room_id.clone()),
            dm_room_id: dm,
            next_chat_index: derived_next.max(cached.map_or(1, |u| u.next_chat_index)),
        });
        if let Some((space, _)) = space {
            desired.rooms.push(RoomRecord {
                room_id: space.room_id.clone(),
                owner: owner.clone(),
                kind: RoomKind::Space,
                chat_id: None,
            });
        }
        for room in owner_dms {
            desired.rooms.push(RoomRecord {
                room_id: room.room_id.clone(),
                owner: owner.clone(),
                kind: RoomKind::Dm,
                chat_id: None,
            });
        }
    }
    for (owner, id, status, room) in &chats {
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
        // 6. Resume: active chats must be linked from their Space.
        if let Some((space, _)) = space_of.get(owner) {
            if *status == ChatStatus::Active && !space.children.contains(&room.room_id) {
                resume.push(ResumeTask::LinkChild {
                    space_id: space.room_id.clone(),
                    room_id: room.room_id.clone(),
                });
            }
        }
    }
    resume.extend(first_chats(&space_of, &highest_of, &issued));
    keep_unreadable(&unreadable, cache, &mut desired);
    desired.users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    desired.rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    desired
        .chats
        .sort_by(|a, b| (a.owner.as_str(), a.id).cmp(&(b.owner.as_str(), b.id)));

    // 7. Changes from the cache to what the server implies.
    let changes = diff(cache, &desired, &mut report);
    report.conflicts.sort();
    report
        .skipped_rooms
        .sort_by(|a, b| a.room_id.cmp(&b.room_id));
    Plan {
        desired,
        changes,
        resume,
        report,
    }
}

/// The part of `changes` that only adds to `cache`: rows it lacks, and fields of a person's row
/// that are empty there. What a runtime repair of one room applies: it sees one room, so it
/// must never delete or overwrite what other rooms (or a command in progress) wrote.
pub fn inserts_only(changes: &[Change], cache: &CacheDump) -> Vec<Change> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::PutRoom(room) => {
                (!cache.rooms.iter().any(|r| r.room_id == room.room_id)).then(|| change.clone())
            }
            Change::PutChat(chat) => (!cache
                .chats
                .iter()
                .any(|c| c.owner == chat.owner && c.id == chat.id))
            .then(|| change.clone()),
            Change::PutUser(user) => match cache.users.iter().find(|u| u.user_id == user.user_id) {
                None => Some(change.clone()),
                Some(known) => {
                    let mut filled = known.clone();
                    filled.space_id = filled.space_id.or_else(|| user.space_id.clone());
                    filled.dm_room_id = filled.dm_room_id.or_else(|| user.dm_room_id.clone());
                    filled.next_chat_index = filled.next_chat_index.max(user.next_chat_index);
                    (filled != *known).then_some(Change::PutUser(filled))
                }
            },
            Change::DeleteUser(_) | Change::DeleteRoom(_) | Change::DeleteChat { .. } => None,
        })
        .collect()
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

/// Raises `owner`'s highest issued id to at least `number`.
fn raise(issued: &mut HashMap<String, u32>, owner: &str, number: u32) {
    let highest = issued.entry(owner.to_owned()).or_default();
    *highest = (*highest).max(number);
}

/// C1 for each Space whose owner has no chat and was never issued an id (a crash between the
/// Space and C1). A Space with an id issued and no chat had its chats deleted: nothing to make
/// (`!delete` first counts an id the marker missed, see `Bot::create_first_chat`).
fn first_chats(
    space_of: &BTreeMap<String, (&ServerRoom, u32)>,
    highest_of: &HashMap<&str, u32>,
    issued: &HashMap<String, u32>,
) -> Vec<ResumeTask> {
    space_of
        .iter()
        .filter(|(owner, _)| {
            !highest_of.contains_key(owner.as_str())
                && issued.get(owner.as_str()).copied().unwrap_or(0) == 0
        })
        .map(|(owner, (space, _))| ResumeTask::CreateFirstChat {
            owner: owner.clone(),
            space_id: space.room_id.clone(),
        })
        .collect()
}

fn diff(cache: &CacheDump, desired: &CacheDump, report: &mut Report) -> Vec<Change> {
    let mut changes = Vec::new();
    let users: HashMap<&str, &UserRecord> = cache
        .users
        .iter()
        .map(|u| (u.user_id.as_str(), u))
        .collect();
    for user in &desired.users {
        match users.get(user.user_id.as_str()) {
            None => report.restored_user_meta += 1,
            Some(cached) if *cached != user => report.repaired += 1,
            Some(_) => continue,
        }
        changes.push(Change::PutUser(user.clone()));
    }
    let wanted: BTreeSet<&str> = desired.users.iter().map(|u| u.user_id.as_str()).collect();
    for user in cache
        .users
        .iter()
        .filter(|u| !wanted.contains(u.user_id.as_str()))
    {
        report.repaired += 1;
        changes.push(Change::DeleteUser(user.user_id.clone()));
    }

    let rooms: HashMap<&str, &RoomRecord> = cache
        .rooms
        .iter()
        .map(|r| (r.room_id.as_str(), r))
        .collect();
    for room in &desired.rooms {
        match rooms.get(room.room_id.as_str()) {
            None => report.restored_room_meta += 1,
            Some(cached) if *cached != room => report.repaired += 1,
            Some(_) => continue,
        }
        changes.push(Change::PutRoom(room.clone()));
    }
    let wanted: BTreeSet<&str> = desired.rooms.iter().map(|r| r.room_id.as_str()).collect();
    for room in cache
        .rooms
        .iter()
        .filter(|r| !wanted.contains(r.room_id.as_str()))
    {
        report.repaired += 1;
        changes.push(Change::DeleteRoom(room.room_id.clone()));
    }

    let chats: HashMap<(&str, ChatId), &Chat> = cache
        .chats
        .iter()
        .map(|c| ((c.owner.as_str(), c.id), c))
        .collect();
    for chat in &desired.chats {
        match chats.get(&(chat.owner.as_str(), chat.id)) {
            None => report.restored_chat_rows += 1,
            Some(cached) if *cached != chat => report.repaired += 1,
            Some(_) => continue,
        }
        changes.push(Change::PutChat(chat.clone()));
    }
    let wanted: BTreeSet<(&str, ChatId)> = desired
        .chats
        .iter()
        .map(|c| (c.owner.as_str(), c.id))
        .collect();
    for chat in cache
        .chats
        .iter()
        .filter(|c| !wanted.contains(&(c.owner.as_str(), c.id)))
    {
        report.repaired += 1;
        changes.push(Change::DeleteChat {
            owner: chat.owner.clone(),
            id: chat.id,
        });
    }
    changes
}

#[cfg(test)]
mod tests;
