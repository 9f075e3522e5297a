//! The bot's rooms by id and by their trusted records: a person's Space (cache, or its marker
//! among the joined Spaces), a room's chat or Space marker. Each read is a `Result`: `Ok(None)`
//! is "there is none", `Err` is "could not tell", and the caller decides what that means.

use crate::bot::Bot;
use crate::markers::{ChatMarker, SpaceMarker};
use anyhow::Context;
use matrix_sdk::ruma::RoomId;
use matrix_sdk::{Room, RoomState};

impl Bot {
    /// A room the bot is in, by id (from the cache or a plan).
    pub(crate) fn room(&self, room_id: &str) -> anyhow::Result<Room> {
        let id = <&RoomId>::try_from(room_id).context("bad room id in the cache")?;
        self.client()
            .get_room(id)
            .with_context(|| format!("the bot is not in room {room_id}"))
    }

    /// The person's Space room, from the cache.
    pub(crate) fn space_room(&self, person: &str) -> anyhow::Result<Option<Room>> {
        let Some(space_id) = self.store().user(person)?.and_then(|u| u.space_id) else {
            return Ok(None);
        };
        Ok(Some(self.room(&space_id)?))
    }

    /// The trusted chat marker of a room (from the local store, no request).
    pub(crate) async fn chat_marker(&self, room: &Room) -> anyhow::Result<Option<ChatMarker>> {
        let marker = crate::records::chat_marker(room, self.bot_id())
            .await
            .map_err(|error| {
                anyhow::anyhow!("cannot read the chat marker of {}: {error}", room.room_id())
            })?;
        Ok(marker.and_then(|m| m.trusted()))
    }

    /// The trusted chat marker of a room the cache lists as a chat: from the local store, or,
    /// when the store has no marker yet (the room was made since the last sync got through,
    /// as when the sync fails during an outage), from the homeserver. A command replayed
    /// then must still find the room it made, and an archive must not write a marker without
    /// its cause.
    pub(crate) async fn listed_chat_marker(
        &self,
        room: &Room,
    ) -> anyhow::Result<Option<ChatMarker>> {
        if let Some(marker) = self.chat_marker(room).await? {
            return Ok(Some(marker));
        }
        // A room the bot is not in cannot be read (403): what the store has is all there is.
        if room.state() != RoomState::Joined {
            return Ok(None);
        }
        let marker = crate::records::chat_marker_on_server(room, self.bot_id())
            .await
            .map_err(|error| {
                anyhow::anyhow!("cannot read the chat marker of {}: {error}", room.room_id())
            })?;
        Ok(marker.and_then(|m| m.trusted()))
    }

    /// The trusted Space marker of a room (from the local store, no request).
    pub(crate) async fn space_marker(&self, room: &Room) -> anyhow::Result<Option<SpaceMarker>> {
        let marker = crate::records::space_marker(room, self.bot_id())
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot read the Space marker of {}: {error}",
                    room.room_id()
                )
            })?;
        Ok(marker.and_then(|m| m.trusted()))
    }

    /// The person's Space on the server, found by its marker among the joined Spaces (a Space
    /// marker counts only in a Space, as in reconcile). A Space whose marker cannot be read
    /// makes the answer unknown (`Err`), never "none": the caller would make a second Space.
    pub(crate) async fn find_space_of(&self, person: &str) -> anyhow::Result<Option<Room>> {
        for room in self
            .client()
            .joined_rooms()
            .into_iter()
            .filter(|room| room.is_space())
        {
            if self
                .space_marker(&room)
                .await?
                .is_some_and(|marker| marker.owner == person)
            {
                return Ok(Some(room));
            }
        }
        Ok(None)
    }
}
