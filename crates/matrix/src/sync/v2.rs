//! `/sync` v2: the live loop, and the resumable position it runs from.
//!
//! The position (`next_batch`) is the bot's own, kept in the SDK store under [`POSITION`] and
//! written only after a response was fully processed — its events queued, their rooms in the
//! rooms-in-flight set. (The SDK saves its own copy *before* the event handlers run, so it is
//! not used.) After a crash the next start asks again from the last saved position and the
//! response carries whatever was not handled yet.
//!
//! A v2 long-poll costs the homeserver work per change, not per room, which is why live
//! traffic runs here and not on sliding sync (docs/BENCHMARKS.md, "Live traffic").

use crate::retry::Policy;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomEventFilter, RoomFilter};
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;
use matrix_sdk::ruma::UInt;
use matrix_sdk::Client;
use std::future::Future;
use std::time::Duration;

/// The SDK store key of the saved position.
const POSITION: &[u8] = b"lambda-matrix.sync-v2-position";
/// The name the live filter is uploaded under (a new definition needs a new name).
const FILTER_NAME: &str = "lambda-matrix-live-2";
/// How long one long-poll waits for news.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between failed syncs.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failed syncs: 0.5 s doubling to [`MAX_BACKOFF`], without end.
const RETRY: Policy = Policy::doubling(Duration::from_millis(500), MAX_BACKOFF);
/// How long the saved position may stay behind while the responses queue nothing (the bot's
/// own echoes, typing, keys): a restart then asks again from there, and what it gets again
/// is handled as any repeat is.
pub const SAVE_IDLE_EVERY: Duration = Duration::from_secs(10);

/// What the live loop asks for: each room's latest events and state changes, account data
/// (the leaving record is global, a direct-chat record is the room's), encryption and
/// to-device messages; no presence, typing or receipts.
fn live_filter() -> FilterDefinition {
    let none = || {
        let mut filter = matrix_sdk::ruma::api::client::filter::Filter::empty();
        filter.types = Some(Vec::new());
        filter
    };
    let mut timeline = RoomEventFilter::empty();
    timeline.limit = Some(UInt::from(super::TIMELINE_LIMIT));
    let mut room = RoomFilter::empty();
    room.timeline = timeline;
    room.ephemeral = RoomEventFilter::ignore_all();
    let mut definition = FilterDefinition::empty();
    definition.presence = none();
    definition.room = room;
    definition
}

/// A request that returns a position and no room at all: cheap at any number of rooms. It still
/// carries to-device messages, account data and encryption state.
fn no_rooms() -> Filter {
    let mut room = RoomFilter::empty();
    room.rooms = Some(Vec::new());
    let mut definition = FilterDefinition::empty();
    definition.room = room;
    Filter::FilterDefinition(unique(definition))
}

/// The live filter, written into the request and made unique to this moment, for the requests
/// of a start. Synapse keeps a finished `/sync` response for a while (2 minutes by default,
/// `sync_response_cache_duration`) and answers the same request — same position, timeout and
/// filter — with it: a start that asks again from the position a crashed start used would get
/// that start's response, without what happened since (the soak found a room made meanwhile
/// missing, and a second one made for the same `!new`).
pub fn fresh() -> Filter {
    Filter::FilterDefinition(unique(live_filter()))
}

/// `definition` with a never-matching presence type naming this moment (presence is not
/// asked for anyway), so no earlier request had the same filter.
fn unique(mut definition: FilterDefinition) -> FilterDefinition {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    definition
        .presence
        .not_types
        .push(format!("org.lambda.matrix.start.{now}"));
    definition
}

/// The live filter, uploaded once (its id is kept in the SDK store).
pub async fn filter(client: &Client) -> Result<Filter, matrix_sdk::Error> {
    let id = client
        .get_or_upload_filter(FILTER_NAME, live_filter())
        .await?;
    Ok(Filter::FilterId(id))
}

