//! First contact: a person invites the bot; the bot joins, gives them a Space with chat C1
//! (unless they already have a Space), records the direct chat, and welcomes them.

use crate::bot::lifecycle::forget_when_synced;
use crate::bot::lifecycle::Sought;
use crate::bot::Bot;
use crate::markers::{DmRecord, SpaceMarker, VERSION};
use crate::retry::Policy;
use crate::template;
use anyhow::Context;
use lambda_matrix_core::{Change, RoomKind, RoomRecord, UserRecord};
use matrix_sdk::ruma::api::client::membership::leave_room;
use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::Room;
use std::time::Duration;

/// Joins: 0.5 s doubling to 30 s between tries, eight tries (about a minute in all).
const JOIN: Policy = Policy::doubling(Duration::from_millis(500), Duration::from_secs(30)).tries(8);

impl Bot {
    /// Accepts an invite from an allowed person (joining off the handler, with backoff) and
    /// provisions them, unless the room is a group room (see `groups`); declines anyone else.
    pub(crate) fn handle_invite(&self, inviter: String, room: Room) {
        let room_id = room.room_id().to_owned();
        if !self.settings().is_allowed(&inviter) {
            tracing::info!(%room_id, %inviter, "declining an invite: the inviter is not in MATRIX_ALLOWED_USERS");
            tokio::spawn(async move {
                // A plain leave, then forgotten once a sync has shown it, so a stranger's room
                // leaves nothing behind in the store (see `leaving::forget_when_synced`).
                let updates = room.client().subscribe_to_all_room_updates();
                let request = leave_room::v3::Request::new(room_id.clone());
                match room.client().send(request).await {
                    Ok(_) => forget_when_synced(room, updates).await,
                    Err(error) => tracing::warn!(%room_id, %error, "cannot decline the invite"),
                }
            });
            return;
        }
        let bot = self.clone();
        tokio::spawn(async move {
            // At most MATRIX_MAX_CONCURRENT_PROVISIONING first contacts at once, from the join
            // on (a flood of invites is not joined all at once).
            let Ok(_permit) = bot.runtime().limits().provisioning.acquire().await else {
                return;
            };
            let direct = bot.invited_as_direct(&room).await;
            if let Err(error) = bot.join(&room).await {
                tracing::warn!(%room_id, %inviter, error = format!("{error:#}"), "cannot join; giving up on this invite");
                return;
            }
            if let Some(why) = bot.group_room(&room, &inviter, direct).await {
                bot.leave_group_room(&room, &why).await;
                return;
            }
            let lock = bot.runtime().people().get(&inviter);
            let _serialised = lock.lock().await;
            if bot.too_many_dms(&inviter, &room).await {
                return;
            }
            if let Err(error) = bot.provision(&inviter, &room).await {
                tracing::error!(%room_id, person = %inviter, error = format!("{error:#}"), "provisioning failed");
                let _ = bot.outbox().say(&room, &bot.texts().command_failed()).await;
            }
        });
    }

    /// A direct chat over `MATRIX_MAX_DMS_PER_USER`: the person is told, and the bot leaves it
    /// (nothing is recorded). Caller holds the person's lock.
    async fn too_many_dms(&self, person: &str, room: &Room) -> bool {
        let max = self.settings().limits.max_dms_per_user;
        let dms = match self.store().rooms_of(person) {
            Ok(rooms) => rooms
                .iter()
                .filter(|r| r.kind == RoomKind::Dm && r.room_id != room.room_id().as_str())
                .count(),
            Err(error) => {
                tracing::error!(%error, "cannot read the cache to count direct chats");
                0
            }
        };
        if dms < max as usize {
            return false;
        }
        tracing::info!(room_id = %room.room_id(), person, dms, max, "over MATRIX_MAX_DMS_PER_USER; leaving the new direct chat");
        if let Err(error) = self
            .outbox()
            .say(room, &self.texts().too_many_dms(max))
            .await
        {
            tracing::warn!(%error, "cannot tell the person why the bot leaves");
        }
        // A plain leave: forgetting the room at once upsets the sync connection (see `leaving`).
        let request = leave_room::v3::Request::new(room.room_id().to_owned());
        if let Err(error) = room.client().send(request).await {
            tracing::warn!(room_id = %room.room_id(), %error, "cannot leave a direct chat over the limit");
        }
        true
    }

