//! An invite: from someone not allowed, declined; into a group room, told and left
//! (`groups`); from an allowed person into a direct chat, recorded, joined and provisioned
//! (`lifecycle::first_contact`).

use crate::bot::lifecycle::forget_when_synced;
use crate::bot::Bot;
use crate::markers::{DmRecord, VERSION};
use crate::retry::Policy;
use lambda_matrix_core::RoomKind;
use matrix_sdk::ruma::api::client::membership::leave_room;
use matrix_sdk::Room;
use std::time::Duration;

/// Joins: 0.5 s doubling to 30 s between tries, eight tries (about a minute in all).
const JOIN: Policy = Policy::doubling(Duration::from_millis(500), Duration::from_secs(30)).tries(8);
/// First contacts the homeserver refused (a room creation refused or rate-limited): 5 s
/// doubling, three tries (about half a minute); after that, the next start finishes it.
const PROVISION: Policy =
    Policy::doubling(Duration::from_secs(5), Duration::from_secs(20)).tries(3);

impl Bot {
    /// Accepts an invite from an allowed person (joining off the handler, with backoff) and
    /// provisions them, unless the room is a group room (see `groups`); declines anyone else.
    pub(crate) fn handle_invite(&self, inviter: String, room: Room) {
        let room_id = room.room_id().to_owned();
        if !self.settings().is_allowed(&inviter) {
            tracing::info!(%room_id, %inviter, "declining an invite: the inviter is not in MATRIX_ALLOWED_USERS");
            self.spawn_errand(async move {
                // A plain leave, then forgotten once a sync has shown it, so a stranger's room
                // leaves nothing behind in the store (see `leaving::forget_when_synced`). A stop
                // waits for the leave, not for that sync (which a stop ends).
                let updates = room.client().subscribe_to_all_room_updates();
                let request = leave_room::v3::Request::new(room_id.clone());
                match room.client().send(request).await {
                    Ok(_) => {
                        tokio::spawn(forget_when_synced(room, updates));
                    }
                    Err(error) => tracing::warn!(%room_id, %error, "cannot decline the invite"),
                }
            });
            return;
        }
        let bot = self.clone();
        self.spawn_errand(async move {
            // At most MATRIX_MAX_CONCURRENT_PROVISIONING first contacts at once, from the join
            // on (a flood of invites is not joined all at once).
            let Ok(_permit) = bot.runtime().limits().provisioning.acquire().await else {
                return;
            };
            bot.first_contact(&inviter, &room).await;
        });
    }

    /// An allowed person's invite into `room`: a direct chat is recorded (server first, before
    /// the join, so a crash anywhere after it leaves a record resume finishes), joined, and
    /// provisioned, with a few tries over a couple of minutes when the homeserver refuses a
    /// room; a group room is told and left. Caller holds a provisioning permit.
    async fn first_contact(&self, inviter: &str, room: &Room) {
        let room_id = room.room_id();
        let direct = self.invited_as_direct(room).await;
        if direct {
            let record = DmRecord {
                owner: inviter.to_owned(),
                version: VERSION,
            };
            if let Err(error) = crate::records::write_dm_record(room, &record).await {
                tracing::warn!(%room_id, %inviter, error = format!("{error:#}"), "cannot record the direct chat; giving up on this invite until the next start");
                return;
            }
            crate::crash_point!("after-dm-record-before-join");
        }
        if let Err(error) = self.join(room).await {
            tracing::warn!(%room_id, %inviter, error = format!("{error:#}"), "cannot join; giving up on this invite");
            return;
        }
        crate::crash_point!("after-join-before-space");
        if let Some(why) = self.group_room(room, inviter, direct).await {
            if direct {
                self.erase_dm_record_of(room).await;
            }
            self.leave_group_room(room, &why).await;
            return;
        }
        let lock = self.runtime().people().get(inviter);
        let _serialised = lock.lock().await;
        if self.too_many_dms(inviter, room).await {
            self.erase_dm_record_of(room).await;
            return;
        }
        let mut tries = PROVISION.start();
        loop {
            let Err(error) = self.provision(inviter, room).await else {
                return;
            };
            if let Some(wait) = tries.failed() {
                tracing::info!(%room_id, person = %inviter, error = format!("{error:#}"), retry_in_ms = wait.as_millis() as u64, "first contact failed; trying again");
                tokio::time::sleep(wait).await;
                continue;
            }
            tracing::error!(%room_id, person = %inviter, error = format!("{error:#}"), "provisioning failed");
            let _ = self
                .outbox()
                .say(room, &self.texts().command_failed())
                .await;
            return;
        }
    }

    /// Erases the record written before the join of a room the bot leaves again (a failure is
    /// logged: a record of a room the bot is not in is never read).
    async fn erase_dm_record_of(&self, room: &Room) {
        if let Err(error) = crate::records::erase_dm_record(room).await {
            tracing::warn!(room_id = %room.room_id(), error = format!("{error:#}"), "cannot erase a direct chat record yet");
        }
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
        // A plain leave, then forgotten once a sync has shown it (forgetting at once upsets
        // the sync connection, see `leaving`), so the room leaves nothing behind in the store.
        let updates = room.client().subscribe_to_all_room_updates();
        let request = leave_room::v3::Request::new(room.room_id().to_owned());
        match room.client().send(request).await {
            Ok(_) => {
                tokio::spawn(forget_when_synced(room.clone(), updates));
            }
            Err(error) => {
                tracing::warn!(room_id = %room.room_id(), %error, "cannot leave a direct chat over the limit")
            }
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
}
