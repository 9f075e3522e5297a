//! The bot's server-side records, read from the SDK store (no requests; the exceptions, a room's
//! state the store has not got yet: a chat marker, the room a claim leads to) and written to the
//! homeserver: the Space and chat markers, the direct-chat record, the Space's links, the
//! members, and the leaving record.
//! Reconcile and the running bot both go through here; their shapes are in [`crate::markers`].
//! A chat's settings have one writer in the process too ([`SettingsWriter`]). (Markers a room
//! is created with are its initial state, in `template.rs`; the part marks of answers are
//! written with the answers, in `bot/outbox/events.rs`; the rooms-in-flight set is local, in
//! `bot/runtime/inflight.rs`.)
//!
//! Every read returns a `Result`: a record that is absent is `Ok(None)`, a record the store
//! could not read is an `Err` — never "no record". A caller that cannot tell what the server
//! says must not act as if it said nothing (reconcile skips such a room and deletes no row).

use crate::markers::{
    self, ChatMarker, ChatSettings, DmRecord, LeavingRecord, Refused, SpaceMarker, CHAT_MARKER,
    DM_RECORD, LEAVING_RECORD, LIFT_RECORD, REFUSED_RECORD, SETTINGS_RECORD, SPACE_MARKER,
    USAGE_RECORD,
};
use anyhow::Context;
use matrix_sdk::deserialized_responses::RawAnySyncOrStrippedState;
use matrix_sdk::ruma::api::client::state::get_state_events;
use matrix_sdk::ruma::events::{
    GlobalAccountDataEventType, RoomAccountDataEventType, StateEventType,
};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use matrix_sdk::{Client, Room, RoomState};
use std::collections::{BTreeSet, HashMap};

/// Why a record could not be read.
pub type ReadError = String;

/// A record as read from the server, before trust rules are applied by the planner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read<T> {
    /// Sent by the bot, known version, well-formed.
    Trusted(T),
    /// Present but not usable (foreign sender, unknown version, malformed): the reason.
    Rejected(String),
}

impl<T> Read<T> {
    /// The record if it is trusted.
    pub fn trusted(self) -> Option<T> {
        match self {
            Read::Trusted(value) => Some(value),
            Read::Rejected(_) => None,
        }
    }
}

fn judged<T>(result: Result<T, markers::MarkerError>) -> Read<T> {
    match result {
        Ok(value) => Read::Trusted(value),
        Err(error) => Read::Rejected(error.to_string()),
    }
}

/// A state event's JSON; `None` if absent or only stripped (an invite).
pub async fn state(
    room: &Room,
    event_type: &str,
    key: &str,
) -> Result<Option<serde_json::Value>, ReadError> {
    let event = room
        .get_state_event(StateEventType::from(event_type), key)
        .await
        .map_err(|error| format!("cannot read {event_type} from the store: {error}"))?;
    match event {
        Some(RawAnySyncOrStrippedState::Sync(raw)) => raw
            .deserialize_as()
            .map(Some)
            .map_err(|error| format!("{event_type} is not JSON: {error}")),
        Some(RawAnySyncOrStrippedState::Stripped(_)) | None => Ok(None),
    }
}

/// The room's Space marker, judged against the bot's confirmed id `bot`.
pub async fn space_marker(room: &Room, bot: &str) -> Result<Option<Read<SpaceMarker>>, ReadError> {
    Ok(state(room, SPACE_MARKER, "")
        .await?
        .map(|json| judged(markers::read_state(&json, bot))))
}

/// The room's chat marker, judged against `bot`.
pub async fn chat_marker(room: &Room, bot: &str) -> Result<Option<Read<ChatMarker>>, ReadError> {
    Ok(state(room, CHAT_MARKER, "")
        .await?
        .map(|json| judged(markers::read_state(&json, bot))))
}

/// The room's chat marker as the homeserver has it now, judged against `bot`: for a room the
/// store has no state of yet (made or joined since the last sync got through). One request.
pub async fn chat_marker_on_server(
    room: &Room,
    bot: &str,
) -> Result<Option<Read<ChatMarker>>, ReadError> {
    let events = state_on_server(&room.client(), room.room_id())
        .await
        .map_err(|unread| unread.reason)?;
    Ok(record_among(&events, CHAT_MARKER, bot))
}

/// A room's state not read from the homeserver.
#[derive(Debug)]
pub struct Unread {
    pub reason: ReadError,
    /// Whether the homeserver answered (a refusal, or an answer that is not JSON); not: no
    /// answer at all, or a server error, which may pass.
    pub answered: bool,
}

