//! Chaos soak: the promise under a failing network, a failing platform and SIGKILL at once.
//!
//! The bot (the binary) is killed and restarted at random moments while the recording proxy
//! fails a seeded share of its requests (500, 429, held then dropped, dropped before or after
//! the homeserver acted, delayed) and the mock platform fails or never answers a seeded share
//! of messages. Meanwhile a person sends plain messages, long formatted ones (answers of
//! several parts), edits and commands (`!new`, `!rename`, `!archive`/`!unarchive`,
//! `!delete C<n> confirm`). Then the faults stop, a clean bot runs until everything is
//! answered, and everything is counted from the person's timeline and the server's rooms,
//! never from the bot's logs.
//!
//! Settings (environment): `LM_CHAOS_CYCLES` (default 3, as in CI), `LM_CHAOS_SEED` (default
//! 22; printed), `LM_CHAOS_SHARE` (network faults in thousandths, default 50),
//! `LM_CHAOS_PLATFORM_SHARE` (platform faults in thousandths, default 50), `LM_CHAOS_KINDS`
//! (request kinds, default `sync,send,state,membership,media,history,account_data`; `all`
//! adds keys, to-device and login), `LM_CHAOS_LOG_DIR` (keep each bot's log there),
//! `LM_CHAOS_BOT_LOG` (its `RUST_LOG`, default `warn`). `scripts/soak --chaos` runs the long
//! version.

mod common;

use common::World;
use lambda_matrix_testkit::chaos::{ChaosConfig, ChaosCounts, Kind};
use lambda_matrix_testkit::person::Message;
use lambda_matrix_testkit::tally::{answer_to, Sent, Tally};
use lambda_matrix_testkit::{Person, SeededRng};
use matrix_sdk::ruma::OwnedEventId;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The word that makes the mock fail a message (`LAMBDA_MOCK_FAIL_MATCH`).
const FAIL_WORD: &str = "chaosfail";
/// The word that makes the mock stall past the platform timeout (`LAMBDA_MOCK_SLOW_MATCH`).
const STALL_WORD: &str = "chaosstall";

/// The run's settings, from the environment.
#[derive(Debug)]
struct Plan {
    cycles: usize,
    seed: u64,
    network: ChaosConfig,
    platform_per_mille: u64,
    log_dir: Option<std::path::PathBuf>,
    bot_log: String,
}

impl Plan {
    fn from_env() -> Plan {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| {
            var(name)
                .map(|v| v.trim().parse().expect("a number"))
                .unwrap_or(default)
        };
        let seed = number("LM_CHAOS_SEED", 22);
        let kinds = var("LM_CHAOS_KINDS")
            .unwrap_or_else(|| "sync,send,state,membership,media,history,account_data".into());
        Plan {
            cycles: number("LM_CHAOS_CYCLES", 3) as usize,
            seed,
            network: ChaosConfig {
                per_mille: number("LM_CHAOS_SHARE", 50) as u32,
                kinds: Kind::parse_list(&kinds).expect("LM_CHAOS_KINDS"),
                ..ChaosConfig::new(seed)
            },
            platform_per_mille: number("LM_CHAOS_PLATFORM_SHARE", 50),
            log_dir: var("LM_CHAOS_LOG_DIR").map(Into::into),
            bot_log: var("LM_CHAOS_BOT_LOG").unwrap_or_else(|| "warn".into()),
        }
    }
}

/// What the person did, and what they believe about their chats.
#[derive(Debug, Default)]
struct Diary {
    sent: Vec<Sent>,
    /// `!new` commands (event ids).
    news: Vec<String>,
    /// `!delete C<n> confirm` commands (event ids).
    deletes: Vec<String>,
    /// Long messages: event id and text.
    long: Vec<(String, String)>,
    /// Recent plain messages that may still be edited: event id and text.
    editable: Vec<(OwnedEventId, String)>,
    archived: BTreeSet<u32>,
    deleted: BTreeSet<u32>,
    platform_faults: usize,
}

