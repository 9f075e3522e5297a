//! Message round trips with real clients: a person's send until the answer reaches the person's
//! client, for lambda-matrix (mock platform) and for the homeserver's floor (a plain client that
//! echoes every message back as a reply), in the same run; then many people at once.

use anyhow::Context;
use lambda_matrix_testkit::{Person, Synapse};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, MessageType, OriginalSyncRoomMessageEvent, ReplyMetadata,
    RoomMessageEventContent,
};
use matrix_sdk::ruma::events::AnySyncTimelineEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::Room;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long one answer may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Watches a person's client (which then syncs continuously) for replies and other senders'
/// messages, noting when each arrived. Relations are readable without decryption.
#[derive(Clone, Debug, Default)]
struct Listener {
    replies: Arc<Mutex<HashMap<String, Instant>>>,
    rooms_heard: Arc<Mutex<HashMap<String, usize>>>,
    news: Arc<Notify>,
}

impl Listener {
    fn start(person: &Person) -> Listener {
        let listener = Listener::default();
        let me = person.account.user_id.clone();
        let l = listener.clone();
        person
            .client
            .add_event_handler(move |event: Raw<AnySyncTimelineEvent>, room: Room| {
                let (l, me) = (l.clone(), me.clone());
                async move {
                    let Ok(json) = event.deserialize_as::<serde_json::Value>() else {
                        return;
                    };
                    if json["sender"] == me.as_str() {
                        return;
                    }
                    let now = Instant::now();
                    if let Some(target) =
                        json["content"]["m.relates_to"]["m.in_reply_to"]["event_id"].as_str()
                    {
                        lock(&l.replies).entry(target.to_owned()).or_insert(now);
                    }
                    *lock(&l.rooms_heard)
                        .entry(room.room_id().to_string())
                        .or_default() += 1;
                    l.news.notify_waiters();
                }
            });
        keep_syncing(&person.client);
        listener
    }

    /// Waits until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Listener) -> bool) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let notified = self.news.notified();
            if check(self) {
                return Ok(());
            }
            let left = PATIENCE
                .checked_sub(started.elapsed())
                .with_context(|| format!("waited {PATIENCE:?} for {what}"))?;
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    /// Sends `text` and returns milliseconds until a reply to it arrived.
    async fn round_trip(&self, person: &Person, room: &str, text: &str) -> anyhow::Result<f64> {
        let started = Instant::now();
        let event_id = person.send(room, text).await?.to_string();
        self.until(&format!("a reply to {event_id}"), |l| {
            lock(&l.replies).contains_key(&event_id)
        })
        .await?;
        let arrived = lock(&self.replies)[&event_id];
        Ok(arrived.duration_since(started).as_secs_f64() * 1000.0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Round trips to the bot in a person's C1 and to an echoing client, `count` each, after one
/// warm-up each (the first message in a room also shares its encryption keys). Milliseconds.
pub async fn compare(
    synapse: &Synapse,
    bot: &str,
    count: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let url = synapse.url();
    let person = Person::login(&url, &synapse.register("rt-person").await?).await?;
    person.create_dm(bot, true).await?;
    let c1 = person
        .accept_invites(2)
        .await?
        .into_iter()
        .find(|id| person.room(id.as_str()).is_ok_and(|r| !r.is_space()))
        .context("no C1")?
        .to_string();
    let echo = Person::login(&url, &synapse.register("rt-echo").await?).await?;
    let echo_room = person
        .create_dm(&echo.account.user_id, true)
        .await?
        .to_string();
    echo.accept_invites(1).await?;
    start_echo(&echo);
    let listener = Listener::start(&person);
    let (mut to_bot, mut to_echo) = (Vec::new(), Vec::new());
    listener.round_trip(&person, &c1, "warm-up").await?;
    listener.round_trip(&person, &echo_room, "warm-up").await?;
    for i in 0..count {
        // Interleaved, so both see the same homeserver conditions.
        to_bot.push(
            listener
                .round_trip(&person, &c1, &format!("hello {i}"))
                .await?,
        );
        to_echo.push(
            listener
                .round_trip(&person, &echo_room, &format!("hello {i}"))
                .await?,
        );
    }
    Ok((to_bot, to_echo))
}

/// The floor: replies to every text from someone else, at once.
fn start_echo(echo: &Person) {
    let me = echo.account.user_id.clone();
    echo.client
        .add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
            let me = me.clone();
            async move {
                let MessageType::Text(text) = &event.content.msgtype else {
                    return;
                };
                if event.sender.as_str() == me {
                    return;
                }
                let reply = RoomMessageEventContent::text_plain(format!("echo: {}", text.body))
                    .make_reply_to(
                        ReplyMetadata::new(&event.event_id, &event.sender, None),
                        ForwardThread::Yes,
                        AddMentions::No,
                    );
                let _ = room.send(reply).await;
            }
        });
    keep_syncing(&echo.client);
}

/// Long-polls back to back. (`Client::sync` waits a second after a sync that came back within
/// a second, which would add up to 1 s to every round trip measured here.)
fn keep_syncing(client: &matrix_sdk::Client) {
    let client = client.clone();
    tokio::spawn(async move {
        let mut settings = SyncSettings::default().timeout(Duration::from_secs(30));
        loop {
            match client.sync_once(settings.clone()).await {
                Ok(response) => settings = settings.token(response.next_batch),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
}

/// `people` people open a direct chat with the bot (first contact), then all send one message at
/// the same moment. Returns each one's round trip in milliseconds and the wall time of the burst.
pub async fn load(synapse: &Synapse, bot: &str, people: usize) -> anyhow::Result<(Vec<f64>, f64)> {
    let url = synapse.url();
    let mut ready = Vec::new();
    for i in 0..people {
        let person = Person::login(&url, &synapse.register(&format!("load{i}")).await?).await?;
        let dm = person.create_dm(bot, false).await?.to_string();
        let listener = Listener::start(&person);
        ready.push((person, dm, listener));
    }
    for (_, dm, listener) in &ready {
        listener
            .until("the welcome", |l| {
                lock(&l.rooms_heard).get(dm).is_some_and(|n| *n > 0)
            })
            .await?;
    }
    let started = Instant::now();
    let burst = ready.iter().map(|(person, dm, listener)| async move {
        listener.round_trip(person, dm, "how are you?").await
    });
    let times = futures_util::future::try_join_all(burst).await?;
    Ok((times, started.elapsed().as_secs_f64()))
}
