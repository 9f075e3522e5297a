//! The startup snapshot over simplified sliding sync (MSC4186): every room with only the state the
//! bot reads, in two lists — the Spaces without events, every other room with its latest events
//! (catch-up judges them; a Space has no conversation) — and a third of the invites, in as few
//! requests as the server allows. It is a one-off connection: nothing of it is saved, and live
//! traffic runs on `/sync` v2 ([`super::v2`]). The v2 requests around it carry encryption,
//! to-device messages and global account data; the snapshot asks only for the rooms' account data
//! (direct-chat records).
//!
//! Measured (docs/BENCHMARKS.md, "The snapshot's latest events apart or in two lists"): the
//! latest events are most of what the snapshot costs the homeserver, but asking for them in a
//! second request costs about as much again (the homeserver's work per room is paid twice), so
//! they stay in the one request, only where catch-up needs them.

use crate::markers::{CHAT_MARKER, SETTINGS_RECORD, SPACE_MARKER};
use matrix_sdk::ruma::api::client::sync::sync_events::v5::request;
use matrix_sdk::ruma::directory::RoomTypeFilter;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::sliding_sync::{
    SlidingSync, SlidingSyncList, SlidingSyncListBuilder, SlidingSyncListLoadingState,
    SlidingSyncMode, Version,
};
use matrix_sdk::Client;
use std::time::Duration;

/// The Spaces the bot is in or invited to.
const SPACES: &str = "spaces";
/// Every other room the bot is in or invited to.
const ROOMS: &str = "rooms";
/// The invites, whatever their type: the homeserver leaves a room out of a list filtered by
/// type when it cannot tell the type (an invite whose invite state lacks the create event, as
/// from servers before MSC4311), and a pending invite must not be missed.
const INVITES: &str = "invites";
/// Rooms per request while the list grows; a bot in fewer rooms loads them in one request.
const BATCH: u32 = 10_000;
/// How long one snapshot request may take (Synapse answers 5,000 rooms in well under this).
const NETWORK_TIMEOUT: Duration = Duration::from_secs(300);

/// The state events the bot reads from the SDK store: what reconcile, encryption and the
/// handlers need, nothing else. Of the members only the bot's own: the SDK counts a room's
/// members complete only after `GET /members` (which it asks before the first encrypted send
/// to a room either way), so every member here bought encryption nothing (at two members a
/// room they cost little either: docs/BENCHMARKS.md); the few reads that need the members ask
/// for them ([`crate::records::members`], `!invite`).
fn required_state() -> Vec<(StateEventType, String)> {
    let any = || "*".to_owned();
    let me = || "$ME".to_owned();
    let empty = String::new;
    vec![
        (StateEventType::RoomCreate, empty()),
        (StateEventType::RoomName, empty()),
        (StateEventType::RoomEncryption, empty()),
        (StateEventType::RoomHistoryVisibility, empty()),
        (StateEventType::RoomJoinRules, empty()),
        (StateEventType::RoomPowerLevels, empty()),
        (StateEventType::RoomTombstone, empty()),
        (StateEventType::RoomMember, me()),
        (StateEventType::SpaceChild, any()),
        (StateEventType::SpaceParent, any()),
        (StateEventType::from(SPACE_MARKER), empty()),
        (StateEventType::from(CHAT_MARKER), empty()),
        (StateEventType::from(SETTINGS_RECORD), empty()),
    ]
}

/// One list of the rooms `filters` let through, with `timeline` latest events each.
fn list(name: &str, filters: request::ListFilters, timeline: u32) -> SlidingSyncListBuilder {
    SlidingSyncList::builder(name)
        .sync_mode(SlidingSyncMode::new_growing(BATCH))
        .required_state(required_state())
        .filters(Some(filters))
        .timeline_limit(timeline)
}

/// The lists: Spaces without events, other rooms with their latest events, invites.
fn lists() -> [SlidingSyncListBuilder; 3] {
    let mut spaces = request::ListFilters::default();
    spaces.room_types = vec![RoomTypeFilter::Space];
    let mut rooms = request::ListFilters::default();
    rooms.not_room_types = vec![RoomTypeFilter::Space];
    let mut invites = request::ListFilters::default();
    invites.is_invite = Some(true);
    [
        list(SPACES, spaces, 0),
        list(ROOMS, rooms, super::TIMELINE_LIMIT),
        list(INVITES, invites, 0),
    ]
}

/// A new one-off connection (no request yet); `name` tells connections apart on the server.
async fn connect(client: &Client, name: &str) -> Result<SlidingSync, matrix_sdk::Error> {
    let mut account_data = request::AccountData::default();
    account_data.enabled = Some(true);
    let [spaces, rooms, invites] = lists();
    client
        .sliding_sync(name)?
        .version(Version::Native)
        .add_list(spaces)
        .add_list(rooms)
        .add_list(invites)
        .with_account_data_extension(account_data)
        .network_timeout(NETWORK_TIMEOUT)
        .build()
        .await
}

/// Loads every room into the SDK store. Returns the number of requests made.
pub async fn snapshot(client: &Client, name: &str) -> Result<usize, matrix_sdk::Error> {
    let sync = connect(client, name).await?;
    let mut requests = 0;
    loop {
        requests += 1;
        sync.sync_once().await?;
        let mut loaded = true;
        for list in [SPACES, ROOMS, INVITES] {
            let state = sync
                .on_list(list, |list| std::future::ready(list.state()))
                .await;
            loaded &= state == Some(SlidingSyncListLoadingState::FullyLoaded);
        }
        if loaded {
            return Ok(requests);
        }
    }
}

/// Whether `error` says the homeserver does not offer simplified sliding sync.
pub fn unsupported(error: &matrix_sdk::Error) -> bool {
    use matrix_sdk::ruma::api::error::ErrorKind;
    error.client_api_error_kind() == Some(&ErrorKind::Unrecognized)
        || error
            .as_client_api_error()
            .is_some_and(|e| e.status_code.as_u16() == 404 || e.status_code.as_u16() == 405)
}
