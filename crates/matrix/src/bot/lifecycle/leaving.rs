//! Leaving for good: `!delete` (one chat) and `!forget-me` (everything about a person).
//!
//! Order, so that a crash at any point neither loses the person's answer nor brings a room
//! back: (1) the rooms are added to the leaving record (the bot's global account data), (2) the
//! server-side traces are removed (Space link; for `!forget-me` the platform's data and the
//! direct-chat record), (3) the person is told (the reply is the command's "handled" record),
//! (4) the bot leaves and forgets each room, (5) drops the cache rows, (6) removes the rooms from
//! the record. After a crash, reconcile ignores recorded rooms and resume runs (4)-(6).
//! Forgetting waits for the sync that reports the leave (see [`forget_when_synced`]).

use crate::bot::Bot;
use crate::markers::DmRecord;
use crate::records::erase_dm_record;
use anyhow::Context;
use lambda_matrix_core::{Change, ChatId, RoomKind};
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId};
use matrix_sdk::{Client, Room, RoomState};
use std::collections::BTreeSet;

/// The rooms in the leaving record as last synced (local store, no request).
pub(crate) async fn recorded(client: &Client) -> anyhow::Result<BTreeSet<String>> {
    crate::records::leaving(client)
        .await
        .map_err(|error| anyhow::anyhow!("the leaving record cannot be read: {error}"))
}

impl Bot {
    /// Every room of `person`: those the cache lists and those whose trusted record (chat or
    /// Space marker, direct-chat record) on the server names them, so a row a crash or an
    /// older version missed does not keep a room joined.
    pub(crate) async fn rooms_of(&self, person: &str) -> anyhow::Result<PersonRooms> {
        let mut rooms = PersonRooms::default();
        for row in self.store().dump()?.rooms {
            if row.owner == person {
                rooms.add(row.kind, row.room_id);
            }
        }
        for room in self.client().joined_rooms() {
            let room_id = room.room_id().to_string();
            if self
                .chat_marker(&room)
                .await?
                .is_some_and(|m| m.owner == person)
            {
                rooms.add(RoomKind::Chat, room_id);
            } else if self
                .space_marker(&room)
                .await?
                .is_some_and(|m| m.owner == person)
            {
                rooms.add(RoomKind::Space, room_id);
            } else if dm_record(&room).await?.is_some_and(|r| r.owner == person) {
                rooms.add(RoomKind::Dm, room_id);
            }
        }
        Ok(rooms)
    }

    /// Raises the Space marker's `last_chat_index` to `id` if it is below (a crash after C1
    /// was made and before the marker counted it), before the chat's room goes: a deleted id
    /// is never issued again, and resume never takes the Space for one that never had a chat.
    pub(crate) async fn count_as_issued(
        &self,
        space: &Room,
        person: &str,
        id: ChatId,
    ) -> anyhow::Result<()> {
        let issued = self
            .space_marker(space)
            .await?
            .map_or(0, |m| m.last_chat_index);
        if issued < id.number() {
            self.raise_last_index(space, person, id).await?;
        }
        Ok(())
    }