/// The rooms the person talks in.
#[derive(Clone, Debug)]
struct Rooms {
    dm: String,
    c1: String,
    space: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_network_platform_and_kills_keep_the_promise() {
    let plan = Plan::from_env();
    eprintln!(
        "chaos soak: {} cycles, seed {} (LM_CHAOS_SEED={} repeats it), network {}‰ of {:?}, platform {}‰",
        plan.cycles,
        plan.seed,
        plan.seed,
        plan.network.per_mille,
        plan.network.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        plan.platform_per_mille
    );
    let world = World::new().await;
    let bot = world.start_bot(clean_settings(&world)).await;
    let anna = Arc::new(world.person("anna").await);
    let provisioned = world.first_contact(&anna, false).await;
    bot.stop().await;
    let rooms = Rooms {
        dm: provisioned.dm,
        c1: provisioned.c1,
        space: provisioned.space,
    };
    let rooms_at_start = world.synapse.room_count().await.expect("count");

    world.proxy.chaos(plan.network.clone());
    let diary = Arc::new(Mutex::new(Diary::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let person = tokio::spawn(person(
        anna.clone(),
        rooms.clone(),
        diary.clone(),
        SeededRng::new(plan.seed.rotate_left(17)),
        plan.platform_per_mille,
        stopped,
    ));
    kill_cycles(&world, &plan).await;
    let _ = stop.send(());
    person.await.expect("person");
    world.proxy.heal();
    let network = ChaosCounts::of(&world.proxy.chaos_hits());
    eprintln!("chaos soak: network faults injected: {network}");

    let bot = world.start_bot(clean_settings(&world)).await;
    let diary = Arc::try_unwrap(diary).expect("one owner").into_inner();
    let limit = Duration::from_secs(90 + 15 * plan.cycles as u64);
    let (tally, history) = settle(&world, &anna, &rooms, &diary, limit).await;
    let chats = anna.ask(&rooms.dm, "!chats").await.expect("!chats");
    bot.stop().await;
    let reconcile = dry_run(&world);
    let server = ServerRooms::read(&world, &anna.account.user_id, &rooms.space).await;
    let outcome = Outcome::of(
        &diary,
        &history,
        &server,
        &chats,
        &world.bot_account.user_id,
    );
    let rooms_created = world.synapse.room_count().await.expect("count") - rooms_at_start;
    eprintln!(
        "soak result: seed={} cycles={} sent={} answered_once={} answered_twice={} unanswered={} parts_missing={} duplicate_events={} rooms_created={rooms_created} new_commands={} deleted_back={} new_done={} deleted={} edits={} edits_answered_twice={} edits_lost={} long={} long_wrong={} network_faults={} platform_faults={} reconcile_clean={}",
        plan.seed, plan.cycles, tally.sent, tally.answered_once, tally.answered_twice,
        tally.unanswered, tally.parts_missing, tally.duplicate_events, diary.news.len(),
        outcome.deleted_back, outcome.new_done, outcome.deleted, tally.edits,
        tally.edits_answered_twice, tally.edits_lost, diary.long.len(), outcome.long_wrong,
        network.total(), diary.platform_faults, reconcile.is_ok()
    );
    check(&tally, &outcome, rooms_created, &reconcile);
}

/// Settings for the in-process bot: no platform faults, no limits on `!new`.
fn clean_settings(world: &World) -> lambda_matrix::config::Settings {
    world.settings(|raw| {
        raw.max_new_per_minute = Some("10000".into());
        raw.max_chats_per_user = Some("1000".into());
    })
}

/// Asserts the promise (after the result line is printed).
fn check(tally: &Tally, outcome: &Outcome, rooms_created: u64, reconcile: &Result<(), String>) {
    assert_eq!(tally.answered_twice, 0, "nothing answered twice: {tally:?}");
    assert_eq!(tally.unanswered, 0, "nothing unanswered: {tally:?}");
    assert_eq!(tally.parts_missing, 0, "every part there: {tally:?}");
    assert_eq!(tally.duplicate_events, 0, "no event sent twice: {tally:?}");
    assert_eq!(tally.edits_answered_twice, 0, "no edit answered twice");
    assert_eq!(tally.edits_lost, 0, "no edit lost");
    assert_eq!(outcome.long_wrong, 0, "long answers whole and right");
    assert_eq!(
        rooms_created as usize, outcome.new_done,
        "one room per !new carried out"
    );
    assert_eq!(outcome.deleted_back, 0, "no deleted chat back");
    assert_eq!(reconcile, &Ok(()), "nothing left to repair");
}

/// Starts and SIGKILLs the binary `plan.cycles` times: mostly after 1-8 s, every fourth cycle
/// (from the third) after 20-30 s, restarting after 0-0.8 s.
async fn kill_cycles(world: &World, plan: &Plan) {
    let mut rng = SeededRng::new(plan.seed);
    for cycle in 0..plan.cycles {
        let mut child = bot_process(world, plan, cycle);
        let run = if cycle % 4 == 2 {
            rng.between_ms(20_000, 30_000)
        } else {
            rng.between_ms(1_000, 8_000)
        };
        tokio::time::sleep(run).await;
        let exited = child.try_wait().ok().flatten();
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let _ = child.wait();
        eprintln!(
            "chaos soak: cycle {cycle}: ran {run:?}{}",
            exited.map_or(String::new(), |s| format!(", had exited by itself: {s}"))
        );
        tokio::time::sleep(rng.between_ms(0, 800)).await;
    }
}

/// The binary with the platform faults on, its log kept if asked.
fn bot_process(world: &World, plan: &Plan, cycle: usize) -> Child {
    let mut cmd = world.binary();
    cmd.arg("run")
        .env("MATRIX_MAX_NEW_PER_MINUTE", "10000")
        .env("MATRIX_MAX_CHATS_PER_USER", "1000")
        .env("LAMBDA_PLATFORM_TIMEOUT", "3s")
        .env("LAMBDA_MOCK_FAIL_MATCH", FAIL_WORD)
        .env("LAMBDA_MOCK_SLOW_MATCH", STALL_WORD)
        .env("LAMBDA_MOCK_SLOW_DELAY", "1h")
        .env("RUST_LOG", &plan.bot_log)
        .stdout(Stdio::null());
    match &plan.log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).expect("log dir");
            let file =
                std::fs::File::create(dir.join(format!("bot-{cycle:03}.log"))).expect("log file");
            cmd.stderr(file);
        }
        None => {
            cmd.stderr(Stdio::null());
        }
    }
    cmd.spawn().expect("spawn")
}

