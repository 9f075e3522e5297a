//! Message round trips with real clients: a person's send until the answer reaches the person's
//! client (watching their chat room through a filtered `/sync` v2 long-poll), one after the
//! other and many people at once; the same people and rooms for whichever bot answers.

use crate::rooms::Member;
use anyhow::Context as _;
use lambda_matrix_testkit::Person;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomFilter};
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, MessageType, OriginalSyncRoomMessageEvent, ReplyMetadata,
    RoomMessageEventContent,
};
use matrix_sdk::ruma::events::AnySyncTimelineEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use matrix_sdk::Room;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long one answer may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Watches a person's client (which then syncs continuously) for replies and other senders'
/// messages, noting when each arrived. Relations are readable without decryption.
#[derive(Clone, Debug, Default)]
pub struct Listener {
    replies: Arc<Mutex<HashMap<String, Instant>>>,
    rooms_heard: Arc<Mutex<HashMap<String, usize>>>,
    news: Arc<Notify>,
}

impl Listener {
    /// Whether a reply to `event_id` arrived.
    pub fn replied(&self, event_id: &str) -> bool {
        lock(&self.replies).contains_key(event_id)
    }

    pub fn start(person: &Person, room: Option<OwnedRoomId>) -> Listener {
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
        keep_syncing(&person.client, None, room);
        listener
    }

