//! Phases 5 and 6 of the planner: the cache rows the placed rooms imply (people, rooms, chats;
//! rows of unreadable rooms kept), the resume links and first chats.

use super::*;

/// Phase 5, people: a row for each person with a Space, a chat room or a direct chat, plus the
/// room rows of their Space and direct chats. Their next chat index is one past every id placed
/// or issued, never lower than the cache's; their direct chat is the cache's while it is still
/// one of theirs, else the first.
pub(super) fn people_rows(
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
pub(super) fn chat_rows(
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
pub(super) fn first_chats(placed: &Placed<'_>, highest_of: &HashMap<&str, u32>) -> Vec<ResumeTask> {
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

/// Phase 6, first contacts: each person with a direct chat and nothing else — no Space, no
/// chat room, no id issued — gets their first contact finished.
pub(super) fn first_contacts(
    placed: &Placed<'_>,
    highest_of: &HashMap<&str, u32>,
) -> Vec<ResumeTask> {
    placed
        .dms
        .iter()
        .filter(|(owner, _)| {
            !placed.space_of.contains_key(owner.as_str())
                && !highest_of.contains_key(owner.as_str())
                && placed.issued.of(owner) == 0
        })
        .filter_map(|(owner, dms)| {
            let first = dms.iter().map(|room| &room.room_id).min()?;
            Some(ResumeTask::FinishFirstContact {
                owner: owner.clone(),
                room_id: first.clone(),
            })
        })
        .collect()
}

/// Puts the rows in the cache's order: people and rooms by id, chats by person and id.
pub(super) fn sort_rows(desired: &mut CacheDump) {
    desired.users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    desired.rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    desired
        .chats
        .sort_by(|a, b| (a.owner.as_str(), a.id).cmp(&(b.owner.as_str(), b.id)));
}

/// Rooms whose records could not be read keep their cache rows as they are, and so do the
/// people whose Space or direct chat they are: not knowing is not "absent".
pub(super) fn keep_unreadable(
    unreadable: &BTreeSet<String>,
    cache: &CacheDump,
    desired: &mut CacheDump,
) {
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
pub(super) fn chat_name(
    raw: &str,
    room_id: &str,
    id: ChatId,
    default_name: &dyn Fn(ChatId) -> String,
) -> String {
    match ChatName::parse(raw) {
        Ok(name) => name.into_string(),
        Err(error) => {
            tracing::info!(room_id, chat_id = %id, %error, "the room's name is not a usable chat name; using the default name");
            default_name(id)
        }
    }
}

/// The owner and id of a chat room being left, if its marker is trusted.
pub(super) fn leaving_chat_id(room: &ServerRoom) -> Option<(&str, ChatId)> {
    match &room.chat_marker {
        Some(Read::Trusted(m)) if !room.is_space => Some((m.owner.as_str(), m.id()?)),
        _ => None,
    }
}