/// The person: one action every 200-600 ms until told to stop.
async fn person(
    anna: Arc<Person>,
    rooms: Rooms,
    diary: Arc<Mutex<Diary>>,
    mut rng: SeededRng,
    platform_per_mille: u64,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    for n in 0u32.. {
        let mut diary = diary.lock().await;
        act(&anna, &rooms, &mut diary, &mut rng, platform_per_mille, n).await;
        drop(diary);
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(rng.between_ms(200, 600)) => {}
        }
    }
}

/// One action, picked at random: a plain message (69 %), a long one (3 %), an edit (10 %),
/// `!new` (6 %), `!rename` (4 %), `!archive`/`!unarchive` (4 %), `!delete C<n> confirm` (4 %).
/// Commands that need a chat fall back to a plain message when there is none.
async fn act(
    anna: &Person,
    rooms: &Rooms,
    diary: &mut Diary,
    rng: &mut SeededRng,
    platform_per_mille: u64,
    n: u32,
) {
    let roll = rng.below(100);
    let done = match roll {
        0..69 => false,
        69..72 => long(anna, rooms, diary, n).await,
        72..82 => edit(anna, rooms, diary).await,
        82..88 => command(anna, rooms, diary, format!("!new Chaos {n}"), Some(New)).await,
        _ => chat_command(anna, rooms, diary, rng, roll, n).await,
    };
    if !done {
        plain(anna, rooms, diary, rng, platform_per_mille, n).await;
    }
}

