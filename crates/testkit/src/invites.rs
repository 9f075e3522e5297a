//! Invites by the thousand, for the memory bound of issue 30 (point 5): strangers inviting the
//! bot into direct chats it declines, and an allowed person with a Space opening extra direct
//! chats, each left by the person once the bot said hello again (the bot then leaves it too).
//! The people speak plain client-server HTTP (no client state here, so thousands of rooms cost
//! this side nothing); what the bot did is read from the recording proxy in front of it (the
//! rooms it left and forgot, its messages in each), and its memory from `/proc`.
//! Used by `scripts/bench --invites N` and the `deployment::memory` test.

use crate::{RecordingProxy, Registered, Synapse};
use anyhow::{bail, Context};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How long one room may take, from its invite until the bot forgot it.
const PER_ROOM: Duration = Duration::from_secs(120);

/// Someone who invites the bot, over plain HTTP to the homeserver.
#[derive(Clone, Debug)]
pub struct Inviter {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Inviter {
    /// `account` on the homeserver at `url` (its registration token).
    pub fn new(url: &str, account: &Registered) -> Inviter {
        Inviter {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            token: account.access_token.clone(),
        }
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: {status} {body}");
        }
        Ok(body)
    }

    /// Creates a private room marked as a direct chat, inviting `bot` (what a client does for
    /// "start a chat"); its id.
    pub async fn open_dm(&self, bot: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "is_direct": true,
            "preset": "trusted_private_chat",
            "invite": [bot],
        });
        let url = format!("{}/_matrix/client/v3/createRoom", self.url);
        let room = self
            .call(self.http.post(url).json(&body), "createRoom")
            .await?;
        Ok(room["room_id"].as_str().context("no room_id")?.to_owned())
    }

    /// Leaves `room`.
    pub async fn leave(&self, room: &str) -> anyhow::Result<()> {
        let url = format!("{}/_matrix/client/v3/rooms/{room}/leave", self.url);
        self.call(self.http.post(url).json(&serde_json::json!({})), "leave")
            .await?;
        Ok(())
    }

    /// The bodies of `sender`'s messages in `room` (the latest 50: all of them here).
    pub async fn said_by(&self, room: &str, sender: &str) -> anyhow::Result<Vec<String>> {
        let url = format!(
            "{}/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50",
            self.url
        );
        let page = self.call(self.http.get(url), "messages").await?;
        Ok(page["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.room.message" && e["sender"] == sender)
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect())
    }
}

/// What the bot did, as the proxy saw it (answered 200).
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Rooms the bot left.
    pub left: HashSet<String>,
    /// Rooms the bot forgot.
    pub forgotten: HashSet<String>,
    /// Messages the bot sent, by room.
    pub sent: HashMap<String, usize>,
}

impl Seen {
    /// Every request the proxy recorded, read again (a request in flight counts once answered).
    fn read(proxy: &RecordingProxy) -> Seen {
        let mut seen = Seen::default();
        for request in proxy.requests() {
            if request.status != 200 {
                continue;
            }
            let Some(room) = room_in(&request.path) else {
                continue;
            };
            match request.method.as_str() {
                "POST" if request.path.ends_with("/leave") => {
                    seen.left.insert(room);
                }
                "POST" if request.path.ends_with("/forget") => {
                    seen.forgotten.insert(room);
                }
                "PUT" if request.path.contains("/send/m.room.message/") => {
                    *seen.sent.entry(room).or_default() += 1
                }
                _ => {}
            }
        }
        seen
    }

    /// Whether the bot left `room` and forgot it.
    pub fn gone(&self, room: &str) -> bool {
        self.left.contains(room) && self.forgotten.contains(room)
    }

    /// Messages the bot sent into `room`.
    pub fn sent_to(&self, room: &str) -> usize {
        self.sent.get(room).copied().unwrap_or(0)
    }
}

/// The room id in a client-server path (`…/rooms/<id>/…`), percent-decoded.
fn room_in(path: &str) -> Option<String> {
    let mut parts = path.split('/');
    parts.find(|p| *p == "rooms")?;
    let encoded = parts.next()?;
    Some(
        encoded
            .replace("%21", "!")
            .replace("%3A", ":")
            .replace("%3a", ":"),
    )
}

/// What the bot did, for waiting on it: the proxy's record read again every 200 ms by
/// [`refresh`].
#[derive(Clone, Debug)]
pub struct Watch {
    seen: watch::Receiver<Seen>,
}

