//! Spike for the sync architecture decision (docs/ARCHITECTURE.md): builds a Synapse where the
//! bot is in N rooms shaped like production (N/5 people x 1 Space + 4 chat rooms, with markers),
//! then times, on fresh devices, (a) a bare v2 initial sync, (b) one bare simplified
//! sliding-sync request (MSC4186) asking only for the state a reconcile needs, and (c) the
//! matrix-sdk v2 initial sync the bot runs today (request + SDK processing + store writes).
//!
//! Usage: cargo run --release -p lambda-matrix-testkit --example sync_spike -- [ROOMS] [RUNS]

use anyhow::Context;
use lambda_matrix_testkit::Synapse;
use matrix_sdk::config::SyncSettings;
use serde_json::json;
use std::time::{Duration, Instant};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rooms: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let runs: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let people = rooms.div_ceil(5);
    let synapse = Synapse::start().await?;
    let bot = synapse.register("lambda").await?;
    let http = reqwest::Client::new();
    let url = synapse.url();
    eprintln!("building {people} people x 5 rooms on {url} ...");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..people {
        let person = synapse.register(&format!("p{p}")).await?;
        let (http, url, token) = (http.clone(), url.clone(), bot.access_token.clone());
        tasks.push(tokio::spawn(async move {
            build_person(&http, &url, &token, &person.user_id).await
        }));
        if tasks.len() >= 8 {
            tasks.remove(0).await??;
        }
    }
    for t in tasks {
        t.await??;
    }
    eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());

    let (mut v2, mut ss, mut sdk) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let token = login(&http, &url, &bot.localpart, &bot.password).await?;
        let t = Instant::now();
        let body: serde_json::Value = http
            .get(format!(
                "{url}/_matrix/client/v3/sync?timeout=0&full_state=true"
            ))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        v2.push(t.elapsed().as_secs_f64());
        let v2_rooms = body["rooms"]["join"].as_object().map_or(0, |o| o.len());

        let token = login(&http, &url, &bot.localpart, &bot.password).await?;
        let request = json!({
            "lists": { "all": {
                "ranges": [[0, rooms + 50]],
                "timeline_limit": 0,
                "required_state": [
                    ["m.room.create", ""], ["m.room.name", ""], ["m.room.encryption", ""],
                    ["org.lambda.matrix.space", ""], ["org.lambda.matrix.chat", ""],
                    ["m.space.child", "*"], ["m.space.parent", "*"], ["m.room.member", "$ME"]
                ]
            }}
        });
        let t = Instant::now();
        let body: serde_json::Value = http
            .post(format!(
                "{url}/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout=0"
            ))
            .bearer_auth(&token)
            .json(&request)
            .send()
            .await?
            .json()
            .await?;
        ss.push(t.elapsed().as_secs_f64());
        let ss_rooms = body["rooms"].as_object().map_or(0, |o| o.len());

        let dir = tempfile::tempdir()?;
        let client = matrix_sdk::Client::builder()
            .homeserver_url(&url)
            .sqlite_store(dir.path(), None)
            .build()
            .await?;
        client
            .matrix_auth()
            .login_username(&bot.localpart, &bot.password)
            .send()
            .await?;
        let t = Instant::now();
        client
            .sync_once(
                SyncSettings::default()
                    .full_state(true)
                    .timeout(Duration::ZERO),
            )
            .await?;
        sdk.push(t.elapsed().as_secs_f64());
        eprintln!(
            "run {run}: v2 {:.2} s ({v2_rooms} rooms), sliding {:.2} s ({ss_rooms} rooms), sdk v2 {:.2} s ({} rooms)",
            v2[run], ss[run], sdk[run], client.joined_rooms().len()
        );
    }
    eprintln!(
        "rooms={rooms} runs={runs} v2_bare_median_s={:.2} sliding_bare_median_s={:.2} sdk_v2_median_s={:.2}",
        median(v2),
        median(ss),
        median(sdk)
    );
    Ok(())
}

async fn login(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body: serde_json::Value = http
        .post(format!("{url}/_matrix/client/v3/login"))
        .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["access_token"]
        .as_str()
        .context("no token")?
        .to_owned())
}

async fn create(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: serde_json::Value,
) -> anyhow::Result<String> {
    let reply: serde_json::Value = http
        .post(format!("{url}/_matrix/client/v3/createRoom"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    Ok(reply["room_id"]
        .as_str()
        .with_context(|| format!("createRoom: {reply}"))?
        .to_owned())
}

async fn build_person(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    person: &str,
) -> anyhow::Result<()> {
    let space = create(http, url, token, json!({
        "preset": "private_chat", "name": "Lambda", "invite": [person],
        "creation_content": {"type": "m.space"},
        "initial_state": [{"type": "org.lambda.matrix.space", "state_key": "", "content": {"owner": person, "last_chat_index": 4, "version": 1}}]
    })).await?;
    for n in 1..=4 {
        let room = create(http, url, token, json!({
            "preset": "private_chat", "name": format!("Chat {n}"), "invite": [person],
            "initial_state": [
                {"type": "org.lambda.matrix.chat", "state_key": "", "content": {"owner": person, "chat_id": format!("C{n}"), "status": "active", "cause": "$x", "version": 1}},
                {"type": "m.space.parent", "state_key": space, "content": {"via": ["localhost"], "canonical": true}},
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
            ]
        })).await?;
        http.put(format!(
            "{url}/_matrix/client/v3/rooms/{space}/state/m.space.child/{room}"
        ))
        .bearer_auth(token)
        .json(&json!({"via": ["localhost"]}))
        .send()
        .await?
        .error_for_status()?;
    }
    Ok(())
}