/// Marks a `!new` for [`command`].
struct New;

/// A plain message in C1; a share of them carries a word that makes the platform fail or stall.
async fn plain(
    anna: &Person,
    rooms: &Rooms,
    diary: &mut Diary,
    rng: &mut SeededRng,
    platform_per_mille: u64,
    n: u32,
) {
    let (text, faulty) = if rng.chance(platform_per_mille / 2) {
        (format!("chaos {n} {FAIL_WORD}"), true)
    } else if rng.chance(platform_per_mille / 2) {
        (format!("chaos {n} {STALL_WORD}"), true)
    } else {
        (format!("chaos {n}"), false)
    };
    if let Ok(event) = anna.send(&rooms.c1, &text).await {
        diary.sent.push(Sent::Message {
            event_id: event.to_string(),
        });
        diary.platform_faults += usize::from(faulty);
        if !faulty {
            diary.editable.push((event, text));
            let excess = diary.editable.len().saturating_sub(3);
            diary.editable.drain(..excess);
        }
    }
}

/// About 20 KB of `<&>"` in backticks: the echo needs several events.
async fn long(anna: &Person, rooms: &Rooms, diary: &mut Diary, n: u32) -> bool {
    let text = format!("`{n}: {}`", "<&>\"".repeat(5_000));
    if let Ok(event) = anna.send(&rooms.c1, &text).await {
        diary.sent.push(Sent::Message {
            event_id: event.to_string(),
        });
        diary.long.push((event.to_string(), text));
    }
    true
}

/// Edits one of the last three plain messages (each at most once).
async fn edit(anna: &Person, rooms: &Rooms, diary: &mut Diary) -> bool {
    let Some((original, text)) = diary.editable.pop() else {
        return false;
    };
    let new_text = format!("{text} edited");
    if let Ok(event) = anna.edit(&rooms.c1, &original, &new_text).await {
        diary.sent.push(Sent::Edit {
            event_id: event.to_string(),
            of: original.to_string(),
            text: new_text,
        });
    }
    true
}

/// `!rename` (roll 88-91), `!archive`/`!unarchive` (92-95) or `!delete … confirm` (96-99) of a
/// chat the bot said it created; `false` if there is none yet.
async fn chat_command(
    anna: &Person,
    rooms: &Rooms,
    diary: &mut Diary,
    rng: &mut SeededRng,
    roll: u64,
    n: u32,
) -> bool {
    let chats: Vec<u32> = known_chats(anna, rooms, diary)
        .await
        .into_iter()
        .filter(|id| !diary.deleted.contains(id))
        .collect();
    if chats.is_empty() {
        return false;
    }
    let id = chats[rng.below(chats.len() as u64) as usize];
    let text = match roll {
        88..92 => format!("!rename C{id} Renamed {n}"),
        92..96 if diary.archived.remove(&id) => format!("!unarchive C{id}"),
        92..96 => {
            diary.archived.insert(id);
            format!("!archive C{id}")
        }
        _ => {
            diary.deleted.insert(id);
            format!("!delete C{id} confirm")
        }
    };
    command(anna, rooms, diary, text, None).await
}

/// Sends a command in the direct chat.
async fn command(
    anna: &Person,
    rooms: &Rooms,
    diary: &mut Diary,
    text: String,
    new: Option<New>,
) -> bool {
    if let Ok(event) = anna.send(&rooms.dm, &text).await {
        let event_id = event.to_string();
        if new.is_some() {
            diary.news.push(event_id.clone());
        } else if text.starts_with("!delete") {
            diary.deletes.push(event_id.clone());
        }
        diary.sent.push(Sent::Message { event_id });
    }
    true
}

