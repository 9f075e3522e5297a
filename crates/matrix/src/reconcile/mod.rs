//! Startup reconciliation: rebuild the cache from the homeserver (reads only), then resume
//! work a crash left half-done (may write). docs/DESIGN.md "Startup".
//!
//! - [`snapshot`]: what the server says, read from the SDK store after the initial sync.
//! - [`plan`]: the pure planner (server snapshot + cache -> changes, resume tasks, report).

pub mod plan;
pub mod snapshot;

use crate::markers::{self, CHAT_MARKER, DM_RECORD, SPACE_MARKER};
use lambda_matrix_core::{CacheDump, ChatId, Store, StoreError};
use matrix_sdk::deserialized_responses::RawAnySyncOrStrippedState;
use matrix_sdk::ruma::events::{RoomAccountDataEventType, StateEventType};
use matrix_sdk::{Client, Room, RoomMemberships};
use plan::{Plan, Report};
use snapshot::{Read, ServerRoom};
use std::time::Instant;

/// Reads every joined room's records from the SDK store (no requests), several rooms at a time
/// (the store has a pool of connections).
pub async fn server_snapshot(client: &Client, bot: &str) -> Vec<ServerRoom> {
    use futures_util::StreamExt;
    const CONCURRENT_READS: usize = 8;
    let leaving = crate::bot::leaving_recorded(client).await;
    let leaving = &leaving;
    futures_util::stream::iter(client.joined_rooms())
        .map(|room| async move {
            let mut read = server_room(&room, bot).await;
            read.leaving = leaving.contains(&read.room_id);
            read
        })
        .buffered(CONCURRENT_READS)
        .collect()
        .await
}

/// A state event's JSON from the SDK store (no request); `None` if absent or only stripped.
pub(crate) async fn state_json(
    room: &Room,
    event_type: &str,
    key: &str,
) -> Option<serde_json::Value> {
    match room
        .get_state_event(StateEventType::from(event_type), key)
        .await
        .ok()??
    {
        RawAnySyncOrStrippedState::Sync(raw) => raw.deserialize_as().ok(),
        RawAnySyncOrStrippedState::Stripped(_) => None,
    }
}

fn read<T>(result: Result<T, markers::MarkerError>) -> Read<T> {
    match result {
        Ok(value) => Read::Trusted(value),
        Err(error) => Read::Rejected(error.to_string()),
    }
}

async fn server_room(room: &Room, bot: &str) -> ServerRoom {
    let space_marker = state_json(room, SPACE_MARKER, "")
        .await
        .map(|json| read(markers::read_state(&json, bot)));
    let chat_marker = state_json(room, CHAT_MARKER, "")
        .await
        .map(|json| read(markers::read_state(&json, bot)));
    let dm_record = match room
        .account_data(RoomAccountDataEventType::from(DM_RECORD))
        .await
    {
        Ok(Some(raw)) => raw
            .deserialize_as::<serde_json::Value>()
            .ok()
            .map(|json| read(markers::read_content(&json["content"]))),
        _ => None,
    };
    let mut children = Vec::new();
    for raw in room
        .get_state_events(StateEventType::SpaceChild)
        .await
        .unwrap_or_default()
    {
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
    let mut members: Vec<String> = room
        .members_no_sync(RoomMemberships::JOIN | RoomMemberships::INVITE)
        .await
        .unwrap_or_default()
        .iter()
        .map(|m| m.user_id().to_string())
        .filter(|id| id != bot)
        .collect();
    members.sort();
    ServerRoom {
        room_id: room.room_id().to_string(),
        is_space: room.is_space(),
        name: room.name(),
        space_marker,
        chat_marker,
        dm_record,
        children,
        members,
        leaving: false,
    }
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
