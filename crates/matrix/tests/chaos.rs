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
//! Settings (environment): `LM_CHAOS_CYCLES` (default 4, as in CI: one of each episode),
//! `LM_CHAOS_SEED` (default 22; printed), `LM_CHAOS_SHARE` (network faults in thousandths,
//! default 50), `LM_CHAOS_PLATFORM_SHARE` (platform faults in thousandths, default 50),
//! `LM_CHAOS_KINDS` (request kinds, default
//! `sync,send,state,membership,media,history,account_data`; `all` adds keys, to-device and
//! login), `LM_CHAOS_LOG_DIR` (keep each bot's log there), `LM_CHAOS_BOT_LOG` (its `RUST_LOG`,
//! default `warn`), `LM_CHAOS_PERSON_LOG` (a log filter for this test process, written to
//! `person.log` in the log folder: the person's client, e.g. `matrix_sdk_crypto=debug` to see
//! which room keys reached it; run the soak alone, as `scripts/soak --chaos` does, or the other
//! tests' bots write there too), `LM_CHAOS_PLATFORM` (`mock`, the default, or `openai`: the
//! bot streams answers from the fake OpenAI-compatible server, which fails a seeded share of
//! requests with 500, 429, no answer, or a stream cut halfway).
//! `scripts/soak --chaos` runs the long version.
//!
//! Every four cycles also bring the life of a deployment (`chaos/life.rs`): a message hidden
//! behind reactions and redactions while the bot is down, the homeserver gone for longer than
//! the send window mid-run, the session revoked mid-run, and a herd of rooms after downtime
//! against a slow platform.

mod common;
#[path = "chaos/life.rs"]
mod life;

use common::World;
use lambda_matrix_platform::fake_openai::{FakeChaos, FakeOpenAi, FakeOptions};
use lambda_matrix_testkit::chaos::{ChaosConfig, ChaosCounts, Kind};
use lambda_matrix_testkit::person::Message;
use lambda_matrix_testkit::tally::{answer_to, Sent, Tally, INTERRUPTED};
use lambda_matrix_testkit::{Fault, Person, SeededRng};
use life::{Episode, Life};
use matrix_sdk::ruma::OwnedEventId;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
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
    /// `LM_CHAOS_PERSON_LOG`: this process's log filter, if any.
    person_log: Option<String>,
    openai: bool,
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
            cycles: number("LM_CHAOS_CYCLES", 4) as usize,
            seed,
            network: ChaosConfig {
                per_mille: number("LM_CHAOS_SHARE", 50) as u32,
                kinds: Kind::parse_list(&kinds).expect("LM_CHAOS_KINDS"),
                ..ChaosConfig::new(seed)
            },
            platform_per_mille: number("LM_CHAOS_PLATFORM_SHARE", 50),
            log_dir: var("LM_CHAOS_LOG_DIR").map(Into::into),
            bot_log: var("LM_CHAOS_BOT_LOG").unwrap_or_else(|| "warn".into()),
            person_log: var("LM_CHAOS_PERSON_LOG"),
            openai: match var("LM_CHAOS_PLATFORM").as_deref() {
                None | Some("mock") => false,
                Some("openai") => true,
                Some(other) => panic!("LM_CHAOS_PLATFORM: {other:?} is not mock or openai"),
            },
        }
    }
}

/// The fake OpenAI-compatible servers of an `openai` run: one failing (for the bot that is
/// killed), one clean (for the bot that finishes).
#[derive(Debug)]
struct Fakes {
    failing: FakeOpenAi,
    clean: FakeOpenAi,
}

