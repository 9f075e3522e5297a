//! Phase 7 of the planner: the changes from one cache to another, and the part of them a
//! repair of one room may apply.

use super::Report;
use lambda_matrix_core::{CacheDump, Change};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// How many rows of one kind a diff adds, and changes or removes.
#[derive(Default)]
struct Tally {
    restored: usize,
    repaired: usize,
}

/// Phase 7: the changes from the cache to `desired` (people, then rooms, then chats), counted
/// in the report.
pub(super) fn diff(cache: &CacheDump, desired: &CacheDump, report: &mut Report) -> Vec<Change> {
    let mut changes = Vec::new();
    let users = diff_rows(
        &cache.users,
        &desired.users,
        |u| u.user_id.as_str(),
        Change::PutUser,
        |id| Change::DeleteUser(id.to_owned()),
        &mut changes,
    );
    let rooms = diff_rows(
        &cache.rooms,
        &desired.rooms,
        |r| r.room_id.as_str(),
        Change::PutRoom,
        |id| Change::DeleteRoom(id.to_owned()),
        &mut changes,
    );
    let chats = diff_rows(
        &cache.chats,
        &desired.chats,
        |c| (c.owner.as_str(), c.id),
        Change::PutChat,
        |(owner, id)| Change::DeleteChat {
            owner: owner.to_owned(),
            id,
        },
        &mut changes,
    );
    report.restored_user_meta += users.restored;
    report.restored_room_meta += rooms.restored;
    report.restored_chat_rows += chats.restored;
    report.repaired += users.repaired + rooms.repaired + chats.repaired;
    changes
}

/// The diff of one kind of row, identified by `key`: `put` for each desired row that `current`
/// lacks (restored) or holds otherwise (repaired), in `desired`'s order; then `delete` for each
/// current row whose key is not desired (repaired), in `current`'s order.
fn diff_rows<'r, T: Clone + PartialEq, K: Eq + Hash>(
    current: &'r [T],
    desired: &'r [T],
    key: impl Fn(&'r T) -> K,
    put: impl Fn(T) -> Change,
    delete: impl Fn(K) -> Change,
    changes: &mut Vec<Change>,
) -> Tally {
    let mut tally = Tally::default();
    let cached: HashMap<K, &T> = current.iter().map(|row| (key(row), row)).collect();
    for row in desired {
        match cached.get(&key(row)) {
            None => tally.restored += 1,
            Some(&old) if old != row => tally.repaired += 1,
            Some(_) => continue,
        }
        changes.push(put(row.clone()));
    }
    let wanted: HashSet<K> = desired.iter().map(&key).collect();
    for row in current {
        let gone = key(row);
        if !wanted.contains(&gone) {
            tally.repaired += 1;
            changes.push(delete(gone));
        }
    }
    tally
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
