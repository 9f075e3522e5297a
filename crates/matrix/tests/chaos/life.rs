//! The life of a deployment inside the chaos soak (issue 30, point 9): besides the kills and
//! the failing network and platform, every four cycles bring
//!
//! - **cycle 4k+1**: while the bot is down, a message followed by reactions and redactions
//!   (which must not hide it at the next start); then, once the bot serves, the homeserver
//!   gone (every request answered 502) for four times `MATRIX_SEND_RETRY_FOR`, and 30 s of
//!   the same process after it: what was held up must come in that time, with no restart;
//! - **cycle 4k+2**: the bot's session revoked while it runs (its device deleted with the
//!   admin API; the password is set): it must log in again by itself;
//! - **cycle 4k+3**: while the bot is down, a message in each of the herd rooms; the next
//!   process answers against a slow platform two at a time.
//!
//! Everything is counted from the server: devices from the admin API, answers (and when they
//! came) from the person's timeline.

use super::Diary;
use lambda_matrix_testkit::person::Message;
use lambda_matrix_testkit::tally::Sent;
use lambda_matrix_testkit::{Fault, Person, SeededRng};
use matrix_sdk::ruma::OwnedEventId;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many herd rooms the person has (made before the chaos, never deleted).
pub(super) const HERD_ROOMS: u32 = 5;
/// The send window of an outage cycle's process; the outage lasts four times as long.
const SEND_WINDOW: Duration = Duration::from_secs(2);
/// How long an outage cycle's process runs after the homeserver is back: the bound of the
/// rule ("within 30 s after the homeserver answers again").
const AFTER_OUTAGE: Duration = Duration::from_secs(30);
/// Reaction keys for the hidden episode (never 🛑 or 🔁: those act).
const KEYS: [&str; 5] = ["👍", "👀", "🎉", "❤️", "😄"];

/// What a cycle carries besides its kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Episode {
    /// Today's cycle: runs, is killed.
    Plain,
    /// A message hidden behind reactions and redactions while down, then an outage.
    HiddenThenOutage,
    /// A long run with the session revoked in it.
    Revoked,
    /// Messages in every herd room while down, answered by a slow platform.
    Herd,
}

impl Episode {
    /// The episode of `cycle`.
    pub(super) fn of(cycle: usize) -> Episode {
        match cycle % 4 {
            1 => Episode::HiddenThenOutage,
            2 => Episode::Revoked,
            3 => Episode::Herd,
            _ => Episode::Plain,
        }
    }

    /// The settings this cycle's process gets on top of the soak's.
    pub(super) fn env(self) -> Vec<(&'static str, String)> {
        match self {
            Episode::HiddenThenOutage => vec![(
                "MATRIX_SEND_RETRY_FOR",
                format!("{}s", SEND_WINDOW.as_secs()),
            )],
            Episode::Herd => vec![
                ("LAMBDA_MOCK_DELAY", "400ms".into()),
                ("LAMBDA_MAX_CONCURRENT_ANSWERS", "2".into()),
            ],
            Episode::Plain | Episode::Revoked => Vec::new(),
        }
    }
}

/// An outage, in milliseconds of the (shared) wall clock the homeserver stamps events with.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outage {
    pub(super) start_ms: u64,
    pub(super) end_ms: u64,
    /// When the process that lived through it was killed.
    pub(super) killed_ms: u64,
}

/// What the episodes did and what the server showed of the bot meanwhile.
#[derive(Debug, Default)]
pub(super) struct Life {
    pub(super) outages: Vec<Outage>,
    /// Sessions revoked while the bot ran.
    pub(super) revocations: usize,
    /// Of them, how many the same process replaced with a new device by itself.
    pub(super) relogins: usize,
    /// Messages sent behind reactions and redactions while the bot was down.
    pub(super) hidden: usize,
    /// Messages sent in the herd rooms while the bot was down.
    pub(super) herd: usize,
    /// Cycles whose process had exited by itself before its kill.
    pub(super) exited: usize,
}

/// The wall clock in milliseconds.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// While the bot is down: a message in C1, then reactions to it and to the latest messages
/// before it, then some of those reactions removed.
pub(super) async fn hide_a_message(anna: &Person, c1: &str, diary: &mut Diary, n: usize) {
    let earlier = anna.messages(c1).await.unwrap_or_default();
    let Ok(message) = anna.send(c1, &format!("hidden {n}")).await else {
        return;
    };
    diary.sent.push(Sent::Message {
        event_id: message.to_string(),
    });
    diary.life.hidden += 1;
    let mut targets = vec![message];
    targets.extend(
        earlier
            .iter()
            .rev()
            .take(2)
            .filter_map(|m| OwnedEventId::try_from(m.event_id.as_str()).ok()),
    );
    let mut reactions = Vec::new();
    for key in KEYS {
        for target in &targets {
            if let Ok(reaction) = anna.react(c1, target, key).await {
                reactions.push(reaction);
            }
        }
    }
    for reaction in reactions.iter().step_by(3) {
        let _ = anna.redact(c1, reaction).await;
    }
}