impl Fakes {
    async fn start(plan: &Plan) -> Option<Fakes> {
        if !plan.openai {
            return None;
        }
        let options = |chaos| FakeOptions {
            chunk_delay: Duration::from_millis(20),
            chaos,
            ..FakeOptions::default()
        };
        let chaos = FakeChaos {
            seed: plan.seed,
            per_mille: plan.platform_per_mille as u32,
        };
        Some(Fakes {
            failing: FakeOpenAi::start(options(Some(chaos))).await.expect("fake"),
            clean: FakeOpenAi::start(options(None)).await.expect("fake"),
        })
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
    /// Faults the proxy injected.
    network: ChaosCounts,
    /// Platform faults: messages with a failing word (mock), or the fake server's faults.
    platform_faults: usize,
    /// What the episodes of a deployment's life did.
    life: Life,
}

/// The rooms the person talks in.
#[derive(Clone, Debug)]
struct Rooms {
    dm: String,
    c1: String,
    space: String,
    /// Chats written to all at once while the bot is down (never renamed, archived or deleted).
    herd: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_network_platform_and_kills_keep_the_promise() {
    let plan = Plan::from_env();
    plan.announce();
    plan.log_the_person();
    let fakes = Fakes::start(&plan).await;
    let world = World::new().await;
    let (anna, rooms) = meet(&world, &fakes, life::HERD_ROOMS).await;
    let rooms_at_start = world.synapse.room_count().await.expect("count");
    let diary = under_chaos(&world, &plan, &fakes, &anna, &rooms).await;
    let report = afterwards(&world, &plan, &fakes, &anna, &rooms, diary).await;
    let rooms_created = world.synapse.room_count().await.expect("count") - rooms_at_start;
    report.print(&plan, rooms_created);
    report.check(rooms_created);
}

impl Plan {
    /// With `LM_CHAOS_PERSON_LOG` and a log folder: this process's log (the person's client)
    /// at that filter, in `person.log` there.
    fn log_the_person(&self) {
        let (Some(filter), Some(dir)) = (&self.person_log, &self.log_dir) else {
            return;
        };
        std::fs::create_dir_all(dir).expect("the log folder");
        let file = std::fs::File::create(dir.join("person.log")).expect("person.log");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .try_init();
    }

