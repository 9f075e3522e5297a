//! The room template (docs/DESIGN.md "Room template"): how the bot's Spaces and chat rooms are
//! made.
//!
//! `private_chat` preset (never `trusted_private_chat`, which makes invitees admins); the bot
//! alone may change markers, Space links, power levels, encryption, join rules and tombstones
//! (so the room cannot be upgraded away) and redact others' events; the owner may chat, rename,
//! set topic and avatar, and redact their own messages. `users` is left to the server's default:
//! in room version 12 the creator is not listed there (it has unlimited power), in earlier
//! versions the server lists the creator at 100.

use crate::markers::{ChatMarker, SpaceMarker, CHAT_MARKER, SETTINGS_RECORD, SPACE_MARKER};
use matrix_sdk::ruma::api::client::room::create_room::v3::{
    Request as CreateRoomRequest, RoomPreset,
};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::OwnedUserId;
use serde_json::{json, Value};

/// Power levels for every room the bot makes.
pub fn power_levels() -> Value {
    json!({
        "users_default": 0,
        "events_default": 0,
        "state_default": 100,
        "invite": 100,
        "kick": 100,
        "ban": 100,
        "redact": 100,
        "notifications": { "room": 100 },
        "events": {
            "m.room.name": 0,
            "m.room.topic": 0,
            "m.room.avatar": 0,
            "m.room.redaction": 0,
            "m.reaction": 0,
            "m.room.power_levels": 100,
            "m.room.tombstone": 100,
            "m.room.encryption": 100,
            "m.room.join_rules": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 100,
            "m.room.server_acl": 100,
            "m.room.pinned_events": 100,
            "m.space.child": 100,
            "m.space.parent": 100,
            SPACE_MARKER: 100,
            CHAT_MARKER: 100,
            SETTINGS_RECORD: 100,
        }
    })
}

pub(crate) fn raw<T>(value: Value) -> Raw<T> {
    // Serialising a `serde_json::Value` cannot fail.
    Raw::from_json_string(value.to_string()).unwrap_or_else(|_| unreachable!("valid JSON"))
}

fn state(event_type: &str, state_key: &str, content: Value) -> Value {
    json!({ "type": event_type, "state_key": state_key, "content": content })
}

fn base(name: String, invite: &OwnedUserId) -> CreateRoomRequest {
    let mut request = CreateRoomRequest::new();
    request.preset = Some(RoomPreset::PrivateChat);
    request.name = Some(name);
    request.invite = vec![invite.clone()];
    request.power_level_content_override = Some(raw(power_levels()));
    request
}

/// A person's Space, with its marker.
pub fn space(
    owner: &OwnedUserId,
    name: String,
    topic: String,
    marker: &SpaceMarker,
) -> CreateRoomRequest {
    let mut request = base(name, owner);
    request.topic = Some(topic);
    request.creation_content = Some(raw(json!({ "type": "m.space" })));
    request.initial_state = vec![
        raw(state(SPACE_MARKER, "", json!(marker))),
        raw(state(
            "m.room.history_visibility",
            "",
            json!({ "history_visibility": "invited" }),
        )),
    ];
    request
}

/// `request` claiming the local alias `#<claim>:<server>` (see `bot/lifecycle/claim.rs`): the
/// homeserver refuses a second room with the same claim. The alias stays unpublished: an empty
/// `m.room.canonical_alias` keeps the server from naming it the room's address.
pub fn claimed(request: &CreateRoomRequest, claim: &str) -> CreateRoomRequest {
    let mut request = request.clone();
    request.room_alias_name = Some(claim.to_owned());
    request
        .initial_state
        .push(raw(state("m.room.canonical_alias", "", json!({}))));
    request
}

/// A chat room inside `space`, with its marker and `m.space.parent` link.
pub fn chat_room(
    owner: &OwnedUserId,
    name: String,
    marker: &ChatMarker,
    space: &str,
    via: &str,
    encrypted: bool,
) -> CreateRoomRequest {
    let mut request = base(name, owner);
    let mut initial = vec![
        raw(state(CHAT_MARKER, "", json!(marker))),
        raw(state(
            "m.space.parent",
            space,
            json!({ "via": [via], "canonical": true }),
        )),
    ];
    if encrypted {
        initial.push(raw(state(
            "m.room.encryption",
            "",
            json!({ "algorithm": "m.megolm.v1.aes-sha2" }),
        )));
    }
    request.initial_state = initial;
    request
}