/// The position a previous run saved, if any.
pub async fn saved(client: &Client) -> Option<String> {
    match client.state_store().get_custom_value(POSITION).await {
        Ok(Some(bytes)) => String::from_utf8(bytes).ok().filter(|s| !s.is_empty()),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, "cannot read the saved sync position; starting afresh");
            None
        }
    }
}

/// Saves `position` as the one to resume from.
pub async fn save(client: &Client, position: &str) {
    if let Err(error) = client
        .state_store()
        .set_custom_value_no_read(POSITION, position.as_bytes().to_vec())
        .await
    {
        tracing::warn!(%error, "cannot save the sync position; a restart will ask from an older one");
    }
}

/// One request from `since` (none: an initial sync) that waits at most `wait` for news; the
/// response is processed (store, event handlers) before this returns its `next_batch`.
pub async fn once(
    client: &Client,
    since: Option<&str>,
    filter: Filter,
    wait: Duration,
) -> Result<String, matrix_sdk::Error> {
    Ok(request(client, since, filter, wait).await?.0)
}

/// [`once`], with how many to-device messages the response carried.
async fn request(
    client: &Client,
    since: Option<&str>,
    filter: Filter,
    wait: Duration,
) -> Result<(String, usize), matrix_sdk::Error> {
    let settings = SyncSettings::new()
        .filter(filter)
        .timeout(wait)
        .token(match since {
            Some(token) => matrix_sdk::config::SyncToken::Specific(token.to_owned()),
            None => matrix_sdk::config::SyncToken::NoToken,
        });
    let response = client.sync_once(settings).await?;
    Ok((response.next_batch, response.to_device.len()))
}

/// How many to-device messages Synapse puts in one sync response: a full page means more wait
/// (the room keys of many messages sent while the bot was down come a page a response).
const TO_DEVICE_PAGE: usize = 100;

/// A position from which the next request carries only what happens from now on.
pub async fn position_now(client: &Client) -> Result<String, matrix_sdk::Error> {
    once(client, None, no_rooms(), Duration::ZERO).await
}

/// Long-polls from `position` until `shutdown` resolves. After each processed response,
/// `processed` runs (what must be done before its position moves on) and says whether the
/// response queued anything; then the position is saved, or, for a response that queued
/// nothing, only once it is [`SAVE_IDLE_EVERY`] old (each save is a write of the SDK store
/// synced to disk; the bot's own echo of every answer is such a response). Errors are logged
/// and retried with capped exponential backoff.
pub async fn forever<P, F>(
    client: &Client,
    mut position: String,
    filter: Filter,
    metrics: &crate::metrics::Metrics,
    processed: P,
    shutdown: impl Future<Output = ()>,
) where
    P: Fn() -> F,
    F: Future<Output = bool>,
{
    tokio::pin!(shutdown);
    let mut tries = RETRY.start();
    let mut failing = false;
    let mut saved_at = std::time::Instant::now();
    loop {
        let started = std::time::Instant::now();
        tokio::select! {
            () = &mut shutdown => return,
            // While to-device messages may still wait (the first request, a backlog), ask
            // without waiting: the room keys of messages sent while the bot was down.
            result = request(client, Some(&position), filter.clone(), if metrics.is_to_device_drained() { POLL_TIMEOUT } else { Duration::ZERO }) => match result {
                Ok((next, to_device)) => {
                    metrics.to_device_drained(to_device < TO_DEVICE_PAGE);
                    if std::mem::take(&mut failing) {
                        tracing::info!("sync recovered");
                    }
                    metrics.sync_ok();
                    tries.succeeded();
                    if next != position {
                        if processed().await || saved_at.elapsed() >= SAVE_IDLE_EVERY {
                            save(client, &next).await;
                            saved_at = std::time::Instant::now();
                        }
                        position = next;
                    }
                    tracing::debug!(took_us = started.elapsed().as_micros() as u64, "sync response processed");
                }
                Err(error) => {
                    metrics.sync_error();
                    failing = true;
                    // No bound: the sync is retried for as long as the bot runs.
                    let backoff = tries.failed().unwrap_or(MAX_BACKOFF);
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "sync failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            },
        }
    }
}
