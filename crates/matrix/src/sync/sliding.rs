//! The startup snapshot over simplified sliding sync (MSC4186): one list of every room with only
//! the state the bot reads and each room's latest events, in as few requests as the server
//! allows. It is a one-off connection: nothing of it is saved, and live traffic runs on `/sync`
//! v2 ([`super::v2`]). The v2 requests around it carry encryption, to-device messages and global
//! account data; the snapshot asks only for the rooms' account data (direct-chat records).

use crate::markers::{CHAT_MARKER, SPACE_MARKER};
use matrix_sdk::ruma::api::client::sync::sync_events::v5::request as extensions;
use matrix_sdk::ruma::events::StateEventType;
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
        .timeline_limit(super::TIMELINE_LIMIT);
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

/// Whether `error` says the homeserver does not offer simplified sliding sync.
pub fn unsupported(error: &matrix_sdk::Error) -> bool {
    use matrix_sdk::ruma::api::error::ErrorKind;
    error.client_api_error_kind() == Some(&ErrorKind::Unrecognized)
        || error
            .as_client_api_error()
            .is_some_and(|e| e.status_code.as_u16() == 404 || e.status_code.as_u16() == 405)
}