/// The room's state as the homeserver has it now, each event as JSON (one request; refused
/// while the bot is not in the room).
pub async fn state_on_server(
    client: &Client,
    room_id: &RoomId,
) -> Result<Vec<serde_json::Value>, Unread> {
    let request = get_state_events::v3::Request::new(room_id.to_owned());
    let events = client
        .send(request)
        .await
        .map_err(|error| Unread {
            answered: error
                .as_client_api_error()
                .is_some_and(|api| api.status_code.is_client_error()),
            reason: format!("cannot read the room's state from the homeserver: {error}"),
        })?
        .room_state;
    events
        .iter()
        .map(|raw| {
            raw.deserialize_as().map_err(|error| Unread {
                reason: format!("a state event is not JSON: {error}"),
                answered: true,
            })
        })
        .collect()
}

/// The state event of `event_type` and `key` among the state `events`.
pub fn state_among<'a>(
    events: &'a [serde_json::Value],
    event_type: &str,
    key: &str,
) -> Option<&'a serde_json::Value> {
    events
        .iter()
        .find(|json| json["type"] == event_type && json["state_key"] == key)
}

/// The record of `event_type` (state key "") among the state `events`, judged against `bot`.
pub fn record_among<T: serde::de::DeserializeOwned>(
    events: &[serde_json::Value],
    event_type: &str,
    bot: &str,
) -> Option<Read<T>> {
    state_among(events, event_type, "").map(|json| judged(markers::read_state(json, bot)))
}

/// The direct-chat record (room account data, private to the bot).
pub async fn dm_record(room: &Room) -> Result<Option<Read<DmRecord>>, ReadError> {
    let raw = room
        .account_data(RoomAccountDataEventType::from(DM_RECORD))
        .await
        .map_err(|error| format!("cannot read the direct-chat record: {error}"))?;
    Ok(
        raw.map(|raw| match raw.deserialize_as::<serde_json::Value>() {
            Ok(json) => judged(markers::read_content(&json["content"])),
            Err(error) => Read::Rejected(format!("not JSON: {error}")),
        }),
    )
}

/// Until when the owner's messages in `room` were refused ([`Refused`], room account data);
/// `None` if none ever were. A record that is there but not the bot's known version is an error:
/// the caller cannot tell what was refused.
pub async fn refused_until(room: &Room) -> Result<Option<u64>, ReadError> {
    let raw = room
        .account_data(RoomAccountDataEventType::from(REFUSED_RECORD))
        .await
        .map_err(|error| format!("cannot read the refused-messages record: {error}"))?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let json = raw
        .deserialize_as::<serde_json::Value>()
        .map_err(|error| format!("the refused-messages record is not JSON: {error}"))?;
    markers::read_content::<Refused>(&json["content"])
        .map(|record| Some(record.until))
        .map_err(|error| format!("the refused-messages record is not usable: {error}"))
}

/// The content of a person's usage record (room account data of their Space), as synced.
pub async fn usage(space: &Room) -> Result<Option<serde_json::Value>, ReadError> {
    let raw = space
        .account_data(RoomAccountDataEventType::from(USAGE_RECORD))
        .await
        .map_err(|error| format!("cannot read the usage record: {error}"))?;
    raw.map(|raw| {
        raw.deserialize_as::<serde_json::Value>()
            .map(|json| json["content"].clone())
            .map_err(|error| format!("the usage record is not JSON: {error}"))
    })
    .transpose()
}

/// The UTC day (`YYYY-MM-DD`) a person's budgets are lifted for, as synced (`None`: none).
pub async fn lifted(space: &Room) -> Result<Option<String>, ReadError> {
    let raw = space
        .account_data(RoomAccountDataEventType::from(LIFT_RECORD))
        .await
        .map_err(|error| format!("cannot read the lift record: {error}"))?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let json = raw
        .deserialize_as::<serde_json::Value>()
        .map_err(|error| format!("the lift record is not JSON: {error}"))?;
    let content = &json["content"];
    markers::read_content::<serde_json::Value>(content)
        .map_err(|error| format!("the lift record is not usable: {error}"))?;
    Ok(content["day"].as_str().map(str::to_owned))
}

/// Writes a person's usage record (`content`) into their Space's room account data.
pub async fn write_usage(space: &Room, content: serde_json::Value) -> anyhow::Result<()> {
    let raw: Raw<_> = Raw::new(&content)?.cast_unchecked();
    space
        .set_account_data_raw(RoomAccountDataEventType::from(USAGE_RECORD), raw)
        .await
        .context("cannot write the usage record")?;
    Ok(())
}

