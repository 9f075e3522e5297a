//! The herd after downtime (issue 30, point 4): `n` chat rooms, each with a message its owner
//! sent while the bot was down, then the bot starts against a mock taking 1 s per answer with
//! `LAMBDA_MAX_CONCURRENT_ANSWERS=4`: the time until every one is answered (ideal: n/4 s), the
//! bot's peak RSS, and how long a person who writes during that catch-up waits for their answer.

use crate::rooms::{self, Member};
use crate::roundtrip::{Listener, Ready};
use crate::startup::{self, BotRunner};
use lambda_matrix_testkit::{Person, Registered, Synapse};
use matrix_sdk::ruma::RoomId;
use std::time::Instant;

/// What the herd took.
#[derive(Debug)]
pub struct Herd {
    /// Rooms with a message waiting.
    pub rooms: usize,
    /// From the bot's spawn until every one was answered.
    pub seconds: f64,
    /// A message sent once the bot was ready, until its answer (ms).
    pub probe_ms: f64,
    /// The bot's peak RSS (KiB).
    pub peak_rss_kib: u64,
}

/// One person of the herd, in all four chat rooms.
struct Herder {
    person: Person,
    chats: Vec<String>,
    listener: Listener,
}

/// Builds `n` rooms' worth of people (four chat rooms each; the bot's rooms grow from `built`),
/// has each room's owner write while the bot is down, then starts the bot and measures.
pub async fn run(
    synapse: &Synapse,
    account: &Registered,
    runner: &BotRunner,
    prober: &Ready,
    built: usize,
    n: usize,
) -> anyhow::Result<Herd> {
    let people = n.div_ceil(4);
    eprintln!("herd: {people} people with four chat rooms each ...");
    let members = rooms::grow(synapse, account, built, built + people * 5).await?;
    let herders = join_all(&synapse.url(), &members).await?;
    // The device that will read the messages must be the one they are encrypted for: a start
    // on this homeserver address first (a start on another address logs in anew), then down.
    let (mut bot, _) = runner.serve(&synapse.url()).await?;
    startup::stop(&mut bot)?;
    // The bot is down: the messages wait.
    let mut sent = Vec::new();
    for herder in &herders {
        for room in &herder.chats {
            if sent.len() == n {
                break;
            }
            let event_id = herder.person.send(room, "herd: are you there?").await?;
            sent.push((&herder.listener, event_id.to_string()));
        }
    }
    eprintln!("herd: {} messages wait; starting the bot ...", sent.len());
    let started = Instant::now();
    let slow = [
        ("LAMBDA_MOCK_DELAY", "1s"),
        ("LAMBDA_MAX_CONCURRENT_ANSWERS", "4"),
    ];
    let (mut bot, _metrics) = runner.serve_with(&synapse.url(), &slow).await?;
    let probe_ms = (prober.listener)
        .round_trip(&prober.person, &prober.c1, "written during the herd")
        .await?;
    for (listener, event_id) in &sent {
        listener
            .until(&format!("the herd's answer to {event_id}"), |l| {
                l.replied(event_id)
            })
            .await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = startup::peak_rss(bot.id());
    startup::stop(&mut bot)?;
    Ok(Herd {
        rooms: sent.len(),
        seconds,
        probe_ms,
        peak_rss_kib,
    })
}

/// Logs each member in, joins all their chat rooms and watches them.
async fn join_all(url: &str, members: &[Member]) -> anyhow::Result<Vec<Herder>> {
    let mut herders = Vec::new();
    for chunk in members.chunks(8) {
        let joined = chunk.iter().map(|member| async move {
            let person = Person::login(url, &member.account).await?;
            for room in &member.chats {
                person
                    .client
                    .join_room_by_id(<&RoomId>::try_from(room.as_str())?)
                    .await?;
            }
            person.sync().await?;
            let listener = Listener::start(&person, None);
            Ok::<_, anyhow::Error>(Herder {
                person,
                chats: member.chats.clone(),
                listener,
            })
        });
        herders.extend(futures_util::future::try_join_all(joined).await?);
    }
    Ok(herders)
}