    /// Waits until `check` holds.
    pub async fn until(&self, what: &str, check: impl Fn(&Listener) -> bool) -> anyhow::Result<()> {
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
    pub async fn round_trip(&self, person: &Person, room: &str, text: &str) -> anyhow::Result<f64> {
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

/// A person ready to be measured: logged in, in their first chat room, watching it.
pub struct Ready {
    pub person: Person,
    pub c1: String,
    pub listener: Listener,
}

/// Logs `members` in, joins each to their first chat room and starts watching it through a
/// `/sync` v2 long-poll filtered to that room.
pub async fn prepare(url: &str, members: &[Member]) -> anyhow::Result<Vec<Ready>> {
    let mut ready = Vec::new();
    for chunk in members.chunks(8) {
        let joined = chunk.iter().map(|member| async move {
            let person = Person::login(url, &member.account).await?;
            let room_id = <&RoomId>::try_from(member.c1.as_str())?;
            person.client.join_room_by_id(room_id).await?;
            let listener = Listener::start(&person, Some(room_id.to_owned()));
            Ok::<_, anyhow::Error>(Ready {
                person,
                c1: member.c1.clone(),
                listener,
            })
        });
        ready.extend(futures_util::future::try_join_all(joined).await?);
    }
    Ok(ready)
}

/// Where the answering bot's own account of its answers is read.
#[derive(Clone, Copy, Debug)]
pub enum Account<'a> {
    /// lambda-matrix's `/metrics` address.
    Metrics(&'a str),
    /// The yardstick's store folder.
    OwnTimes(&'a std::path::Path),
}

/// What one bot's answers took, in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// The first person's messages, one after the other.
    pub sequential: Vec<f64>,
    /// The other people, one message each at the same moment.
    pub burst: Vec<f64>,
    /// The answering process's CPU time (user + system) over the sequential messages, per
    /// message, one value per measurement (ms).
    pub cpu: Vec<f64>,
    /// lambda-matrix only: its stage histograms for its answers to the sequential messages.
    pub stages: crate::stages::Histograms,
    /// The yardstick only: its (read, own) for each sequential message, ms ([`crate::own`]).
    pub own: Vec<(f64, f64)>,
}

impl Measured {
    pub fn extend(&mut self, other: Measured) {
        self.sequential.extend(other.sequential);
        self.burst.extend(other.burst);
        self.cpu.extend(other.cpu);
        self.stages.add(&other.stages);
        self.own.extend(other.own);
    }
}

/// Measures whichever bot answers now (its process `pid`): every person once as a warm-up (the
/// first message in a room also shares its encryption keys), then `count` messages one after
/// the other from the first person, then one message from each of the others at the same
/// moment. The process's CPU time is read before and after the sequential messages, and the
/// answering bot's own account of them: lambda-matrix's stage histograms from its `/metrics`,
/// or the yardstick's own times from its store: the single message's, without the warm-ups and
/// the burst.
pub async fn measure(
    ready: &[Ready],
    count: usize,
    tag: &str,
    pid: u32,
    account: Account<'_>,
) -> anyhow::Result<Measured> {
    let metrics = match account {
        Account::Metrics(metrics) => Some(metrics),
        Account::OwnTimes(_) => None,
    };
    let warm_up = ready.iter().map(|r| async move {
        let text = format!("{tag} warm-up");
        r.listener.round_trip(&r.person, &r.c1, &text).await
    });
    futures_util::future::try_join_all(warm_up).await?;
    let (first, others) = ready.split_first().context("nobody to measure with")?;
    let mut measured = Measured::default();
    let before = match metrics {
        Some(metrics) => Some(crate::stages::read(metrics).await?),
        None => None,
    };
    let cpu_before = cpu_ms(pid)?;
    for i in 0..count {
        measured.sequential.push(
            first
                .listener
                .round_trip(&first.person, &first.c1, &format!("{tag} hello {i}"))
                .await?,
        );
    }
    measured
        .cpu
        .push((cpu_ms(pid)? - cpu_before) / count.max(1) as f64);
    if let (Some(metrics), Some(before)) = (metrics, before) {
        measured.stages = crate::stages::read(metrics).await?.since(&before);
    }
    if let Account::OwnTimes(store) = account {
        measured.own = crate::own::wait_for(store, &format!("{tag} hello "), count).await;
        if measured.own.len() < count {
            eprintln!(
                "{tag}: the yardstick wrote its own times for {} of {count} messages; its read and own figures cover those only",
                measured.own.len()
            );
        }
    }
    let burst = others.iter().map(|r| async move {
        let text = format!("{tag} how are you?");
        r.listener.round_trip(&r.person, &r.c1, &text).await
    });
    measured.burst = futures_util::future::try_join_all(burst).await?;
    Ok(measured)
}

/// The CPU time (user + system, all its threads, those ended included) process `pid` has
/// used, ms (`/proc/PID/stat`, in clock ticks of 10 ms).
fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("an unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are the stat's fields 14 and 15: the 12th and 13th after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .map(|i| {
            fields
                .get(*i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum();
    Ok(ticks * 10.0)
}

/// Replies "echo: <text>" to every text from someone else, at once, while `on` (the yardstick's
/// handler), each echo's own time written into `store` ([`crate::own`]).
pub fn echo_texts(
    client: &matrix_sdk::Client,
    me: String,
    on: Arc<AtomicBool>,
    store: std::path::PathBuf,
) {
    client.add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
        let (me, on, store) = (me.clone(), on.clone(), store.clone());
        async move {
            let echo = crate::own::Echo::start();
            let MessageType::Text(text) = &event.content.msgtype else {
                return;
            };
            if !on.load(Ordering::SeqCst) {
                return;
            }
            if event.sender.as_str() == me {
                return;
            }
            let reply = RoomMessageEventContent::text_plain(format!("echo: {}", text.body))
                .make_reply_to(
                    ReplyMetadata::new(&event.event_id, &event.sender, None),
                    ForwardThread::Yes,
                    AddMentions::No,
                );
            if room.send(reply).await.is_ok() {
                echo.sent(&store, &text.body);
            }
        }
    });
}

/// Long-polls back to back, optionally only one room. (`Client::sync` waits a second after a
/// sync that came back within a second, which would add up to 1 s to every round trip.)
pub fn keep_syncing(
    client: &matrix_sdk::Client,
    from: Option<String>,
    room: Option<OwnedRoomId>,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let mut settings = SyncSettings::default().timeout(Duration::from_secs(30));
        if let Some(room) = room {
            let mut filter = RoomFilter::empty();
            filter.rooms = Some(vec![room]);
            let mut definition = FilterDefinition::empty();
            definition.room = filter;
            settings = settings.filter(Filter::FilterDefinition(definition));
        }
        if let Some(token) = from {
            settings = settings.token(token);
        }
        loop {
            match client.sync_once(settings.clone()).await {
                Ok(response) => settings = settings.token(response.next_batch),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}
