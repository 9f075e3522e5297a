//! Startup reconciliation: rebuild the cache from the homeserver (reads only), then resume
//! work a crash left half-done (may write). docs/DESIGN.md "Startup".
//!
//! - [`snapshot`]: what the server says, read from the SDK store after the initial sync.
//! - [`plan`]: the pure planner (server snapshot + cache -> changes, resume tasks, report).
//! - [`repair`]: one room met while running, repaired by the planner's rules.

pub mod plan;
pub mod repair;
pub mod snapshot;

use crate::records;
use lambda_matrix_core::{CacheDump, ChatId, Store, StoreError};
use matrix_sdk::{Client, Room};
use plan::{Plan, Record, Report};
use snapshot::ServerRoom;
use std::time::Instant;

/// Reads every joined room's records from the SDK store (no requests), several rooms at a time
/// (the store has a pool of connections). If the leaving record cannot be read, no room can be
/// judged: every room is marked unreadable (nothing is placed, nothing deleted).
pub async fn server_snapshot(client: &Client, bot: &str) -> Vec<ServerRoom> {
    use futures_util::StreamExt;
    const CONCURRENT_READS: usize = 8;
    let leaving = records::leaving(client).await;
    let leaving = &leaving;
    futures_util::stream::iter(client.joined_rooms())
        .map(|room| async move {
            let mut read = server_room(&room, bot).await;
            match leaving {
                Ok(leaving) => read.leaving = leaving.contains(&read.room_id),
                Err(error) => read.unreadable = Some(error.clone()),
            }
            read
        })
        .buffered(CONCURRENT_READS)
        .collect()
        .await
}

/// One room as the server describes it, with the records the planner needs of it
/// ([`plan::next_read`]); `unreadable` says why if one could not be read.
pub async fn server_room(room: &Room, bot: &str) -> ServerRoom {
    let mut server = ServerRoom {
        room_id: room.room_id().to_string(),
        is_space: room.is_space(),
        name: room.name(),
        ..ServerRoom::default()
    };
    let mut read = Vec::new();
    while let Some(record) = plan::next_read(&server, &read) {
        let result = match record {
            Record::SpaceMarker => records::space_marker(room, bot)
                .await
                .map(|r| server.space_marker = r),
            Record::ChatMarker => records::chat_marker(room, bot)
                .await
                .map(|r| server.chat_marker = r),
            Record::DmRecord => records::dm_record(room).await.map(|r| server.dm_record = r),
            Record::Children => records::space_children(room, bot)
                .await
                .map(|r| server.children = r),
            Record::Members => records::members(room, bot)
                .await
                .map(|r| server.members = r),
        };
        if let Err(error) = result {
            tracing::warn!(room_id = %room.room_id(), %error, "cannot read the room's records; skipping it");
            server.unreadable = Some(error);
            break;
        }
        read.push(record);
    }
    server
}

/// Plans the cache from the server and, unless `dry_run`, applies it in one transaction.
/// Returns the plan with the report's duration filled in.
pub async fn reconcile(
    client: &Client,
    bot: &str,
    cache: Option<&dyn Store>,
    current: CacheDump,
    default_name: &(dyn Fn(ChatId) -> String + Sync),
) -> Result<Plan, StoreError> {
    let started = Instant::now();
    let server = server_snapshot(client, bot).await;
    let mut plan = plan::plan(&server, &current, default_name);
    crate::crash_point!("during-reconcile");
    if let Some(cache) = cache {
        cache.apply(&plan.changes)?;
    }
    plan.report.duration_ms = started.elapsed().as_millis() as u64;
    log_report("reconcile", &plan.report);
    Ok(plan)
}

/// One structured log event for a report.
pub fn log_report(step: &str, report: &Report) {
    tracing::info!(
        step,
        joined_rooms = report.joined_rooms,
        restored_user_meta = report.restored_user_meta,
        restored_room_meta = report.restored_room_meta,
        restored_chat_rows = report.restored_chat_rows,
        repaired = report.repaired,
        conflicts = %serde_json::to_string(&report.conflicts).unwrap_or_default(),
        skipped_rooms = %serde_json::to_string(&report.skipped_rooms).unwrap_or_default(),
        duration_ms = report.duration_ms,
        "{step} report"
    );
}