/// While the bot is down: a message in every herd room.
pub(super) async fn write_to_the_herd(anna: &Person, herd: &[String], diary: &mut Diary, n: usize) {
    for (k, room) in herd.iter().enumerate() {
        if let Ok(event) = anna.send(room, &format!("herd {n} room {k}")).await {
            diary.sent.push(Sent::Message {
                event_id: event.to_string(),
            });
            diary.life.herd += 1;
        }
    }
}

/// Once the bot serves: every request fails with 502 for four send windows; then the same
/// process runs on for [`AFTER_OUTAGE`]. The outage, with the moment it ends stamped as the
/// kill (the caller kills right after).
pub(super) async fn outage(
    proxy: &lambda_matrix_testkit::RecordingProxy,
    rng: &mut SeededRng,
) -> Outage {
    tokio::time::sleep(rng.between_ms(1_000, 3_000)).await;
    let down = SEND_WINDOW * 4;
    let start_ms = now_ms();
    for method in ["GET", "PUT", "POST", "DELETE"] {
        proxy.inject(Fault::new(method, "/", 502).lasting(down));
    }
    tokio::time::sleep(down).await;
    let end_ms = now_ms();
    tokio::time::sleep(AFTER_OUTAGE).await;
    Outage {
        start_ms,
        end_ms,
        killed_ms: now_ms(),
    }
}

/// After `wait`, deletes the bot's devices (its running session with them) and waits, until
/// `deadline`, for a device the bot makes by logging in again. Whether it did.
pub(super) async fn revoke(
    synapse: &lambda_matrix_testkit::Synapse,
    bot: &str,
    wait: Duration,
    deadline: tokio::time::Instant,
) -> bool {
    tokio::time::sleep(wait).await;
    let Ok(old) = synapse.devices(bot).await else {
        return false;
    };
    let since = tokio::time::Instant::now();
    for device in &old {
        if let Err(error) = synapse.delete_device(bot, device).await {
            eprintln!("chaos soak: cannot delete the bot's device {device}: {error}");
        }
    }
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = synapse.devices(bot).await.unwrap_or_default();
        if now.iter().any(|d| !old.contains(d)) {
            eprintln!(
                "chaos soak: the bot's devices {old:?} deleted; it logged in again as {now:?} after {:?}",
                since.elapsed()
            );
            return true;
        }
    }
    eprintln!("chaos soak: the bot's devices {old:?} deleted; no new device came");
    false
}

/// Of the messages sent before an outage ended and first answered after it began: how many
/// the process that lived through it answered after it ended (late answers), and how many of
/// the answers the outage held up were delivered only after that process was killed (missed:
/// the rule is within 30 s, no restart). An answer held up is the oldest message then waiting
/// in its room: the one being answered or sent when the homeserver went away (the ones behind
/// it wait their turn in the room's order, which a backlog can take longer than 30 s to reach).
pub(super) fn late_answers(
    outages: &[Outage],
    sent: &[Sent],
    history: &[Message],
    bot: &str,
) -> (usize, usize) {
    let by_id: BTreeMap<&str, &Message> =
        history.iter().map(|m| (m.event_id.as_str(), m)).collect();
    let mut first_answer: BTreeMap<&str, u64> = BTreeMap::new();
    for reply in history
        .iter()
        .filter(|m| m.sender == bot && m.replaces.is_none())
    {
        if let Some(to) = reply.in_reply_to.as_deref() {
            let at = first_answer.entry(to).or_insert(reply.ts);
            *at = (*at).min(reply.ts);
        }
    }
    let (mut late, mut missed) = (0, 0);
    for outage in outages {
        // Per room, the oldest message still waiting when the outage began.
        let mut held_up: BTreeMap<&str, (u64, &str, u64)> = BTreeMap::new();
        for item in sent {
            let Sent::Message { event_id } = item else {
                continue;
            };
            let (Some(message), Some(&answered)) = (
                by_id.get(event_id.as_str()),
                first_answer.get(event_id.as_str()),
            ) else {
                continue;
            };
            if message.ts >= outage.end_ms || answered < outage.start_ms {
                continue;
            }
            if answered >= outage.end_ms && answered <= outage.killed_ms {
                late += 1;
            }
            if message.ts < outage.start_ms {
                let room = message.room.as_str();
                let oldest = held_up
                    .entry(room)
                    .or_insert((message.ts, event_id, answered));
                if message.ts < oldest.0 {
                    *oldest = (message.ts, event_id, answered);
                }
            }
        }
        for (_, event_id, answered) in held_up.into_values() {
            if answered > outage.killed_ms {
                eprintln!("chaos soak: {event_id}, held up by the outage, was answered only after a restart");
                missed += 1;
            }
        }
    }
    (late, missed)
}
