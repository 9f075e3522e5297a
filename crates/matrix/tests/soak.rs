//! Soak: the person keeps sending messages and commands while the bot is killed (SIGKILL) and
//! restarted at random moments. Counts come from the person's timeline on the server (the
//! `m.in_reply_to` targets), never from the bot's logs.
//!
//! `LM_SOAK_CYCLES` (default 5, as in CI) and `LM_SOAK_SEED` (default: from the clock) tune it;
//! `scripts/soak` runs the long version. The seed is printed so a run can be repeated.

mod common;

use common::World;
use lambda_matrix_testkit::SeededRng;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_at_random_moments_answers_everything_once() {
    let cycles: usize = std::env::var("LM_SOAK_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("LM_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!(
        "soak: {cycles} kill/restart cycles, seed {seed} (LM_SOAK_SEED={seed} repeats the timings)"
    );
    let mut rng = SeededRng::new(seed);

    let world = World::new().await;
    let settings = || {
        world.settings(|raw| {
            raw.max_new_per_minute = Some("10000".into());
            raw.max_messages_per_minute = Some("100000".into());
        })
    };
    let bot = world.start_bot(settings()).await;
    let anna = Arc::new(world.person("anna").await);
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    bot.stop().await;
    let rooms_at_start = world.synapse.room_count().await.expect("count");

    // The person: a message every 100-300 ms, a `!new` every tenth, until told to stop.
    let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let person = {
        let (anna, sent, dm, c1) = (anna.clone(), sent.clone(), dm.clone(), c1.clone());
        let mut rng = SeededRng::new(seed.rotate_left(17));
        tokio::spawn(async move {
            let mut n = 0u32;
            loop {
                let (room, text) = if n % 10 == 9 {
                    (dm.clone(), format!("!new Soak {n}"))
                } else {
                    (c1.clone(), format!("soak {n}"))
                };
                if let Ok(event) = anna.send(&room, &text).await {
                    sent.lock().await.push((room, event.to_string()));
                }
                n += 1;
                tokio::select! {
                    _ = &mut stop_rx => return,
                    () = tokio::time::sleep(rng.between_ms(100, 300)) => {}
                }
            }
        })
    };

    let command = |world: &World| {
        let mut cmd = world.binary();
        cmd.arg("run")
            .env("MATRIX_MAX_NEW_PER_MINUTE", "10000")
            .env("MATRIX_MAX_MESSAGES_PER_MINUTE", "100000")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    for _ in 0..cycles {
        let mut child = command(&world).spawn().expect("spawn");
        tokio::time::sleep(rng.between_ms(300, 3000)).await;
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let _ = child.wait();
        tokio::time::sleep(rng.between_ms(0, 800)).await;
    }
    let _ = stop_tx.send(());
    person.await.expect("person task");

    // Let a final bot catch up and count on the server.
    let bot = world.start_bot(settings()).await;
    let sent = sent.lock().await.clone();
    let last_in_c1 = sent
        .iter()
        .rev()
        .find(|(room, _)| *room == c1)
        .expect("sent in C1")
        .1
        .clone();
    // The backlog after many kills can take minutes to work through: wait up to 10 x 30 s.
    let last_event = last_in_c1.as_str().try_into().expect("event id");
    let mut answered = false;
    for _ in 0..10 {
        if anna.replies_to(&c1, &last_event).await.is_ok() {
            answered = true;
            break;
        }
    }
    assert!(answered, "the last message is answered");
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("probe"),
        "[C1] echo: probe"
    );
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));

    let mut replies: HashMap<String, usize> = HashMap::new();
    for room in [&c1, &dm] {
        for message in anna.history(room, 50).await.expect("history") {
            if message.sender == world.bot_account.user_id {
                if let Some(target) = message.in_reply_to {
                    *replies.entry(target).or_default() += 1;
                }
            }
        }
    }
    let once = sent
        .iter()
        .filter(|(_, e)| replies.get(e) == Some(&1))
        .count();
    let twice = sent
        .iter()
        .filter(|(_, e)| replies.get(e).is_some_and(|n| *n > 1))
        .count();
    let unanswered = sent
        .iter()
        .filter(|(_, e)| !replies.contains_key(e))
        .count();
    let news = sent.iter().filter(|(room, _)| *room == dm).count();
    let rooms_created = world.synapse.room_count().await.expect("count") - rooms_at_start;
    eprintln!(
        "soak result: seed={seed} cycles={cycles} sent={} answered_once={once} answered_twice={twice} unanswered={unanswered} new_commands={news} rooms_created={rooms_created}",
        sent.len()
    );
    assert_eq!(twice, 0, "nothing answered twice");
    assert_eq!(unanswered, 0, "nothing unanswered");
    assert_eq!(once, sent.len());
    assert_eq!(
        rooms_created as usize, news,
        "one room per !new, no duplicates"
    );
    bot.stop().await;
}