/// Reads the proxy's record into `seen` every 200 ms, for ever (run it beside the waiting).
async fn refresh(proxy: &RecordingProxy, seen: &watch::Sender<Seen>) {
    loop {
        seen.send_replace(Seen::read(proxy));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Watch {
    /// What the bot did so far.
    pub fn now(&self) -> Seen {
        self.seen.borrow().clone()
    }

    /// Waits (at most `limit`) until `done` holds of what the bot did.
    pub async fn until(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Seen) -> bool,
    ) -> anyhow::Result<()> {
        let mut seen = self.seen.clone();
        let waited = async { seen.wait_for(|s| done(s)).await.map(|_| ()) };
        match tokio::time::timeout(limit, waited).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => bail!("the proxy watch stopped while waiting for {what}"),
            Err(_) => bail!("waited {limit:?} for {what}"),
        }
    }
}

/// The resident memory of a process, KiB, from `/proc/<pid>/status` (0 when unreadable).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss: u64,
    /// The most it was resident so far (`VmHWM`).
    pub peak: u64,
    /// Resident now and not backed by a file (`RssAnon`): the heap and stacks, without the
    /// binary's own pages.
    pub anon: u64,
}

impl Memory {
    /// Process `pid`'s memory now.
    pub fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
            anon: field("RssAnon:"),
        }
    }
}

/// A run: who invites, how many, and the bot's process.
#[derive(Debug)]
pub struct Plan {
    /// The homeserver, directly (the people do not go through the proxy).
    pub homeserver: String,
    /// The bot's user id.
    pub bot: String,
    /// The one allowed person (`MATRIX_ALLOWED_USERS`), no first contact yet.
    pub person: Registered,
    /// People the bot does not serve; they take turns inviting.
    pub strangers: Vec<Registered>,
    /// Rooms of each kind before the baseline is read.
    pub warm_up: usize,
    /// Rooms of each kind measured.
    pub n: usize,
    /// Extra direct chats open at once: below `MATRIX_MAX_DMS_PER_USER` (the first contact's
    /// direct chat counts too), so that every one is answered "hello again".
    pub open_at_once: usize,
    /// Stranger rooms waiting for the bot at once.
    pub stranger_window: usize,
    /// The bot's process id.
    pub pid: u32,
}

/// One extra direct chat: what the bot said in it (read by the person before leaving) and
/// how many messages the proxy saw it send there.
#[derive(Clone, Debug)]
pub struct Extra {
    /// The room.
    pub room: String,
    /// The bodies of the bot's messages there, as the person read them before leaving.
    pub said: Vec<String>,
    /// The messages the proxy saw the bot send there (all of the run).
    pub sends: usize,
}