/// Records that the owner's messages in `room` up to `until` (a send time) were refused.
pub async fn write_refused(room: &Room, until: u64) -> anyhow::Result<()> {
    let record = Refused {
        until,
        version: markers::VERSION,
    };
    let raw: Raw<_> = Raw::new(&serde_json::json!(record))?.cast_unchecked();
    room.set_account_data_raw(RoomAccountDataEventType::from(REFUSED_RECORD), raw)
        .await
        .context("cannot write the refused-messages record")?;
    Ok(())
}

/// The rooms a Space links (`m.space.child` sent by `bot`, non-empty content).
pub async fn space_children(room: &Room, bot: &str) -> Result<Vec<String>, ReadError> {
    let events = room
        .get_state_events(StateEventType::SpaceChild)
        .await
        .map_err(|error| format!("cannot read the Space's links: {error}"))?;
    let mut children = Vec::new();
    for raw in events {
        let RawAnySyncOrStrippedState::Sync(raw) = raw else {
            continue;
        };
        let Ok(json) = raw.deserialize_as::<serde_json::Value>() else {
            continue;
        };
        let linked = json["content"].as_object().is_some_and(|c| !c.is_empty());
        if linked && json["sender"] == bot {
            if let Some(key) = json["state_key"].as_str() {
                children.push(key.to_owned());
            }
        }
    }
    Ok(children)
}

/// Joined and invited members other than `bot`, sorted. The startup snapshot stores only the
/// bot's own member event, so a joined room's full list is asked of the homeserver first
/// (`GET /members`, once: the SDK keeps it current from then on); an invite's members come with
/// its invite state. Then read from the member events as stored (the SDK's member list also
/// loads profiles and display names, which reconcile does not need and which made this the
/// slowest read of a warm start).
pub async fn members(room: &Room, bot: &str) -> Result<Vec<String>, ReadError> {
    #[derive(serde::Deserialize)]
    struct Content {
        membership: String,
    }
    #[derive(serde::Deserialize)]
    struct Member {
        state_key: String,
        content: Content,
    }
    if room.state() == RoomState::Joined {
        room.sync_members()
            .await
            .map_err(|error| format!("cannot load the members: {error}"))?;
    }
    let events = room
        .get_state_events(StateEventType::RoomMember)
        .await
        .map_err(|error| format!("cannot read the members: {error}"))?;
    let mut members = Vec::new();
    for raw in events {
        // A member event without a membership admits nobody (the SDK skips it too).
        let Ok(member) = (match raw {
            RawAnySyncOrStrippedState::Sync(raw) => raw.deserialize_as_unchecked::<Member>(),
            RawAnySyncOrStrippedState::Stripped(raw) => raw.deserialize_as_unchecked::<Member>(),
        }) else {
            continue;
        };
        let present = matches!(member.content.membership.as_str(), "join" | "invite");
        if present && member.state_key != bot {
            members.push(member.state_key);
        }
    }
    members.sort();
    Ok(members)
}

/// The rooms in the leaving record as last synced. An unreadable record is an error (a room
/// being left must never be taken for a room to keep).
pub async fn leaving(client: &Client) -> Result<BTreeSet<String>, ReadError> {
    let raw = client
        .account()
        .account_data_raw(GlobalAccountDataEventType::from(LEAVING_RECORD))
        .await
        .map_err(|error| format!("cannot read the leaving record: {error}"))?;
    let Some(raw) = raw else {
        return Ok(BTreeSet::new());
    };
    let json = raw
        .deserialize_as::<serde_json::Value>()
        .map_err(|error| format!("the leaving record is not JSON: {error}"))?;
    let record = markers::read_content::<LeavingRecord>(&json)
        .map_err(|error| format!("the leaving record is unreadable: {error}"))?;
    Ok(record.rooms.into_iter().collect())
}

/// Writes the room's chat marker (state, sent by the bot).
pub async fn write_chat_marker(room: &Room, marker: &ChatMarker) -> anyhow::Result<()> {
    room.send_state_event_raw(CHAT_MARKER, "", serde_json::json!(marker))
        .await
        .context("cannot write the chat marker")?;
    Ok(())
}

/// Writes the Space's marker (state, sent by the bot).
pub async fn write_space_marker(space: &Room, marker: &SpaceMarker) -> anyhow::Result<()> {
    space
        .send_state_event_raw(SPACE_MARKER, "", serde_json::json!(marker))
        .await
        .context("cannot write the Space marker")?;
    Ok(())
}

