//! The homeserver's floor: what the same data costs a bare client, each on a fresh device.

use super::rooms::login;
use lambda_matrix_testkit::Registered;
use serde_json::json;
use std::time::Instant;

/// A v2 initial sync (no since token, full state). Returns seconds and rooms seen.
pub async fn v2(url: &str, bot: &Registered) -> anyhow::Result<(f64, usize)> {
    let http = reqwest::Client::new();
    let token = login(&http, url, bot).await?;
    let started = Instant::now();
    let body: serde_json::Value = http
        .get(format!(
            "{url}/_matrix/client/v3/sync?timeout=0&full_state=true"
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        seconds,
        body["rooms"]["join"].as_object().map_or(0, |o| o.len()),
    ))
}

/// Which sliding-sync request to time.
#[derive(Clone, Copy, Debug)]
pub enum Sliding {
    /// Only the state a reconcile needs, no timeline, no extensions (issue 8's floor).
    ReconcileState,
    /// What lambda-matrix's snapshot asks for: that state plus the bot's own membership and the
    /// account-data extension, in two lists: the Spaces without events, every other room with
    /// its latest events (`TIMELINE_LIMIT`; encryption and to-device messages come with the v2
    /// requests around it); and a third list of the invites. `timeline` is the rooms list's
    /// limit: 10 as the bot asks, 0 to time the request without its events.
    BotRequest { timeline: u32 },
    /// The bot's request as one list of every room with `timeline` events each and, if `lazy`,
    /// only the members who sent the events shown (`$LAZY`) instead of all: what each part of
    /// the request costs (timeline 10, all members: the snapshot before the two lists).
    Variant { timeline: u32, lazy: bool },
    /// Only the latest events of the rooms that are not Spaces (no state worth the name): what
    /// asking for them apart from a snapshot without events would cost.
    LatestApart,
}

/// One sliding-sync request on a new connection. Returns seconds and rooms seen.
pub async fn sliding(
    url: &str,
    bot: &Registered,
    rooms: usize,
    kind: Sliding,
) -> anyhow::Result<(f64, usize)> {
    let http = reqwest::Client::new();
    let token = login(&http, url, bot).await?;
    let mut state = vec![
        json!(["m.room.create", ""]),
        json!(["m.room.name", ""]),
        json!(["m.room.encryption", ""]),
        json!(["org.lambda.matrix.space", ""]),
        json!(["org.lambda.matrix.chat", ""]),
        json!(["m.space.child", "*"]),
        json!(["m.space.parent", "*"]),
    ];
    let (spaces, others) = (
        json!({"room_types": ["m.space"]}),
        json!({"not_room_types": ["m.space"]}),
    );
    let request = match kind {
        Sliding::ReconcileState => {
            state.push(json!(["m.room.member", "$ME"]));
            json!({"lists": {"all": {"ranges": [[0, rooms + 50]], "timeline_limit": 0, "required_state": state}}})
        }
        Sliding::LatestApart => json!({
            "lists": {"latest": {"ranges": [[0, 9999]], "timeline_limit": 10,
                "required_state": [["m.room.create", ""]], "filters": others}}
        }),
        Sliding::BotRequest { .. } | Sliding::Variant { .. } => {
            let (timeline, lazy) = match kind {
                Sliding::Variant { timeline, lazy } => (timeline, lazy),
                Sliding::BotRequest { timeline } => (timeline, false),
                _ => (10, false),
            };
            if lazy {
                state.push(json!(["m.room.member", "$LAZY"]));
                state.push(json!(["m.room.member", "$ME"]));
            }
            // The bot asks for its own membership only (the SDK reads the members itself); a
            // variant not lazy asks for every member, as the bot did before.
            let members = match kind {
                Sliding::BotRequest { .. } => Some(["m.room.member", "$ME"]),
                _ if lazy => None,
                _ => Some(["m.room.member", "*"]),
            };
            for extra in members.into_iter().chain([
                ["m.room.history_visibility", ""],
                ["m.room.join_rules", ""],
                ["m.room.power_levels", ""],
                ["m.room.tombstone", ""],
            ]) {
                state.push(json!(extra));
            }
            let lists = match kind {
                Sliding::BotRequest { .. } => json!({
                    "spaces": {"ranges": [[0, 9999]], "timeline_limit": 0, "required_state": state, "filters": spaces},
                    "rooms": {"ranges": [[0, 9999]], "timeline_limit": timeline, "required_state": state, "filters": others},
                    "invites": {"ranges": [[0, 9999]], "timeline_limit": 0, "required_state": state, "filters": {"is_invite": true}},
                }),
                _ => {
                    json!({"all": {"ranges": [[0, 9999]], "timeline_limit": timeline, "required_state": state}})
                }
            };
            json!({"lists": lists, "extensions": {"account_data": {"enabled": true}}})
        }
    };
    let started = Instant::now();
    let body: serde_json::Value = http
        .post(format!(
            "{url}/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
        ))
        .bearer_auth(&token)
        .json(&request)
        .send()
        .await?
        .json()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((seconds, body["rooms"].as_object().map_or(0, |o| o.len())))
}