impl Extra {
    /// Whether the bot said one thing here, once, and it began with `greeting`.
    pub fn answered_once(&self, greeting: &str) -> bool {
        self.sends == 1 && self.said.len() == 1 && self.said[0].starts_with(greeting)
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Measured {
    /// Stranger rooms (measured, not the warm-up); each was left and forgotten by the bot.
    pub stranger_rooms: Vec<String>,
    /// Messages the bot sent into stranger rooms (warm-up included).
    pub stranger_sends: usize,
    /// The extra direct chats (measured); each was left and forgotten by the bot.
    pub extra: Vec<Extra>,
    /// The bot's memory after the warm-up.
    pub baseline: Memory,
    /// ... and once the bot had forgotten every measured room (its `peak` over its life).
    pub after: Memory,
    /// From the first measured invite until the bot forgot the last room.
    pub seconds: f64,
    /// Rooms the bot was in before the first contact.
    pub joined_before: usize,
    /// ... and at the end (the first contact adds the person's direct chat, Space and C1).
    pub joined_after: usize,
}

impl Measured {
    /// Resident memory after over baseline.
    pub fn ratio(&self) -> f64 {
        self.after.rss as f64 / self.baseline.rss.max(1) as f64
    }
}

/// Runs `plan` against a bot already serving behind `proxy`: the person's first contact, the
/// warm-up, the baseline, then `n` stranger rooms and `n` extra direct chats at the same time.
pub async fn measure(
    plan: &Plan,
    synapse: &Synapse,
    proxy: &RecordingProxy,
) -> anyhow::Result<Measured> {
    let (seen, watching) = watch::channel(Seen::default());
    let watch = Watch { seen: watching };
    tokio::select! {
        measured = run(plan, synapse, &watch) => measured,
        () = refresh(proxy, &seen) => unreachable!("refreshes for ever"),
    }
}

async fn run(plan: &Plan, synapse: &Synapse, watch: &Watch) -> anyhow::Result<Measured> {
    let person = Inviter::new(&plan.homeserver, &plan.person);
    let strangers: Vec<Inviter> = plan
        .strangers
        .iter()
        .map(|s| Inviter::new(&plan.homeserver, s))
        .collect();
    let joined_before = joined(synapse, &plan.bot).await?;
    let dm = person.open_dm(&plan.bot).await?;
    watch
        .until("the welcome", PER_ROOM, |s| s.sent_to(&dm) >= 1)
        .await?;
    let warm = run_both(plan, &person, &strangers, watch, plan.warm_up).await?;
    let baseline = Memory::of(plan.pid);
    let started = Instant::now();
    let (stranger_rooms, extra) = run_both(plan, &person, &strangers, watch, plan.n).await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = Memory::of(plan.pid);
    let seen = watch.now();
    let stranger_sends = (warm.0.iter().chain(&stranger_rooms))
        .map(|r| seen.sent_to(r))
        .sum();
    let extra = extra
        .into_iter()
        .map(|e| Extra {
            sends: seen.sent_to(&e.room),
            ..e
        })
        .collect();
    Ok(Measured {
        stranger_rooms,
        stranger_sends,
        extra,
        baseline,
        after,
        seconds,
        joined_before,
        joined_after: joined(synapse, &plan.bot).await?,
    })
}

/// How many rooms `user` is joined to, by the homeserver's admin API.
async fn joined(synapse: &Synapse, user: &str) -> anyhow::Result<usize> {
    let rooms = synapse
        .admin_get(&format!("/_synapse/admin/v1/users/{user}/joined_rooms"))
        .await?;
    Ok(rooms["total"].as_u64().context("no total")? as usize)
}

/// `n` stranger rooms and `n` extra direct chats at the same time, each until the bot forgot
/// it.
async fn run_both(
    plan: &Plan,
    person: &Inviter,
    strangers: &[Inviter],
    watch: &Watch,
    n: usize,
) -> anyhow::Result<(Vec<String>, Vec<Extra>)> {
    let declined = declined(plan, strangers, watch, n);
    let answered = extra_chats(plan, person, watch, n);
    tokio::try_join!(declined, answered)
}

/// `n` direct chats from strangers, at most `stranger_window` waiting at once; returns once
/// the bot left and forgot each.
async fn declined(
    plan: &Plan,
    strangers: &[Inviter],
    watch: &Watch,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let window = Arc::new(Semaphore::new(plan.stranger_window.max(1)));
    let mut rooms = JoinSet::new();
    for i in 0..n {
        let permit = window.clone().acquire_owned().await?;
        let (stranger, watch) = (strangers[i % strangers.len()].clone(), watch.clone());
        let bot = plan.bot.clone();
        rooms.spawn(async move {
            let _permit = permit;
            let room = stranger.open_dm(&bot).await?;
            let what = format!("the bot to decline {room}");
            watch.until(&what, PER_ROOM, |s| s.gone(&room)).await?;
            Ok::<_, anyhow::Error>(room)
        });
    }
    let mut done = Vec::new();
    while let Some(room) = rooms.join_next().await {
        done.push(room??);
    }
    Ok(done)
}

/// `n` extra direct chats of the person, `open_at_once` at a time: each opened, answered,
/// left by the person, then left and forgotten by the bot.
async fn extra_chats(
    plan: &Plan,
    person: &Inviter,
    watch: &Watch,
    n: usize,
) -> anyhow::Result<Vec<Extra>> {
    let window = Arc::new(Semaphore::new(plan.open_at_once.max(1)));
    let mut rooms = JoinSet::new();
    for _ in 0..n {
        let permit = window.clone().acquire_owned().await?;
        let (person, watch, bot) = (person.clone(), watch.clone(), plan.bot.clone());
        rooms.spawn(async move {
            let _permit = permit;
            let room = person.open_dm(&bot).await?;
            let what = format!("the bot's answer in {room}");
            watch
                .until(&what, PER_ROOM, |s| s.sent_to(&room) >= 1)
                .await?;
            let said = person.said_by(&room, &bot).await?;
            person.leave(&room).await?;
            let what = format!("the bot to leave {room}");
            watch.until(&what, PER_ROOM, |s| s.gone(&room)).await?;
            Ok::<_, anyhow::Error>(Extra {
                room,
                said,
                sends: 0,
            })
        });
    }
    let mut done = Vec::new();
    while let Some(extra) = rooms.join_next().await {
        done.push(extra??);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_room_of_a_path_is_decoded() {
        assert_eq!(
            super::room_in("/_matrix/client/v3/rooms/%21abc%3Alocalhost/forget").as_deref(),
            Some("!abc:localhost")
        );
        assert_eq!(super::room_in("/_matrix/client/v3/sync"), None);
    }
}
