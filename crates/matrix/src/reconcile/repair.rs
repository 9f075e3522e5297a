//! Runtime repair: one room met while running whose cache rows are missing is classified by the
//! planner's own rules from its records (read from the SDK store, no request), and only the
//! rows it implies that are missing are inserted ([`plan::inserts_only`]) — never a deletion
//! or an overwrite, so a repair cannot undo what a command in progress just wrote. When the
//! cache cannot be read, the rows the records imply stand in for it (nothing is written; the
//! next start moves a damaged cache aside and rebuilds it).
//!
//! Every function returns `Result`: `Ok(None)` is "the records say there is none", `Err` is
//! "could not tell"; the caller decides what an unreadable record means.

use super::plan::{self, Plan};
use super::snapshot::ServerRoom;
use crate::records::{self, Read};
use crate::strings::Texts;
use lambda_matrix_core::{CacheDump, Chat, ChatId, RoomRecord, Store};
use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use matrix_sdk::{Client, Room};
use std::collections::BTreeSet;

/// What a repair reads and writes, and the texts that name a chat without a name.
#[derive(Clone, Copy)]
pub struct Repair<'a> {
    /// The bot's client (its SDK store holds the records).
    pub client: &'a Client,
    /// The bot's user id: only its records are trusted.
    pub bot: &'a str,
    /// The cache.
    pub store: &'a dyn Store,
    /// The bot's texts (the default name of chat `C<n>`).
    pub texts: Texts,
}

impl std::fmt::Debug for Repair<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repair").field("bot", &self.bot).finish()
    }
}

impl Repair<'_> {
    /// Repairs the cache for `room_id` if its records name `sender` as the owner; returns the
    /// room's row after (`Ok(None)`: the records do not make it a room of `sender`'s). If the
    /// cache cannot be read, the row the records imply, nothing written.
    pub async fn room(&self, room_id: &str, sender: &str) -> anyhow::Result<Option<RoomRecord>> {
        let Some(server) = self.records_of(room_id, sender).await? else {
            return Ok(None);
        };
        let current = match self.store.dump() {
            Ok(current) => current,
            Err(error) => {
                tracing::error!(room_id, %error, "cannot read the cache; the room's records on the homeserver decide");
                return Ok(self.row_from_records(&server));
            }
        };
        let planned = self.plan_alone(&server, &current);
        let inserts = plan::inserts_only(&planned.changes, &current);
        self.store.apply(&inserts)?;
        tracing::info!(room_id, rows = inserts.len(), "repair on first access");
        Ok(self.store.room(room_id)?)
    }

    /// A chat as the room's records imply it, for when the cache cannot be read; `Ok(None)` if
    /// they do not name `owner` or hold another chat.
    pub async fn chat_from_records(
        &self,
        room_id: &str,
        owner: &str,
        id: ChatId,
    ) -> anyhow::Result<Option<Chat>> {
        let Some(server) = self.records_of(room_id, owner).await? else {
            return Ok(None);
        };
        let planned = self.plan_alone(&server, &CacheDump::default());
        Ok(planned
            .desired
            .chats
            .into_iter()
            .find(|chat| chat.owner == owner && chat.id == id && chat.room_id == room_id))
    }

    /// The rows the records of the rooms in `only` (every joined room if `None`) imply, for
    /// when the cache cannot be read (nothing written). A room whose records cannot be read
    /// is left out and logged: it has no row to go by.
    pub async fn rows_from_records(&self, only: Option<&BTreeSet<OwnedRoomId>>) -> Vec<RoomRecord> {
        let mut rows = Vec::new();
        for room in self.client.joined_rooms() {
            if only.is_some_and(|only| !only.contains(room.room_id())) {
                continue;
            }
            match self.records(&room).await {
                Ok(server) => rows.extend(self.row_from_records(&server)),
                Err(error) => {
                    tracing::warn!(room_id = %room.room_id(), %error, "the room's records cannot be read; its messages wait for a start that can");
                }
            }
        }
        rows
    }

    /// The row one room's records imply on their own (an empty cache beside them).
    fn row_from_records(&self, server: &ServerRoom) -> Option<RoomRecord> {
        let planned = self.plan_alone(server, &CacheDump::default());
        planned
            .desired
            .rooms
            .into_iter()
            .find(|row| row.room_id == server.room_id)
    }

    /// One room's records as reconcile reads them, if they name `sender` as the owner
    /// (`Ok(None)`: an unknown room, or not theirs).
    async fn records_of(&self, room_id: &str, sender: &str) -> anyhow::Result<Option<ServerRoom>> {
        let Some(room) = <&RoomId>::try_from(room_id)
            .ok()
            .and_then(|id| self.client.get_room(id))
        else {
            return Ok(None);
        };
        let server = self.records(&room).await?;
        if !owned_by(&server, sender) {
            tracing::info!(
                room_id,
                sender,
                "not repaired: the room's records do not name the sender"
            );
            return Ok(None);
        }
        Ok(Some(server))
    }

    /// One room's records as reconcile reads them (the SDK store; `/members` only for a room
    /// no record claims), with the leaving record.
    async fn records(&self, room: &Room) -> anyhow::Result<ServerRoom> {
        let mut server = super::server_room(room, self.bot).await;
        match records::leaving(self.client).await {
            Ok(leaving) => server.leaving = leaving.contains(room.room_id().as_str()),
            Err(error) => server.unreadable = Some(error),
        }
        match server.unreadable {
            Some(error) => Err(anyhow::anyhow!(
                "the room's records cannot be read: {error}"
            )),
            None => Ok(server),
        }
    }

    /// The planner's view of one room against `current`.
    fn plan_alone(&self, server: &ServerRoom, current: &CacheDump) -> Plan {
        let texts = self.texts;
        plan::plan(std::slice::from_ref(server), current, &move |id| {
            texts.chat_name(id)
        })
    }
}

/// Whether the room's trusted records (Space marker, chat marker or direct-chat record) name
/// `person` as its owner.
fn owned_by(room: &ServerRoom, person: &str) -> bool {
    matches!(&room.space_marker, Some(Read::Trusted(m)) if m.owner == person)
        || matches!(&room.chat_marker, Some(Read::Trusted(m)) if m.owner == person)
        || matches!(&room.dm_record, Some(Read::Trusted(r)) if r.owner == person)
}
