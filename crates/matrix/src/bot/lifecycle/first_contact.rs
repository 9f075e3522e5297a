//! First contact: the person's direct chat recorded, their Space with chat C1 made (unless
//! they already have a Space), and the welcome. Started by an invite (`inbound::provision`);
//! finished by resume when a crash or a refused room creation left a recorded direct chat
//! without a Space.

use crate::bot::lifecycle::{forget_when_synced, Sought};
use crate::bot::Bot;
use crate::markers::{DmRecord, SpaceMarker, VERSION};
use crate::template;
use anyhow::Context;
use lambda_matrix_core::{Change, RoomKind, RoomRecord, UserRecord};
use matrix_sdk::ruma::api::client::membership::leave_room;
use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::{Room, RoomMemberships};

impl Bot {
    /// Provisions `person` from the direct chat `dm`. Caller holds the person's lock.
    pub(crate) async fn provision(&self, person: &str, dm: &Room) -> anyhow::Result<()> {
        let owner = OwnedUserId::try_from(person).context("inviter is not a user id")?;
        let dm_id = dm.room_id().as_str();
        if let Some(record) = self.room_record(dm_id)? {
            if record.kind != RoomKind::Dm {
                tracing::info!(room_id = dm_id, kind = ?record.kind, "re-joined a managed room; nothing to provision");
                return Ok(());
            }
        }
        // Server first: the direct chat's record, private to the bot (also written before the
        // join, `inbound::provision`; again here for a first contact resume finishes).
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
        let sought = Sought::Space {
            owner: person,
            cause: dm_id,
        };
        let made = self.create_room_once(request, sought).await;
        let space = made.context("cannot create the space")?.room;
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

    /// Says once why it leaves the group `room`, then leaves and forgets it.
    pub(crate) async fn leave_group_room(&self, room: &Room, why: &str) {
        tracing::info!(room_id = %room.room_id(), why, "invited into a room with other people; saying so and leaving");
        if let Err(error) = self.outbox().say(room, &self.texts().group_room()).await {
            tracing::warn!(%error, "cannot tell the person why the bot leaves");
        }
        let updates = room.client().subscribe_to_all_room_updates();
        let request = leave_room::v3::Request::new(room.room_id().to_owned());
        match room.client().send(request).await {
            // Forgotten off the errand: a stop waits for the leave, not for the sync that shows
            // it (which a stop ends).
            Ok(_) => {
                tokio::spawn(forget_when_synced(room.clone(), updates));
            }
            Err(error) => {
                tracing::warn!(room_id = %room.room_id(), %error, "cannot leave a group room")
            }
        }
    }

    /// The members of `room` (joined or invited) besides the bot and `except`.
    pub(crate) async fn others_in(&self, room: &Room, except: &str) -> anyhow::Result<Vec<String>> {
        let members = room
            .members(RoomMemberships::JOIN | RoomMemberships::INVITE)
            .await
            .context("cannot list the members")?;
        Ok(members
            .iter()
            .map(|m| m.user_id().to_string())
            .filter(|id| id != except && id != self.bot_id())
            .collect())
    }

    /// Resume: finishes the first contact of `owner`, whose direct chat `room_id` is recorded but
    /// who has no Space and no chat (a crash after the record, or a refused room creation). A
    /// person no longer allowed, or a room that turned out to have other members, is left as
    /// it is (the latter is told and left).
    pub(crate) async fn finish_first_contact(
        &self,
        owner: &str,
        room_id: &str,
    ) -> anyhow::Result<bool> {
        if !self.settings().is_allowed(owner) {
            tracing::info!(
                room_id,
                person = owner,
                "a first contact to finish, but the person is no longer allowed"
            );
            return Ok(false);
        }
        let room = self.room(room_id)?;
        let lock = self.runtime().people().get(owner);
        let _serialised = lock.lock().await;
        let others = self.others_in(&room, owner).await?;
        if !others.is_empty() {
            crate::records::erase_dm_record(&room).await?;
            let why = format!("other members: {}", others.join(", "));
            self.leave_group_room(&room, &why).await;
            return Ok(false);
        }
        self.provision(owner, &room).await?;
        tracing::info!(room_id, person = owner, "first contact finished");
        Ok(true)
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
