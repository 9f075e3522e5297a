//! The rooms the benchmark measures: per person one Space and four chat rooms, shaped like the
//! bot's own (markers, `m.space.child`/`m.space.parent` links, encryption), created over plain
//! HTTP with the bot's token so building 1,000 rooms takes minutes, not the bot's first contact.

use anyhow::Context;
use lambda_matrix_testkit::{Registered, Synapse};
use serde_json::json;

/// A person the benchmark built, with their first chat room (where they talk to the bot).
#[derive(Clone, Debug)]
pub struct Member {
    pub account: Registered,
    pub c1: String,
    /// Their four chat rooms, C1 first.
    pub chats: Vec<String>,
}

/// Adds people until the bot is in `rooms` rooms (five per person); `from` were built before.
/// Returns the people added.
pub async fn grow(
    synapse: &Synapse,
    bot: &Registered,
    from: usize,
    rooms: usize,
) -> anyhow::Result<Vec<Member>> {
    let http = reqwest::Client::new();
    let (mut tasks, mut members) = (Vec::new(), Vec::new());
    for p in from.div_ceil(5)..rooms.div_ceil(5) {
        let person = synapse.register(&format!("p{p}")).await?;
        let (http, url, token) = (http.clone(), synapse.url(), bot.access_token.clone());
        tasks.push(tokio::spawn(async move {
            let chats = build_person(&http, &url, &token, &person.user_id).await?;
            Ok::<_, anyhow::Error>(Member {
                account: person,
                c1: chats[0].clone(),
                chats,
            })
        }));
        if tasks.len() >= 8 {
            members.push(tasks.remove(0).await??);
        }
    }
    for task in tasks {
        members.push(task.await??);
    }
    Ok(members)
}

/// A fresh access token (a new device) for `account`.
pub async fn login(
    http: &reqwest::Client,
    url: &str,
    account: &Registered,
) -> anyhow::Result<String> {
    let body: serde_json::Value = http
        .post(format!("{url}/_matrix/client/v3/login"))
        .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.localpart}, "password": account.password}))
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
) -> anyhow::Result<Vec<String>> {
    let space = create(http, url, token, json!({
        "preset": "private_chat", "name": "Lambda", "invite": [person],
        "creation_content": {"type": "m.space"},
        "initial_state": [{"type": "org.lambda.matrix.space", "state_key": "", "content": {"owner": person, "last_chat_index": 4, "version": 1}}]
    })).await?;
    let mut chats = Vec::new();
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
        chats.push(room);
    }
    Ok(chats)
}