/// The chats the bot said it created (`Created C<n>` replies to the person's `!new`s).
async fn known_chats(anna: &Person, rooms: &Rooms, diary: &Diary) -> Vec<u32> {
    let Ok(history) = anna.history(&rooms.dm, 2).await else {
        return Vec::new();
    };
    let news: BTreeSet<&str> = diary.news.iter().map(String::as_str).collect();
    history
        .iter()
        .filter(|m| m.in_reply_to.as_deref().is_some_and(|e| news.contains(e)))
        .filter_map(|m| chat_in(&m.body, "Created C"))
        .collect()
}

/// The number after `prefix` in `text` (`Created C12 …` → 12).
fn chat_in(text: &str, prefix: &str) -> Option<u32> {
    let at = text.find(prefix)? + prefix.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Waits (up to `limit`) until every message has a whole answer and nothing changed for a
/// while; the last count and the timeline it was made from.
async fn settle(
    world: &World,
    anna: &Person,
    rooms: &Rooms,
    diary: &Diary,
    limit: Duration,
) -> (Tally, Vec<Message>) {
    let deadline = tokio::time::Instant::now() + limit;
    let bot = world.bot_account.user_id.as_str();
    let mut last: Option<Tally> = None;
    loop {
        let history = timeline(anna, rooms, diary.sent.len()).await;
        let tally = Tally::count(&diary.sent, &history, bot);
        let done = tally.unanswered == 0 && tally.parts_missing == 0;
        if (done && last.as_ref() == Some(&tally)) || tokio::time::Instant::now() > deadline {
            return (tally, history);
        }
        last = Some(tally);
        tokio::time::sleep(Duration::from_secs(if done { 8 } else { 4 })).await;
    }
}

/// The direct chat's and C1's messages, after a few syncs (for the room keys).
async fn timeline(anna: &Person, rooms: &Rooms, sent: usize) -> Vec<Message> {
    for _ in 0..3 {
        let _ = anna.sync().await;
    }
    let pages = sent / 25 + 3;
    let mut all = Vec::new();
    for room in [&rooms.dm, &rooms.c1] {
        all.extend(anna.history(room, pages).await.expect("history"));
    }
    all
}

/// A dry-run reconcile of the stopped bot: `Ok` when it has nothing to restore, repair or
/// resume, else its report.
fn dry_run(world: &World) -> Result<(), String> {
    let out = world
        .binary()
        .args(["reconcile", "--dry-run", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run reconcile");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let counts = [
        "restored_user_meta",
        "restored_room_meta",
        "restored_chat_rows",
        "repaired",
    ];
    let clean = out.status.success()
        && counts.iter().all(|field| report[field] == 0)
        && report["resume_pending"] == serde_json::json!([])
        && report["conflicts"] == serde_json::json!([]);
    if clean {
        Ok(())
    } else {
        Err(report.to_string())
    }
}

/// A chat room as the server holds it.
#[derive(Debug)]
struct ChatRoom {
    room_id: String,
    chat_id: String,
    cause: String,
    bot_joined: bool,
}

/// The person's chat rooms and their Space's children, read with the admin API.
#[derive(Debug)]
struct ServerRooms {
    chats: Vec<ChatRoom>,
    children: BTreeSet<String>,
}

impl ServerRooms {
    async fn read(world: &World, owner: &str, space: &str) -> ServerRooms {
        let bot = world.bot_account.user_id.as_str();
        let mut chats = Vec::new();
        let mut children = BTreeSet::new();
        for room_id in world.synapse.rooms().await.expect("rooms") {
            let state = world.synapse.room_state(&room_id).await.expect("state");
            let of = |kind: &str, key: &str| {
                state
                    .iter()
                    .find(|e| e["type"] == kind && e["state_key"] == key)
                    .map(|e| e["content"].clone())
            };
            if room_id == space {
                children = state
                    .iter()
                    .filter(|e| e["type"] == "m.space.child")
                    .filter(|e| e["content"].as_object().is_some_and(|c| !c.is_empty()))
                    .filter_map(|e| e["state_key"].as_str().map(str::to_owned))
                    .collect();
            }
            let Some(marker) = of("org.lambda.matrix.chat", "") else {
                continue;
            };
            if marker["owner"] != owner {
                continue;
            }
            chats.push(ChatRoom {
                chat_id: marker["chat_id"].as_str().unwrap_or_default().to_owned(),
                cause: marker["cause"].as_str().unwrap_or_default().to_owned(),
                bot_joined: of("m.room.member", bot).is_some_and(|m| m["membership"] == "join"),
                room_id,
            });
        }
        ServerRooms { chats, children }
    }
}

/// What the commands left on the server.
#[derive(Debug)]
struct Outcome {
    /// `!new` answered "Created C<n>".
    new_done: usize,
    /// `!delete … confirm` answered "Deleted C<n>".
    deleted: usize,
    /// Deleted chats whose room the bot is in again, is in the Space again, or `!chats` lists.
    deleted_back: usize,
    /// Long messages whose (readable) answer is not the whole echo.
    long_wrong: usize,
}

impl Outcome {
    fn of(
        diary: &Diary,
        history: &[Message],
        server: &ServerRooms,
        chats: &str,
        bot: &str,
    ) -> Outcome {
        let replies = |events: &[String], prefix: &str| -> Vec<u32> {
            events
                .iter()
                .filter_map(|e| chat_in(&answer_to(history, bot, e).text, prefix))
                .collect()
        };
        let deleted = replies(&diary.deletes, "Deleted C");
        let back = deleted
            .iter()
            .filter(|id| {
                let chat_id = format!("C{id}");
                let listed = chats.contains(&format!("- {chat_id} "));
                let present = server.chats.iter().any(|c| {
                    c.chat_id == chat_id && (c.bot_joined || server.children.contains(&c.room_id))
                });
                if listed || present {
                    eprintln!("chaos soak: deleted {chat_id} is back (listed {listed}, on the server {present})");
                }
                listed || present
            })
            .count();
        report_extra_rooms(diary, server);
        Outcome {
            new_done: replies(&diary.news, "Created C").len(),
            deleted: deleted.len(),
            deleted_back: back,
            long_wrong: long_wrong(diary, history, bot),
        }
    }
}

/// Prints `!new` commands that made more than one room, and rooms whose cause is no `!new`.
fn report_extra_rooms(diary: &Diary, server: &ServerRooms) {
    let mut by_cause: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for chat in &server.chats {
        by_cause
            .entry(chat.cause.as_str())
            .or_default()
            .push(chat.room_id.as_str());
    }
    for (cause, rooms) in by_cause {
        let known = diary.news.iter().any(|n| n == cause);
        if rooms.len() > 1 || (!known && !cause.starts_with('!')) {
            eprintln!("chaos soak: cause {cause} (a !new: {known}) has rooms {rooms:?}");
        }
    }
}

/// Long messages whose complete, readable answer is not `[C1] echo: <text>` (whitespace aside).
fn long_wrong(diary: &Diary, history: &[Message], bot: &str) -> usize {
    let squeeze = |t: &str| t.split_whitespace().collect::<String>();
    diary
        .long
        .iter()
        .filter(|(event, text)| {
            let answer = answer_to(history, bot, event);
            let wrong = answer.readable
                && answer.answers == 1
                && squeeze(&answer.text) != squeeze(&format!("[C1] echo: {text}"));
            if wrong {
                eprintln!(
                    "chaos soak: the answer to the long message {event} is not its echo ({} characters)",
                    answer.text.len()
                );
            }
            wrong
        })
        .count()
}
