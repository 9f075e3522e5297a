//! Syncing with the homeserver over simplified sliding sync (MSC4186): one list of every room
//! with only the state the bot reads, then a long-poll loop that survives errors.
//!
//! The connection position is kept in the SDK store (`share_pos`), so a restart with the store
//! continues where it stopped and the first response only carries what changed. Losing the
//! store starts a new connection (every room once, with its latest events). The decision and
//! its measurements: docs/ARCHITECTURE.md "Sync", docs/BENCHMARKS.md.

use crate::markers::{CHAT_MARKER, SPACE_MARKER};
use matrix_sdk::ruma::api::client::sync::sync_events::v5::request as extensions;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::sliding_sync::{
    SlidingSync, SlidingSyncList, SlidingSyncListLoadingState, SlidingSyncMode, Version,
};
use matrix_sdk::Client;
use std::future::Future;
use std::time::Duration;

/// The connection the bot runs; its position survives restarts in the SDK store.
const BOT_CONNECTION: &str = "lambda-matrix";
/// The one list: every room the bot is in or invited to.
const ALL_ROOMS: &str = "all";
/// Rooms per request while the list grows; a bot in fewer rooms loads them in one request.
const BATCH: u32 = 10_000;
/// Latest events per room in a response. One is enough to see whether a room has news since the
/// bot last spoke there; a longer burst marks the timeline `limited` and is read from history.
pub const TIMELINE_LIMIT: u32 = 10;
/// How long one long-poll waits for news.
const POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait after a failed sync; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between failed syncs.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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

/// Which connection to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The bot's own: the position is saved in the SDK store and resumed after a restart.
    Resumable,
    /// A one-off (the `reconcile` subcommand): starts from scratch, saves nothing, so it never
    /// moves the bot's position past events the bot has not handled.
    OneOff,
}

/// Builds the sliding-sync connection (no request yet).
pub async fn connect(client: &Client, kind: Connection) -> Result<SlidingSync, matrix_sdk::Error> {
    let list = SlidingSyncList::builder(ALL_ROOMS)
        .sync_mode(SlidingSyncMode::new_growing(BATCH))
        .required_state(required_state())
        .timeline_limit(TIMELINE_LIMIT);
    let (id, share) = match kind {
        Connection::Resumable => (BOT_CONNECTION.to_owned(), true),
        Connection::OneOff => ("lambda-once".to_owned(), false),
    };
    // Encryption (device lists, one-time keys), to-device messages (room keys), account data
    // (the direct-chat records); no typing or receipts.
    let mut e2ee = extensions::E2EE::default();
    e2ee.enabled = Some(true);
    let mut to_device = extensions::ToDevice::default();
    to_device.enabled = Some(true);
    let mut account_data = extensions::AccountData::default();
    account_data.enabled = Some(true);
    let mut builder = client
        .sliding_sync(id)?
        .version(Version::Native)
        .add_list(list)
        .with_e2ee_extension(e2ee)
        .with_to_device_extension(to_device)
        .with_account_data_extension(account_data)
        .poll_timeout(POLL_TIMEOUT)
        .network_timeout(POLL_TIMEOUT + Duration::from_secs(30));
    if share {
        builder = builder.share_pos();
    }
    builder.build().await
}

/// Syncs without waiting until every room is loaded. Returns the number of requests made.
pub async fn until_loaded(sync: &SlidingSync) -> Result<usize, matrix_sdk::Error> {
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

/// A one-off sync that loads every room into the SDK store (for the subcommands); returns the
/// number of requests made.
pub async fn load_once(client: &Client) -> Result<usize, matrix_sdk::Error> {
    until_loaded(&connect(client, Connection::OneOff).await?).await
}

/// What the loop does when the server forgot the connection: the next response carries every
/// room again, so it must be treated like a first one (see `Bot::pause`).
pub trait Expiry {
    /// Called before the first response of a new connection is fetched.
    fn expired(&self) -> impl Future<Output = ()> + Send;
    /// Called once that response has been processed.
    fn reloaded(&self) -> impl Future<Output = ()> + Send;
}

/// Consecutive server errors (HTTP 5xx) after which the connection is dropped and a new one
/// started: a connection can get stuck on the server (Synapse answers 500 to every request of a
/// connection whose range holds a room that was left and forgotten; element-hq/synapse#19651).
const STUCK_AFTER: u32 = 5;

/// Syncs until `shutdown` resolves. Errors are logged and retried with capped exponential
/// backoff; the position only moves forward after a response was fully processed.
pub async fn forever(
    sync: &SlidingSync,
    metrics: &crate::metrics::Metrics,
    expiry: &impl Expiry,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    let mut server_errors = 0;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            result = sync.sync_once() => match result {
                Ok(_) => {
                    if backoff != FIRST_BACKOFF {
                        tracing::info!("sync recovered");
                    }
                    backoff = FIRST_BACKOFF;
                    server_errors = 0;
                }
                Err(error) => {
                    let expired = error.client_api_error_kind() == Some(&ErrorKind::UnknownPos);
                    let server_error = error
                        .as_client_api_error()
                        .is_some_and(|e| e.status_code.is_server_error());
                    server_errors = if server_error { server_errors + 1 } else { 0 };
                    let stuck = server_errors >= STUCK_AFTER;
                    if expired || stuck {
                        if stuck {
                            tracing::warn!(%error, server_errors, "the server keeps failing this sync connection; starting a new one");
                        } else {
                            tracing::warn!("the server expired the sync connection; loading every room again");
                        }
                        server_errors = 0;
                        if !restart(sync, metrics, expiry, &mut backoff, shutdown.as_mut()).await {
                            return;
                        }
                        continue;
                    }
                    metrics.sync_error();
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "sync failed; retrying");
                    if !back_off(&mut backoff, shutdown.as_mut()).await {
                        return;
                    }
                }
            },
        }
    }
}

/// Drops the connection and loads every room on a new one, treating its first response like
/// a first start (catch-up). `false` if `shutdown` came first.
async fn restart(
    sync: &SlidingSync,
    metrics: &crate::metrics::Metrics,
    expiry: &impl Expiry,
    backoff: &mut Duration,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    expiry.expired().await;
    loop {
        sync.expire_session().await;
        match until_loaded(sync).await {
            Ok(_) => break,
            Err(error) => {
                metrics.sync_error();
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "reloading on a new connection failed; retrying");
                if !back_off(backoff, shutdown.as_mut()).await {
                    return false;
                }
            }
        }
    }
    expiry.reloaded().await;
    true
}

/// Waits `backoff` (then doubles it, up to [`MAX_BACKOFF`]); `false` if `shutdown` came first.
async fn back_off(
    backoff: &mut Duration,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    tokio::select! {
        () = shutdown => return false,
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    true
}