    /// Leaves and forgets every room in the leaving record, drops their cache rows (and the
    /// rows of people left with no rooms), and empties the record. Returns how many rooms were
    /// left; failures are logged and retried at the next start.
    pub async fn finish_leaving(&self) -> usize {
        let _one_at_a_time = self.inner.leaving.turn().await;
        let rooms = match self.leaving_now().await {
            Ok(rooms) => rooms,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "no room left: the leaving record cannot be read; retrying at the next start"
                );
                return 0;
            }
        };
        let mut done = Vec::new();
        for room_id in &rooms {
            match self.leave_for_good(room_id, &rooms).await {
                Ok(()) => done.push(room_id.clone()),
                Err(error) => {
                    tracing::warn!(
                        room_id,
                        error = format!("{error:#}"),
                        "cannot leave a deleted room; retrying at the next start"
                    )
                }
            }
        }
        if !done.is_empty() {
            let left: BTreeSet<String> = rooms
                .difference(&done.iter().cloned().collect())
                .cloned()
                .collect();
            if let Err(error) = self.write_leaving(&left).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot update the leaving record; resume finishes it at the next start"
                );
            }
        }
        done.len()
    }

    async fn leave_for_good(
        &self,
        room_id: &str,
        leaving: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        crate::crash_point!("before-leaving");
        let id = <&RoomId>::try_from(room_id).context("bad room id in the leaving record")?;
        if let Some(room) = self.client().get_room(id) {
            // Subscribed before leaving, so the sync that reports the leave is not missed.
            let updates = self.client().subscribe_to_all_room_updates();
            if matches!(room.state(), RoomState::Joined | RoomState::Invited) {
                self.unlink_from_space(&room, leaving).await?;
                if dm_record(&room).await?.is_some() {
                    erase_dm_record(&room).await?;
                }
                room.leave().await.context("cannot leave")?;
            }
            tokio::spawn(forget_when_synced(room, updates));
        }
        self.chat_settings().forget(id);
        self.drop_rows(room_id)
    }

    /// Removes a chat room from its owner's Space (a crash may have come before `!delete` did),
    /// unless the Space is being left too.
    async fn unlink_from_space(
        &self,
        room: &matrix_sdk::Room,
        leaving: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let Some(marker) = self.chat_marker(room).await? else {
            return Ok(());
        };
        let Some(space) = self.find_space_of(&marker.owner).await? else {
            return Ok(());
        };
        if leaving.contains(space.room_id().as_str()) {
            return Ok(());
        }
        let link = crate::records::state(&space, "m.space.child", room.room_id().as_str())
            .await
            .map_err(|error| anyhow::anyhow!("cannot read the Space link: {error}"))?;
        let linked =
            link.is_some_and(|json| json["content"].as_object().is_some_and(|c| !c.is_empty()));
        if linked {
            self.link_child(&space, &room.room_id().to_owned(), false)
                .await?;
        }
        Ok(())
    }

    /// Removes a left room's cache rows; a person with no room left loses their row too.
    fn drop_rows(&self, room_id: &str) -> anyhow::Result<()> {
        let Some(record) = self.store().room(room_id)? else {
            return Ok(());
        };
        let mut changes = vec![Change::DeleteRoom(room_id.to_owned())];
        if let (RoomKind::Chat, Some(id)) = (record.kind, record.chat_id) {
            changes.push(Change::DeleteChat {
                owner: record.owner.clone(),
                id,
            });
        }
        if let Some(mut user) = self.store().user(&record.owner)? {
            match record.kind {
                RoomKind::Space => user.space_id = None,
                RoomKind::Dm if user.dm_room_id.as_deref() == Some(room_id) => {
                    user.dm_room_id = None
                }
                _ => {}
            }
            let rooms_left = self
                .store()
                .dump()?
                .rooms
                .iter()
                .filter(|r| r.owner == record.owner && r.room_id != room_id)
                .count();
            if rooms_left == 0 {
                changes.push(Change::DeleteUser(record.owner.clone()));
            } else {
                changes.push(Change::PutUser(user));
            }
        }
        self.store().apply(&changes)?;
        Ok(())
    }

    /// At a start: the direct chats among `rooms` (every one if `None`) whose owner left while
    /// the bot was away, as the start's responses put them in the SDK store, are left like one
    /// the owner leaves while the bot runs ([`Bot::leave_dm_its_owner_left`]). A room whose
    /// members the store does not know is left alone.
    pub(crate) async fn leave_dms_their_owners_left(&self, rooms: Option<BTreeSet<OwnedRoomId>>) {
        let records: anyhow::Result<Vec<_>> = match rooms {
            Some(rooms) => rooms
                .iter()
                .filter_map(|id| self.room_record(id.as_str()).transpose())
                .collect(),
            None => self
                .store()
                .dump()
                .map(|dump| dump.rooms)
                .map_err(anyhow::Error::from),
        };
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot read the cache; direct chats their people left while the bot was away stay joined until they are read again");
                return;
            }
        };
        for record in records.into_iter().filter(|r| r.kind == RoomKind::Dm) {
            let (Ok(room_id), Ok(owner)) = (
                OwnedRoomId::try_from(record.room_id.as_str()),
                OwnedUserId::try_from(record.owner.as_str()),
            ) else {
                continue;
            };
            let Some(room) = self.client().get_room(&room_id) else {
                continue;
            };
            let gone = match room.get_member_no_sync(&owner).await {
                Ok(Some(member)) => matches!(
                    member.membership(),
                    MembershipState::Leave | MembershipState::Ban
                ),
                Ok(None) => false,
                Err(error) => {
                    tracing::debug!(%room_id, %error, "cannot read the owner's membership of a direct chat; it stays joined");
                    false
                }
            };
            if gone {
                self.leave_dm_its_owner_left(&record.owner, &record.room_id)
                    .await;
            }
        }
    }

    /// The owner of the direct chat `room_id` left it: nobody can come back to a room only
    /// the bot is in, so it is left for good like a deleted chat (recorded, left, its rows
    /// dropped, forgotten once a sync has shown the leave), under the person's lock so a
    /// direct chat they open meanwhile is counted without it.
    pub(crate) async fn leave_dm_its_owner_left(&self, owner: &str, room_id: &str) {
        let lock = self.runtime().people().get(owner);
        let _serialised = lock.lock().await;
        tracing::info!(
            room_id,
            person = owner,
            "the person left their direct chat; leaving it too"
        );
        if let Err(error) = self.record_leaving(&[room_id.to_owned()]).await {
            tracing::warn!(
                room_id,
                error = format!("{error:#}"),
                "cannot record a direct chat its person left as leaving"
            );
            return;
        }
        self.finish_leaving().await;
    }

    /// Adds `rooms` to the leaving record (server first).
    pub(crate) async fn record_leaving(&self, rooms: &[String]) -> anyhow::Result<()> {
        let _one_at_a_time = self.inner.leaving.turn().await;
        // Unreadable is an error here: writing only the new rooms would drop the others.
        let mut all = self.leaving_now().await?;
        all.extend(rooms.iter().cloned());
        self.write_leaving(&all).await
    }
    /// The record: as this process last wrote it, else as last synced.
    async fn leaving_now(&self) -> anyhow::Result<BTreeSet<String>> {
        self.inner.leaving.current(self.client()).await
    }

    async fn write_leaving(&self, rooms: &BTreeSet<String>) -> anyhow::Result<()> {
        self.inner.leaving.write(self.client(), rooms).await
    }
}

