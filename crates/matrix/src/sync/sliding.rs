//! The startup snapshot over simplified sliding sync (MSC4186): one list of every room with only
//! the state the bot reads, no events, in as few requests as the server allows. It is a one-off
//! connection: nothing of it is saved, and live traffic runs on `/sync` v2 ([`super::v2`]). The
//! v2 requests around it carry encryption, to-device messages and global account data; the
//! snapshot asks only for the rooms' account data (direct-chat records).
//!
//! The rooms' latest events, which catch-up judges, come from a second request ([`latest`]):
//! only for rooms that are not Spaces, without state, read as they are (not through the SDK
//! store), and made while the bot reconciles. The latest events are most of what a snapshot
//! costs the homeserver (docs/BENCHMARKS.md, "What the snapshot costs"), so asking for them
//! apart lets the bot's own start-up work run while the homeserver gathers them.

use super::Window;
use crate::markers::{CHAT_MARKER, SPACE_MARKER};
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::sync::sync_events::v5;
use matrix_sdk::ruma::api::client::sync::sync_events::v5::request as extensions;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::ruma::directory::RoomTypeFilter;
use matrix_sdk::ruma::UInt;
use matrix_sdk::sliding_sync::{
    SlidingSync, SlidingSyncList, SlidingSyncListLoadingState, SlidingSyncMode, Version,
};
use matrix_sdk::Client;
use std::time::Duration;

/// The one list: every room the bot is in or invited to.
const ALL_ROOMS: &str = "all";
/// Rooms per request while the list grows; a bot in fewer rooms loads them in one request.
const BATCH: u32 = 10_000;
/// How long one snapshot request may take (Synapse answers 5,000 rooms in well under this).
const NETWORK_TIMEOUT: Duration = Duration::from_secs(300);

/// The state events the bot reads from the SDK store: what reconcile, encryption and the
/// handlers need, nothing else.
fn required_state() -> Vec<(StateEventType, String)> {
    let any = || "*".to_owned();
    let empty = String::new;
    vec![
        (StateEventType::RoomCreate, empty()),
        (StateEventType::RoomName, empty()),
        (StateEventType::RoomEncryption, empty()),
        (StateEventType::RoomHistoryVisibility, empty()),
        (StateEventType::RoomJoinRules, empty()),
        (StateEventType::RoomPowerLevels, empty()),
        (StateEventType::RoomTombstone, empty()),
        (StateEventType::RoomMember, any()),
        (StateEventType::SpaceChild, any()),
        (StateEventType::SpaceParent, any()),
        (StateEventType::from(SPACE_MARKER), empty()),
        (StateEventType::from(CHAT_MARKER), empty()),
    ]
}

/// A new one-off connection (no request yet); `name` tells connections apart on the server.
async fn connect(client: &Client, name: &str) -> Result<SlidingSync, matrix_sdk::Error> {
    let list = SlidingSyncList::builder(ALL_ROOMS)
        .sync_mode(SlidingSyncMode::new_growing(BATCH))
        .required_state(required_state())
        .timeline_limit(0);
    let mut account_data = extensions::AccountData::default();
    account_data.enabled = Some(true);
    client
        .sliding_sync(name)?
        .version(Version::Native)
        .add_list(list)
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
        let state = sync
            .on_list(ALL_ROOMS, |list| std::future::ready(list.state()))
            .await;
        if state == Some(SlidingSyncListLoadingState::FullyLoaded) {
            return Ok(requests);
        }
    }
}

/// The latest events ([`super::TIMELINE_LIMIT`]) of every room that is not a Space, as the
/// homeserver sends them (encrypted events stay encrypted: catch-up reads the relations, which
/// are in the clear). A one-off connection named `name`; rooms are asked for [`BATCH`] at a
/// time. Should be asked after the position the live loop continues from was taken, so
/// that every event is either here or after that position.
pub async fn latest(client: &Client, name: &str) -> Result<Vec<Window>, matrix_sdk::Error> {
    const LIST: &str = "latest";
    let config = RequestConfig::new()
        .timeout(NETWORK_TIMEOUT)
        .retry_limit(3);
    let mut windows = Vec::new();
    let (mut pos, mut start) = (None, 0u32);
    loop {
        let mut list = v5::request::List::default();
        list.ranges = vec![(UInt::from(start), UInt::from(start + BATCH - 1))];
        list.room_details.timeline_limit = UInt::from(super::TIMELINE_LIMIT);
        // Synapse wants some state asked for; the smallest there is.
        list.room_details.required_state = vec![(StateEventType::RoomCreate, String::new())];
        let mut filters = v5::request::ListFilters::default();
        filters.not_room_types = vec![RoomTypeFilter::Space];
        filters.is_invite = Some(false);
        list.filters = Some(filters);
        let mut request = v5::Request::new();
        request.conn_id = Some(name.to_owned());
        request.pos = pos.take();
        request.timeout = Some(Duration::ZERO);
        request.lists.insert(LIST.to_owned(), list);
        let response = client
            .send(request)
            .with_request_config(config)
            .await
            .map_err(matrix_sdk::Error::from)?;
        for (room_id, room) in response.rooms {
            let events = room
                .timeline
                .iter()
                .filter_map(|raw| raw.deserialize_as::<serde_json::Value>().ok())
                .collect();
            windows.push(Window {
                room_id,
                events,
                limited: room.limited,
            });
        }
        let count = response
            .lists
            .get(LIST)
            .map_or(0, |list| u64::from(list.count));
        start += BATCH;
        if u64::from(start) >= count {
            return Ok(windows);
        }
        pos = Some(response.pos);
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
