//! Phases 2 to 4 of the planner: where each person's Space and each chat id go when rooms
//! disagree (one Space per person, one room per chat id), and which unmarked rooms are adopted.

use super::*;

/// Phase 2: one Space per person. Of several, the one linking the most rooms is kept (then the
/// smallest room id); each other one is a conflict and skipped. The kept Space's
/// `last_chat_index` counts as issued.
pub(super) fn one_space_per_person<'a>(
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
pub(super) fn one_room_per_chat_id<'a>(
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
pub(super) fn claim_rank<'c>(
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
pub(super) fn links(space_of: &Spaces<'_>, owner: &str, room_id: &str) -> bool {
    space_of
        .get(owner)
        .is_some_and(|space| space.children.iter().any(|c| c == room_id))
}

/// Phase 4: adopts the unmarked rooms that are unambiguously a person's chat (see
/// `adoption_owner`), appending them to `chats` as active, and returns `WriteChatMarker` for
/// each: resume writes the marker. The id is the number of a "Chat N" name if that id is not
/// in use, else one past every id in use or issued. Every other unmarked room is skipped with
/// why (after why a record it carries was ignored, if one was).
pub(super) fn adopt<'a>(
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
pub(super) fn linked_by<'s>(space_of: &'s Spaces<'_>) -> HashMap<&'s str, &'s str> {
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
pub(super) fn adoption_owner(
    room: &ServerRoom,
    linked_by: &HashMap<&str, &str>,
) -> Result<String, String> {
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
pub(super) fn adopted_number(room: &ServerRoom, taken: &BTreeSet<u32>, last_issued: u32) -> u32 {
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