/// A person's rooms, by kind (sets: the cache and the server may both name a room).
#[derive(Debug, Default)]
pub(crate) struct PersonRooms {
    pub chats: BTreeSet<String>,
    pub dms: BTreeSet<String>,
    pub spaces: BTreeSet<String>,
}

impl PersonRooms {
    fn add(&mut self, kind: RoomKind, room_id: String) {
        match kind {
            RoomKind::Chat => self.chats.insert(room_id),
            RoomKind::Dm => self.dms.insert(room_id),
            RoomKind::Space => self.spaces.insert(room_id),
        };
    }

    /// Every room, the Spaces last (until left, a Space still says whose rooms these are).
    pub fn all(&self) -> Vec<String> {
        self.chats
            .iter()
            .chain(&self.dms)
            .chain(&self.spaces)
            .cloned()
            .collect()
    }
}

/// The trusted direct-chat record of a room (local store, no request).
async fn dm_record(room: &Room) -> anyhow::Result<Option<DmRecord>> {
    let record = crate::records::dm_record(room).await.map_err(|error| {
        anyhow::anyhow!(
            "cannot read the direct-chat record of {}: {error}",
            room.room_id()
        )
    })?;
    Ok(record.and_then(|r| r.trusted()))
}

/// How long forgetting a left room waits for the sync that reports the leave.
const FORGET_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Forgets a left room once a sync response has carried the leave. Forgetting earlier makes
/// Synapse fail every later request of the sliding-sync connection whose range holds the leave
/// (element-hq/synapse#19651); the sync loop would recover by starting a new connection, but
/// there is no need to provoke it.
pub(crate) async fn forget_when_synced(
    room: matrix_sdk::Room,
    mut updates: tokio::sync::broadcast::Receiver<matrix_sdk::sync::RoomUpdates>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let room_id = room.room_id().to_owned();
    let synced = tokio::time::timeout(FORGET_WAIT, async {
        loop {
            match updates.recv().await {
                Ok(update) if update.left.contains_key(&room_id) => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    })
    .await;
    if synced.is_err() {
        tracing::debug!(%room_id, "no sync reported the leave in time; forgetting anyway");
    }
    match room.forget().await {
        Ok(()) => tracing::info!(%room_id, "left room forgotten"),
        Err(error) => tracing::warn!(%room_id, %error, "cannot forget a left room"),
    }
}