    async fn join(&self, room: &Room) -> anyhow::Result<()> {
        let mut tries = JOIN.start();
        loop {
            let error = match room.join().await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let Some(wait) = tries.failed() else {
                return Err(error.into());
            };
            tracing::info!(room_id = %room.room_id(), %error, retry_in_ms = wait.as_millis() as u64, "join failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Provisions `person` from the direct chat `dm`. Caller holds the person's lock.
    async fn provision(&self, person: &str, dm: &Room) -> anyhow::Result<()> {
        let owner = OwnedUserId::try_from(person).context("inviter is not a user id")?;
        let dm_id = dm.room_id().as_str();
        if let Some(record) = self.room_record(dm_id)? {
            if record.kind != RoomKind::Dm {
                tracing::info!(room_id = dm_id, kind = ?record.kind, "re-joined a managed room; nothing to provision");
                return Ok(());
            }
        }
        // Server first: the direct chat's record, private to the bot.
        let record = DmRecord {
            owner: person.to_owned(),
            version: VERSION,
        };
        crate::records::write_dm_record(dm, &record).await?;
        let mut user = self
            .store()
            .user(person)?
            .unwrap_or_else(|| UserRecord::new(person));
        user.dm_room_id = Some(dm_id.to_owned());
        let dm_row = Change::PutRoom(RoomRecord {
            room_id: dm_id.to_owned(),
            owner: person.to_owned(),
            kind: RoomKind::Dm,
            chat_id: None,
        });

        let known_space = match user.space_id.clone() {
            Some(space) => Some(space),
            None => self
                .find_space_of(person)
                .await?
                .map(|room| room.room_id().to_string()),
        };
        if let Some(space) = known_space {
            user.space_id = Some(space.clone());
            self.store()
                .apply(&[Change::PutUser(user), dm_row, space_row(&space, person)])?;
            tracing::info!(person, room_id = dm_id, space_id = %space, "person already has a space; recorded another direct chat");
            self.outbox().say(dm, &self.texts().welcome_back()).await?;
            return Ok(());
        }
        self.store()
            .apply(&[Change::PutUser(user.clone()), dm_row])?;

        // The Space, its marker at 0: no chat made yet (what resume looks at to tell a Space a
        // crash left without C1 from one whose chats were all deleted).
        let marker = SpaceMarker {
            owner: person.to_owned(),
            last_chat_index: 0,
            version: VERSION,
        };
        let request = template::space(
            &owner,
            self.texts().space_name(),
            self.texts().space_topic(),
            &marker,
        );
        let space = self
            .create_room_once(request, Sought::Space { owner: person })
            .await
            .context("cannot create the space")?;
        let space_id = space.room_id().to_string();
        user.space_id = Some(space_id.clone());
        self.store()
            .apply(&[Change::PutUser(user), space_row(&space_id, person)])?;
        tracing::info!(person, space_id = %space_id, "space created");
        crate::crash_point!("after-space-before-c1");

        // C1's cause is the direct chat it was made for: the invite arrives as stripped state,
        // which carries no event id.
        let chat = self.create_first_chat(&owner, &space, dm_id).await?;
        self.outbox().say(dm, &self.texts().welcome(&chat)).await?;
        Ok(())
    }
}

fn space_row(space: &str, person: &str) -> Change {
    Change::PutRoom(RoomRecord {
        room_id: space.to_owned(),
        owner: person.to_owned(),
        kind: RoomKind::Space,
        chat_id: None,
    })
}