    /// Prints the run's settings (the seed first of all).
    fn announce(&self) {
        eprintln!(
            "chaos soak: {} cycles, seed {} (LM_CHAOS_SEED={} repeats it), network {}‰ of {:?}, platform {} {}‰",
            self.cycles,
            self.seed,
            self.seed,
            self.network.per_mille,
            self.network.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            if self.openai { "openai" } else { "mock" },
            self.platform_per_mille
        );
    }
}

/// First contact with a clean bot, then `herd_rooms` chats for the herd: the person and their rooms.
async fn meet(world: &World, fakes: &Option<Fakes>, herd_rooms: u32) -> (Arc<Person>, Rooms) {
    let bot = world.start_bot(clean_settings(world, fakes)).await;
    let anna = Arc::new(world.person("anna").await);
    let provisioned = world.first_contact(&anna, false).await;
    let mut herd = Vec::new();
    for k in 1..=herd_rooms {
        let created = anna.ask(&provisioned.dm, &format!("!new Herd {k}")).await;
        assert!(created.expect("!new").contains("Created C"), "a herd room");
        let joined = anna.accept_invites(1).await.expect("invited");
        herd.extend(joined.iter().map(ToString::to_string));
    }
    bot.stop().await;
    let rooms = Rooms {
        dm: provisioned.dm,
        c1: provisioned.c1,
        space: provisioned.space,
        herd,
    };
    (anna, rooms)
}

/// The chaos: the person acts while the binary is killed and restarted with the network and
/// the platform failing; then the faults stop. What the person did.
async fn under_chaos(
    world: &World,
    plan: &Plan,
    fakes: &Option<Fakes>,
    anna: &Arc<Person>,
    rooms: &Rooms,
) -> Diary {
    let binary = frozen_binary(world);
    world.proxy.chaos(plan.network.clone());
    let diary = Arc::new(Mutex::new(Diary::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The mock answers at once, the fake server's streamed answers take seconds each.
    let (platform_words, pace) = if plan.openai {
        (0, (1_000, 3_000))
    } else {
        (plan.platform_per_mille, (200, 600))
    };
    let person = tokio::spawn(person(
        anna.clone(),
        rooms.clone(),
        diary.clone(),
        SeededRng::new(plan.seed.rotate_left(17)),
        (platform_words, pace),
        stopped,
    ));
    let stage = Stage {
        world,
        binary: &binary,
        plan,
        fakes: fakes.as_ref(),
        anna,
        rooms,
        diary: &diary,
    };
    // Like any client, the person's keeps syncing: it learns the bot's new device after a
    // login again, and shares its room keys with it. It is stopped between two syncs, never in
    // one: a sync dropped after decrypting a room key's Olm message and before keeping the key
    // loses that key for good (matrix-sdk's `sync_once` is not cancel-safe; the next sync gets
    // the message again, and its Olm message key is spent), so an answer of the bot's would be
    // unreadable because of the test, not the bot (seen once: `session17-run60`).
    let (end_syncing, mut syncing_ended) = tokio::sync::watch::channel(false);
    let syncing = {
        let anna = anna.clone();
        tokio::spawn(async move {
            while !*syncing_ended.borrow() {
                let _ = anna.sync().await;
                tokio::select! {
                    _ = syncing_ended.changed() => {}
                    () = tokio::time::sleep(Duration::from_millis(700)) => {}
                }
            }
        })
    };
    kill_cycles(&stage).await;
    let _ = stop.send(());
    person.await.expect("person");
    let _ = end_syncing.send(true);
    syncing.await.expect("the person's syncing");
    world.proxy.heal();
    let mut diary = Arc::try_unwrap(diary).expect("one owner").into_inner();
    let hits = world.proxy.chaos_hits();
    diary.network = ChaosCounts::of(&hits);
    eprintln!("chaos soak: network faults injected: {}", diary.network);
    if let Some(dir) = &plan.log_dir {
        let lines: Vec<String> = hits
            .iter()
            .map(|h| {
                let when = humantime::format_rfc3339_micros(h.when);
                format!(
                    "{when} {} {} {} {:?}",
                    h.kind.name(),
                    h.method,
                    h.path,
                    h.action
                )
            })
            .collect();
        let _ = std::fs::write(dir.join("chaos-hits.txt"), lines.join("\n") + "\n");
    }
    if let Some(fakes) = fakes {
        diary.platform_faults = fakes.failing.chaos_faults().len();
    }
    diary
}

/// A clean bot runs until everything is answered; then the count from the timeline and the
/// server, and a dry-run reconcile of the stopped bot.
async fn afterwards(
    world: &World,
    plan: &Plan,
    fakes: &Option<Fakes>,
    anna: &Person,
    rooms: &Rooms,
    diary: Diary,
) -> Report {
    let bot = world.start_bot(clean_settings(world, fakes)).await;
    let stuck = Duration::from_secs(120);
    let (tally, history) = settle(world, anna, rooms, &diary, stuck).await;
    let bot_id = world.bot_account.user_id.as_str();
    explain(&diary, &history, bot_id);
    let chats = anna.ask(&rooms.dm, "!chats").await.expect("!chats");
    bot.stop().await;
    let reconcile = dry_run(world);
    let server = ServerRooms::read(world, &anna.account.user_id, &rooms.space).await;
    let echo = if plan.openai {
        "openai: "
    } else {
        "[C1] echo: "
    };
    let outcome = Outcome::of(&diary, &history, &server, &chats, bot_id, echo);
    let late = life::late_answers(&diary.life.outages, &diary.sent, &history, bot_id);
    Report {
        tally,
        outcome,
        diary,
        reconcile,
        late,
    }
}

/// Everything counted.
#[derive(Debug)]
struct Report {
    tally: Tally,
    outcome: Outcome,
    diary: Diary,
    reconcile: Result<(), String>,
    /// Answers held up by an outage: delivered by the same process (late), only after a
    /// restart (missed).
    late: (usize, usize),
}

impl Report {
    /// The one result line.
    fn print(&self, plan: &Plan, rooms_created: u64) {
        let (t, o, d, l) = (&self.tally, &self.outcome, &self.diary, &self.diary.life);
        eprintln!(
            "soak result: seed={} cycles={} sent={} answered_once={} answered_twice={} unanswered={} parts_missing={} duplicate_events={} rooms_created={rooms_created} new_commands={} deleted_back={} new_done={} deleted={} edits={} edits_answered_twice={} edits_lost={} long={} long_wrong={} network_faults={} platform_faults={} reconcile_clean={} unreadable={} outages={} late_answers={} late_missed={} revocations={} relogins={} hidden={} herd={} exited={}",
            plan.seed, plan.cycles, t.sent, t.answered_once, t.answered_twice, t.unanswered,
            t.parts_missing, t.duplicate_events, d.news.len(), o.deleted_back, o.new_done,
            o.deleted, t.edits, t.edits_answered_twice, t.edits_lost, d.long.len(), o.long_wrong,
            d.network.total(), d.platform_faults, self.reconcile.is_ok(), o.unreadable, l.outages.len(),
            self.late.0, self.late.1, l.revocations, l.relogins, l.hidden, l.herd, l.exited
        );
        if let Err(report) = &self.reconcile {
            eprintln!("chaos soak: the dry-run reconcile found work: {report}");
        }
    }

    /// Asserts the promise.
    fn check(&self, rooms_created: u64) {
        let (t, o) = (&self.tally, &self.outcome);
        assert_eq!(t.answered_twice, 0, "nothing answered twice: {t:?}");
        assert_eq!(t.unanswered, 0, "nothing unanswered: {t:?}");
        assert_eq!(t.parts_missing, 0, "every part there: {t:?}");
        assert_eq!(t.duplicate_events, 0, "no event sent twice: {t:?}");
        assert_eq!(t.edits_answered_twice, 0, "no edit answered twice");
        assert_eq!(t.edits_lost, 0, "no edit lost");
        assert_eq!(o.long_wrong, 0, "long answers whole and right");
        assert_eq!(o.unreadable, 0, "every answer readable by the person");
        assert_eq!(
            rooms_created as usize, o.new_done,
            "one room per !new carried out"
        );
        assert_eq!(o.deleted_back, 0, "no deleted chat back");
        assert_eq!(self.reconcile, Ok(()), "nothing left to repair");
        let l = &self.diary.life;
        assert_eq!(
            l.relogins, l.revocations,
            "every revoked session replaced by itself"
        );
        assert_eq!(
            self.late.1, 0,
            "what an outage held up came without a restart"
        );
        if !l.outages.is_empty() {
            assert!(
                self.late.0 > 0,
                "an outage held something up: {:?}",
                l.outages
            );
        }
    }
}

/// Settings for the in-process bot: no platform faults, no limits on `!new`.
fn clean_settings(world: &World, fakes: &Option<Fakes>) -> lambda_matrix::config::Settings {
    world.settings(|raw| {
        raw.max_new_per_minute = Some("10000".into());
        raw.max_messages_per_minute = Some("100000".into());
        raw.max_chats_per_user = Some("1000".into());
        if let Some(fakes) = fakes {
            raw.platform = Some("openai".into());
            raw.openai_base_url = Some(fakes.clean.url());
        }
    })
}

/// The bot's binary as [`World::binary`] sets it up, but run from a copy made now, so a build
/// in the same tree during a long run changes nothing.
fn frozen_binary(world: &World) -> Command {
    let original = world.binary();
    let copy = world.dir.path().join("lambda-matrix-under-test");
    std::fs::copy(original.get_program(), &copy).expect("copy the binary");
    like(&original, &copy)
}

/// A command running `program` with the environment `template` sets (and nothing else).
fn like(template: &Command, program: &std::path::Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().stdin(Stdio::null());
    for (name, value) in template.get_envs() {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    cmd
}

/// What the kill cycles work with.
struct Stage<'a> {
    world: &'a World,
    binary: &'a Command,
    plan: &'a Plan,
    fakes: Option<&'a Fakes>,
    anna: &'a Arc<Person>,
    rooms: &'a Rooms,
    diary: &'a Arc<Mutex<Diary>>,
}

/// Starts and SIGKILLs the binary `plan.cycles` times: mostly after 1-8 s, every fourth cycle
/// (from the third) after 20-30 s, restarting after 0-0.8 s; each cycle with its
/// [`Episode`] (see `chaos/life.rs`).
async fn kill_cycles(stage: &Stage<'_>) {
    let mut rng = SeededRng::new(stage.plan.seed);
    for cycle in 0..stage.plan.cycles {
        let episode = Episode::of(cycle);
        while_down(stage, episode, cycle).await;
        let before = stage.world.proxy.syncs().len();
        let mut child = bot_process(stage, episode, cycle);
        let run = match episode {
            Episode::Revoked => rng.between_ms(20_000, 30_000),
            Episode::Herd => rng.between_ms(12_000, 18_000),
            _ => rng.between_ms(1_000, 8_000),
        };
        let until = tokio::time::Instant::now() + run;
        match episode {
            Episode::HiddenThenOutage
                if stage
                    .world
                    .serving(before, || matches!(child.try_wait(), Ok(None)))
                    .await =>
            {
                let outage = life::outage(&stage.world.proxy, &mut rng).await;
                stage.diary.lock().await.life.outages.push(outage);
            }
            Episode::Revoked => {
                let bot = stage.world.bot_account.user_id.as_str();
                let wait = rng.between_ms(3_000, 6_000);
                let deadline = until.max(tokio::time::Instant::now() + Duration::from_secs(60));
                let relogged = life::revoke(&stage.world.synapse, bot, wait, deadline).await;
                let mut diary = stage.diary.lock().await;
                diary.life.revocations += 1;
                diary.life.relogins += usize::from(relogged);
            }
            _ => {}
        }
        tokio::time::sleep_until(until).await;
        let exited = child.try_wait().ok().flatten();
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let _ = child.wait();
        stage.diary.lock().await.life.exited += usize::from(exited.is_some());
        let ran = (tokio::time::Instant::now() - until + run).as_millis();
        eprintln!(
            "chaos soak: cycle {cycle} ({episode:?}): ran {ran} ms{}",
            exited.map_or(String::new(), |s| format!(", had exited by itself: {s}"))
        );
        tokio::time::sleep(rng.between_ms(0, 800)).await;
    }
}

/// What the person does while the bot is down before `cycle`'s process starts.
async fn while_down(stage: &Stage<'_>, episode: Episode, cycle: usize) {
    let mut diary = stage.diary.lock().await;
    match episode {
        Episode::HiddenThenOutage => {
            life::hide_a_message(stage.anna, &stage.rooms.c1, &mut diary, cycle).await
        }
        Episode::Herd => {
            life::write_to_the_herd(stage.anna, &stage.rooms.herd, &mut diary, cycle).await
        }
        Episode::Plain | Episode::Revoked => {}
    }
}

/// The binary with the platform faults on, its log kept if asked.
fn bot_process(stage: &Stage<'_>, episode: Episode, cycle: usize) -> Child {
    let (binary, plan, fakes) = (stage.binary, stage.plan, stage.fakes);
    let mut cmd = like(binary, std::path::Path::new(binary.get_program()));
    cmd.envs(episode.env());
    cmd.arg("run")
        .env("MATRIX_MAX_NEW_PER_MINUTE", "10000")
        .env("MATRIX_MAX_MESSAGES_PER_MINUTE", "100000")
        .env("MATRIX_MAX_CHATS_PER_USER", "1000")
        .env("LAMBDA_PLATFORM_TIMEOUT", "5s");
    match fakes {
        Some(fakes) => cmd
            .env("LAMBDA_PLATFORM", "openai")
            .env("LAMBDA_OPENAI_BASE_URL", fakes.failing.url()),
        None => cmd
            .env("LAMBDA_MOCK_FAIL_MATCH", FAIL_WORD)
            .env("LAMBDA_MOCK_SLOW_MATCH", STALL_WORD)
            .env("LAMBDA_MOCK_SLOW_DELAY", "1h"),
    };
    cmd.env("RUST_LOG", &plan.bot_log)
        .env("NO_COLOR", "1")
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

/// The person: one action every `pace` (a range in milliseconds) until told to stop.
async fn person(
    anna: Arc<Person>,
    rooms: Rooms,
    diary: Arc<Mutex<Diary>>,
    mut rng: SeededRng,
    (platform_per_mille, pace): (u64, (u64, u64)),
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    for n in 0u32.. {
        let mut diary = diary.lock().await;
        act(&anna, &rooms, &mut diary, &mut rng, platform_per_mille, n).await;
        drop(diary);
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(rng.between_ms(pace.0, pace.1)) => {}
        }
    }
}

/// One action, picked at random: a plain message (66 %), a file (3 %), a long one (3 %), an
/// edit (10 %),
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
        0..66 => false,
        66..69 => file(anna, rooms, diary, n).await,
        69..72 => long(anna, rooms, diary, n).await,
        72..82 => edit(anna, rooms, diary).await,
        82..88 => command(anna, rooms, diary, format!("!new Chaos {n}")).await,
        _ => chat_command(anna, rooms, diary, rng, roll, n).await,
    };
    if !done {
        plain(anna, rooms, diary, rng, platform_per_mille, n).await;
    }
}

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

/// A small Markdown file with a caption: the bot fetches it through the (faulty) network; its
/// answer, or a clear reply that it could not be fetched, counts.
async fn file(anna: &Person, rooms: &Rooms, diary: &mut Diary, n: u32) -> bool {
    let bytes = format!("# Notes {n}\n\n{}\n", "- a point\n".repeat(50));
    let name = format!("notes-{n}.md");
    let caption = format!("file {n}");
    let upload = lambda_matrix_testkit::person::Upload {
        name: &name,
        mime: "text/markdown",
        bytes: bytes.as_bytes(),
        caption: Some(&caption),
        voice: false,
        declared_size: None,
    };
    if let Ok(event) = anna.send_file(&rooms.c1, upload).await {
        diary.sent.push(Sent::Message {
            event_id: event.to_string(),
        });
    }
    true
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
    command(anna, rooms, diary, text).await
}

/// Sends a command in the direct chat.
async fn command(anna: &Person, rooms: &Rooms, diary: &mut Diary, text: String) -> bool {
    if let Ok(event) = anna.send(&rooms.dm, &text).await {
        let event_id = event.to_string();
        if text.starts_with("!new") {
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

/// Waits until every message has a whole answer and nothing changed for a while, or until
/// nothing changed for `stuck` (the bot makes no progress): the last count and the timeline
/// it was made from. Prints progress every half minute.
async fn settle(
    world: &World,
    anna: &Person,
    rooms: &Rooms,
    diary: &Diary,
    stuck: Duration,
) -> (Tally, Vec<Message>) {
    let bot = world.bot_account.user_id.as_str();
    let started = tokio::time::Instant::now();
    let (mut last, mut changed, mut said) = (None, started, started);
    loop {
        let history = timeline(anna, rooms, diary.sent.len()).await;
        let tally = Tally::count(&diary.sent, &history, bot);
        let done = tally.unanswered == 0 && tally.parts_missing == 0;
        let now = tokio::time::Instant::now();
        if last.as_ref() != Some(&tally) {
            changed = now;
        }
        if (done && last.as_ref() == Some(&tally)) || now - changed > stuck {
            return (tally, history);
        }
        if now - said > Duration::from_secs(30) {
            said = now;
            eprintln!(
                "chaos soak: settling for {:?}: {} unanswered, {} parts missing",
                now - started,
                tally.unanswered,
                tally.parts_missing
            );
        }
        last = Some(tally);
        tokio::time::sleep(Duration::from_secs(if done { 8 } else { 4 })).await;
    }
}

/// The direct chat's, C1's and the herd rooms' messages, after a few syncs (for the room keys).
async fn timeline(anna: &Person, rooms: &Rooms, sent: usize) -> Vec<Message> {
    for _ in 0..3 {
        let _ = anna.sync().await;
    }
    let pages = sent / 25 + 3;
    let mut all = Vec::new();
    for room in [&rooms.dm, &rooms.c1].into_iter().chain(&rooms.herd) {
        all.extend(anna.history(room, pages).await.expect("history"));
    }
    all
}

/// Prints, for every message or edit the promise failed for, where it and the bot's replies
/// to it (and to the message it edits) are in the timeline.
fn explain(diary: &Diary, history: &[Message], bot: &str) {
    let failed: Vec<&Sent> = diary
        .sent
        .iter()
        .filter(|item| !Tally::count(std::slice::from_ref(*item), history, bot).holds())
        .collect();
    if failed.len() > 12 {
        eprintln!("chaos soak: {} failed; the first 12:", failed.len());
    }
    for item in failed.into_iter().take(12) {
        let tally = Tally::count(std::slice::from_ref(item), history, bot);
        let (event, of) = match item {
            Sent::Message { event_id } => (event_id, None),
            Sent::Edit { event_id, of, .. } => (event_id, Some(of)),
        };
        eprintln!("chaos soak: FAILED for {event} (an edit of {of:?}): {tally:?}");
        for target in std::iter::once(event).chain(of) {
            for (at, m) in history.iter().enumerate() {
                let related = m.event_id == *target
                    || m.in_reply_to.as_deref() == Some(target)
                    || m.replaces.as_deref() == Some(target);
                if related {
                    let body: String = m
                        .new_body
                        .as_ref()
                        .unwrap_or(&m.body)
                        .chars()
                        .take(90)
                        .collect();
                    eprintln!(
                        "chaos soak:   #{at} {} by {} reply-to {:?} replaces {:?} part {:?} partial {} {:?}",
                        m.event_id, m.sender, m.in_reply_to, m.replaces, m.part, m.partial, body
                    );
                }
            }
        }
    }
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
    /// Answered messages the person cannot read the answer of (their client could not decrypt
    /// it: "unable to decrypt" on their screen).
    unreadable: usize,
}

impl Outcome {
    fn of(
        diary: &Diary,
        history: &[Message],
        server: &ServerRooms,
        chats: &str,
        bot: &str,
        echo: &str,
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
        for event in &diary.news {
            let answer = answer_to(history, bot, event);
            if chat_in(&answer.text, "Created C").is_none() {
                eprintln!("chaos soak: !new {event} made no chat: {:?}", answer.text);
            }
        }
        Outcome {
            new_done: replies(&diary.news, "Created C").len(),
            deleted: deleted.len(),
            deleted_back: back,
            long_wrong: long_wrong(diary, history, bot, echo),
            unreadable: unreadable(diary, history, bot),
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

/// Messages with an answer the person's client cannot decrypt.
fn unreadable(diary: &Diary, history: &[Message], bot: &str) -> usize {
    diary
        .sent
        .iter()
        .filter_map(|item| match item {
            Sent::Message { event_id } => Some(event_id),
            Sent::Edit { .. } => None,
        })
        .filter(|event| {
            let answer = answer_to(history, bot, event);
            let unreadable = answer.answers > 0 && !answer.readable;
            if unreadable {
                eprintln!(
                    "chaos soak: the answer to {event} cannot be decrypted by the person: {}",
                    answer.text
                );
            }
            unreadable
        })
        .count()
}

/// Long messages whose complete, readable answer does not start with `<echo><text>`
/// (whitespace aside; the fake OpenAI server adds the context's length).
fn long_wrong(diary: &Diary, history: &[Message], bot: &str, echo: &str) -> usize {
    let squeeze = |t: &str| t.split_whitespace().collect::<String>();
    diary
        .long
        .iter()
        .filter(|(event, text)| {
            let answer = answer_to(history, bot, event);
            // Notices (the platform failed) and interrupted answers are not the echo.
            let echoed = squeeze(&answer.text).starts_with(&squeeze(echo))
                && !answer.text.contains(INTERRUPTED);
            let wrong = answer.readable
                && answer.answers == 1
                && echoed
                && !squeeze(&answer.text).starts_with(&squeeze(&format!("{echo}{text}")));
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

/// What the chaos soak found (seed 1796002442286972864, twice), made deterministic: an edit
/// that reached the server while the bot could not hear it (its sync failing) and before the
/// bot answered the original with the original text. The bot is killed before its sync
/// recovers; after the restart, catch-up took the answer (sent after the edit) for one that
/// used the edit, and the edit was never answered. Now every answer says whose text it used
/// (`text_of` in its part mark), so the edit gets its fresh answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_while_the_sync_fails_is_answered_after_a_restart() {
    let world = World::new().await;
    let (anna, rooms) = meet(&world, &None, 0).await;
    let before = world.proxy.syncs().len();
    let mut bot = world
        .binary()
        .arg("run")
        .env("LAMBDA_MOCK_SLOW_MATCH", "slow")
        .env("LAMBDA_MOCK_SLOW_DELAY", "4s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let running = world
        .serving(before, || bot.try_wait().expect("wait").is_none())
        .await;
    assert!(running, "the bot stopped early");
    anna.send(&rooms.c1, "slow one").await.expect("send");
    let two = anna.send(&rooms.c1, "two").await.expect("send");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The sync in flight comes back with "three"; every later one fails.
    let sync = "/v3/sync";
    world.proxy.inject(Fault::new("GET", sync, 503));
    anna.send(&rooms.c1, "three").await.expect("send");
    world.proxy.until_status(sync, 503).await;
    let edit = anna
        .edit(&rooms.c1, &two, "two edited")
        .await
        .expect("edit");
    let answer = anna.replies_to(&rooms.c1, &two).await.expect("answered");
    assert!(answer[0].body.ends_with("echo: two"), "{answer:?}");
    bot.kill().expect("SIGKILL");
    let _ = bot.wait();
    world.proxy.heal();
    let bot = world.start_bot(clean_settings(&world, &None)).await;
    let fresh = anna.replies_to(&rooms.c1, &edit).await;
    bot.stop().await;
    let fresh = fresh.expect("the edit is answered");
    assert!(fresh[0].body.contains("two edited"), "{fresh:?}");
}

/// What the chaos soak found (seed 1796005552217923196): a `!new` whose room the homeserver
/// made while the bot never heard the answer (the connection dropped after forwarding; here a
/// 502 after forwarding). The SDK sends `createRoom` again by itself (its request retries), so
/// two rooms carry the same chat id and cause; reconcile keeps one or the other from one start
/// to the next, and `!delete` of that chat leaves the other behind, still listed. Fixed:
/// `bot/create.rs` sends `createRoom` without the SDK's retries and, after a lost answer,
/// watches the sync for the room (by its marker) before asking again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chat_whose_creation_answer_is_lost_makes_one_room() {
    let world = World::new().await;
    let (anna, rooms) = meet(&world, &None, 0).await;
    let bot = world.start_bot(clean_settings(&world, &None)).await;
    let before = world.synapse.room_count().await.expect("count");
    world.proxy.inject(
        Fault::new("POST", "/createRoom", 502)
            .after_forwarding()
            .times(1),
    );
    let reply = anna.ask(&rooms.dm, "!new Lost answer").await;
    let after = world.synapse.room_count().await.expect("count");
    bot.stop().await;
    assert!(reply.expect("answered").contains("Created C2"));
    assert_eq!(after, before + 1, "one room for one !new");
}

/// What the chaos soak found (seed 22, `rooms_created=15 new_done=14`): a `!new` answered "that
/// did not work" although its room was made. The room turns up later (a start adopts it), so
/// the person was told a falsehood, and trying again makes a second chat. Two refusals that
/// say nothing about the room: a 429 on `createRoom` (the homeserver made nothing; ask again
/// after its pause), and a failed join of the room just made (the bot is its creator, in it
/// already; the sync shows it). And a homeserver that refuses the room's claim (an alias):
/// asked again without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chat_is_made_through_a_rate_limit_and_a_failed_join() {
    let world = World::new().await;
    let (anna, rooms) = meet(&world, &None, 0).await;
    let bot = world.start_bot(clean_settings(&world, &None)).await;
    let before = world.synapse.room_count().await.expect("count");
    world.proxy.inject(
        Fault::new("POST", "/createRoom", 429)
            .body(r#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":500}"#)
            .times(1),
    );
    let limited = anna.ask(&rooms.dm, "!new Limited").await;
    world
        .proxy
        .inject(Fault::new("POST", "/join", 403).times(1));
    let unjoined = anna.ask(&rooms.dm, "!new Unjoined").await;
    // A homeserver that refuses the room's claim (its alias rules): made without it.
    world.proxy.inject(
        Fault::new("POST", "/createRoom", 403)
            .body(r#"{"errcode":"M_FORBIDDEN","error":"Not allowed to create alias"}"#)
            .times(1),
    );
    let unclaimed = anna.ask(&rooms.dm, "!new Unclaimed").await;
    let after = world.synapse.room_count().await.expect("count");
    bot.stop().await;
    assert!(limited.expect("answered").contains("Created C2"));
    assert!(unjoined.expect("answered").contains("Created C3"));
    assert!(unclaimed.expect("answered").contains("Created C4"));
    assert_eq!(after, before + 3, "one room for each !new");
}

/// The same with the answer to `createRoom` lost while the bot's sync fails for longer than
/// the bot used to watch it (45 s): it cannot tell whether the room was made until the sync
/// is back, so it waits for the sync instead of saying "that did not work" about a room that
/// may exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chat_whose_creation_answer_is_lost_during_a_long_sync_outage_is_made_once() {
    let world = World::new().await;
    let (anna, rooms) = meet(&world, &None, 0).await;
    let bot = world.start_bot(clean_settings(&world, &None)).await;
    let before = world.synapse.room_count().await.expect("count");
    // The long-poll in flight brings the command; the syncs after it fail for 50 s.
    world
        .proxy
        .inject(Fault::new("GET", "/sync", 502).lasting(Duration::from_secs(50)));
    world.proxy.inject(
        Fault::new("POST", "/createRoom", 502)
            .after_forwarding()
            .times(1),
    );
    let command = anna.send(&rooms.dm, "!new Unseen").await.expect("send");
    let mut reply = anna.replies_to(&rooms.dm, &command).await;
    for _ in 0..3 {
        if reply.is_ok() {
            break;
        }
        reply = anna.replies_to(&rooms.dm, &command).await;
    }
    let after = world.synapse.room_count().await.expect("count");
    bot.stop().await;
    let reply = reply.expect("answered once the sync is back");
    assert!(reply[0].body.contains("Created C2"), "{reply:?}");
    assert_eq!(reply.len(), 1, "one answer: {reply:?}");
    assert_eq!(after, before + 1, "one room for one !new");
}

/// What the chaos soak found (seed 1796005552217923196, `!new` commands handled only starts
/// later, after newer ones): messages that arrived while the bot was down reach it in the
/// first sync response of its next start, and that response's position is saved; if that
/// start dies before catch-up (here at the crash point during reconcile), the start after it
/// sees no news in that room and, the room not being in flight, does not read it back: the
/// messages wait until the room has news again, then are answered after newer ones (or never,
/// if the person does not write there again). Fixed: the sync position of a start is saved only
/// after its catch-up (`sync::save_after_catch_up`), so the next start asks the same again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_down_are_answered_after_a_crash_before_catch_up() {
    let world = World::new().await;
    let (anna, rooms) = meet(&world, &None, 0).await;
    let message = anna.send(&rooms.c1, "while down").await.expect("send");
    let status = world
        .binary()
        .arg("run")
        .env("FAILPOINTS", "during-reconcile=return")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(137), "the crash point fired");
    let bot = world.start_bot(clean_settings(&world, &None)).await;
    let reply = anna.replies_to(&rooms.c1, &message).await;
    bot.stop().await;
    assert!(reply
        .expect("answered")
        .iter()
        .any(|r| r.body.ends_with("echo: while down")));
}
