//! Syncing with the homeserver: a startup snapshot, then a live loop on `/sync` v2.
//!
//! - A start with a saved position ([`v2::saved`]) asks once from it: the response carries only
//!   what changed while the bot was away (no snapshot, no request per room).
//! - A start without one (new SDK store) takes a v2 position first (a request that returns no
//!   room), then a snapshot of every room over sliding sync ([`sliding`]; `MATRIX_SYNC=v2` or a
//!   homeserver without MSC4186: a v2 initial sync instead), then asks from that position, so
//!   nothing sent during the snapshot is missed.
//!
//! Every response of the start is processed while the bot's handlers are paused; catch-up reads
//! what they carried. The position is saved only after catch-up ([`save_after_catch_up`]), so
//! a crash before that asks the same again. The decision and its measurements:
//! docs/ARCHITECTURE.md "Sync", docs/BENCHMARKS.md.

pub mod sliding;
pub mod v2;

use crate::config::SyncMode;
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;
use matrix_sdk::Client;
use std::time::Duration;

pub use v2::forever;

/// Latest events per room in a response. One is enough to see whether a room has news since the
/// bot last spoke there; a longer burst marks the timeline `limited` and is read from history.
pub const TIMELINE_LIMIT: u32 = 10;

/// How a start got its view of every room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// From the saved position: one v2 request.
    Resumed,
    /// A sliding-sync snapshot between two v2 requests.
    Sliding,
    /// A v2 initial sync.
    V2Initial,
}

/// Where the live loop starts.
#[derive(Clone, Debug)]
pub struct Started {
    /// The position after the start's last response (not saved yet).
    pub position: String,
    /// The live filter.
    pub filter: Filter,
    /// Sync requests the start made.
    pub requests: usize,
    /// How.
    pub how: How,
}

/// Brings the SDK store up to date with the server (see the module docs). Handlers should be
/// paused: what the responses carry is for catch-up.
pub async fn start(client: &Client, mode: SyncMode) -> Result<Started, matrix_sdk::Error> {
    let filter = v2::filter(client).await?;
    if let Some(saved) = v2::saved(client).await {
        let position = v2::once(client, Some(&saved), v2::fresh(), Duration::ZERO).await?;
        return Ok(Started {
            position,
            filter,
            requests: 1,
            how: How::Resumed,
        });
    }
    let mut requests = 0;
    if mode != SyncMode::V2 {
        let since = v2::position_now(client).await?;
        requests += 1;
        match sliding::snapshot(client, "lambda-start").await {
            Ok(snapshot) => {
                let position = v2::once(client, Some(&since), v2::fresh(), Duration::ZERO).await?;
                return Ok(Started {
                    position,
                    filter,
                    requests: requests + snapshot + 1,
                    how: How::Sliding,
                });
            }
            Err(error) if mode == SyncMode::Auto && sliding::unsupported(&error) => {
                requests += 1; // the refused sliding-sync request
                tracing::warn!(%error, "the homeserver does not offer sliding sync (MSC4186); loading every room with a v2 initial sync, which is slower with many rooms");
            }
            Err(error) => return Err(error),
        }
    }
    let position = v2::once(client, None, v2::fresh(), Duration::ZERO).await?;
    Ok(Started {
        position,
        filter,
        requests: requests + 1,
        how: How::V2Initial,
    })
}

/// Saves the start's position once catch-up has queued what its responses carried.
pub async fn save_after_catch_up(client: &Client, started: &Started) {
    v2::save(client, &started.position).await;
}

/// A one-off view of every room for the subcommands (`reconcile`, `reset`): saves no position,
/// so it never moves the bot past events it has not handled. Returns the requests made.
pub async fn load_once(client: &Client, mode: SyncMode) -> Result<usize, matrix_sdk::Error> {
    if mode != SyncMode::V2 {
        // Account data (direct-chat and leaving records) comes with v2, not with the snapshot.
        v2::position_now(client).await?;
        match sliding::snapshot(client, "lambda-once").await {
            Ok(requests) => return Ok(requests + 1),
            Err(error) if mode == SyncMode::Auto && sliding::unsupported(&error) => {
                tracing::warn!(%error, "the homeserver does not offer sliding sync (MSC4186); using a v2 initial sync");
            }
            Err(error) => return Err(error),
        }
    }
    v2::once(client, None, v2::fresh(), Duration::ZERO).await?;
    Ok(1)
}