/// Writes the direct chat's record (room account data, private to the bot).
pub async fn write_dm_record(room: &Room, record: &DmRecord) -> anyhow::Result<()> {
    let raw: Raw<_> = Raw::new(&serde_json::json!(record))?.cast_unchecked();
    room.set_account_data_raw(RoomAccountDataEventType::from(DM_RECORD), raw)
        .await
        .context("cannot write the direct chat record")?;
    Ok(())
}

/// Overwrites a direct chat's record with `{}` (room account data cannot be deleted).
pub async fn erase_dm_record(room: &Room) -> anyhow::Result<()> {
    let empty: Raw<_> = Raw::new(&serde_json::json!({}))?.cast_unchecked();
    room.set_account_data_raw(RoomAccountDataEventType::from(DM_RECORD), empty)
        .await
        .context("cannot erase the direct chat record")?;
    Ok(())
}

/// Writes the leaving record (the bot's global account data).
pub async fn write_leaving(client: &Client, record: &LeavingRecord) -> anyhow::Result<()> {
    let raw: Raw<_> = Raw::new(&serde_json::json!(record))?.cast_unchecked();
    client
        .account()
        .set_account_data_raw(GlobalAccountDataEventType::from(LEAVING_RECORD), raw)
        .await
        .context("cannot write the leaving record")?;
    Ok(())
}

/// The one writer of the leaving record in this process: changes one at a time, each from the
/// record as this process last wrote it (the synced copy can lag behind its own writes).
#[derive(Debug, Default)]
pub struct LeavingWriter {
    turn: tokio::sync::Mutex<()>,
    written: std::sync::Mutex<Option<BTreeSet<String>>>,
}

impl LeavingWriter {
    /// Waits for the turn to change the record; hold it while reading and writing.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// The record: as this process last wrote it, else as last synced. Unreadable is an error:
    /// writing only new rooms over it would drop the others.
    pub async fn current(&self, client: &Client) -> anyhow::Result<BTreeSet<String>> {
        let written = self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match written {
            Some(rooms) => Ok(rooms),
            None => leaving(client)
                .await
                .map_err(|error| anyhow::anyhow!("the leaving record cannot be read: {error}")),
        }
    }

    /// Writes `rooms` as the record.
    pub async fn write(&self, client: &Client, rooms: &BTreeSet<String>) -> anyhow::Result<()> {
        let record = LeavingRecord {
            rooms: rooms.iter().cloned().collect(),
            version: markers::VERSION,
        };
        write_leaving(client, &record).await?;
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(rooms.clone());
        Ok(())
    }
}

/// A chat's settings as synced (state, judged against `bot`).
pub async fn chat_settings(
    room: &Room,
    bot: &str,
) -> Result<Option<Read<ChatSettings>>, ReadError> {
    Ok(state(room, SETTINGS_RECORD, "")
        .await?
        .map(|json| judged(markers::read_state(&json, bot))))
}

/// The one writer of the chats' settings in this process, which also reads them: a room's
/// settings as this process last wrote them, else as synced (the synced copy can lag behind
/// the bot's own write, and a second command right after the first must not undo it).
#[derive(Debug, Default)]
pub struct SettingsWriter {
    written: std::sync::Mutex<HashMap<OwnedRoomId, ChatSettings>>,
}

impl SettingsWriter {
    /// The settings of `room`: none chosen when there is no record or it is not the bot's.
    pub async fn current(&self, room: &Room, bot: &str) -> Result<ChatSettings, ReadError> {
        let written = self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room.room_id())
            .cloned();
        if let Some(settings) = written {
            return Ok(settings);
        }
        Ok(match chat_settings(room, bot).await? {
            Some(Read::Trusted(settings)) => settings,
            Some(Read::Rejected(why)) => {
                tracing::info!(room_id = %room.room_id(), why, "a chat settings record not trusted; using the defaults");
                ChatSettings::default()
            }
            None => ChatSettings::default(),
        })
    }

    /// Forgets what this process wrote for `room` (a room the bot left for good).
    pub fn forget(&self, room: &matrix_sdk::ruma::RoomId) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(room);
    }

    /// Writes `settings` as the room's record (state, sent by the bot); then they are current.
    pub async fn write(&self, room: &Room, settings: &ChatSettings) -> anyhow::Result<()> {
        let settings = ChatSettings {
            version: markers::VERSION,
            ..settings.clone()
        };
        room.send_state_event_raw(SETTINGS_RECORD, "", serde_json::json!(settings))
            .await
            .context("cannot write the chat's settings")?;
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room.room_id().to_owned(), settings);
        Ok(())
    }
}
