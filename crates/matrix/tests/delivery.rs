//! Every answer arrives whole: answers larger than one event are split by the size of the event
//! as sent (encrypted or not), each part carries its place, a crash between parts or a failed
//! send loses nothing and repeats nothing, a message sent while the sync connection broke is
//! answered once, and a model that never stops is cut at `LAMBDA_MAX_ANSWER_CHARS`. Counts come
//! from the person's view of the room.

mod common;

use common::World;
use lambda_matrix_platform::fake_openai::{code40k_answer, FakeOpenAi, FakeOptions};
use lambda_matrix_testkit::person::Message;
use lambda_matrix_testkit::{Fault, Person};
use matrix_sdk::ruma::OwnedEventId;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// A complete answer as the person sees it: its parts' texts in order, and how many reply
/// events it took.
#[derive(Debug)]
struct Whole {
    parts: Vec<String>,
    events: usize,
}

impl Whole {
    fn text(&self) -> String {
        self.parts.join("\n\n")
    }
}

/// The latest version of each reply to `message`: (part index, count, partial, text).
fn versions(history: &[Message], message: &str) -> Vec<(Option<u64>, Option<u64>, bool, String)> {
    history
        .iter()
        .filter(|m| m.in_reply_to.as_deref() == Some(message) && m.replaces.is_none())
        .map(|reply| {
            let latest = history
                .iter()
                .rev()
                .find(|m| m.replaces.as_deref() == Some(reply.event_id.as_str()));
            let (part, partial, text) = match latest {
                Some(edit) => (
                    edit.part.or(reply.part),
                    edit.partial,
                    edit.new_body.clone().unwrap_or_default(),
                ),
                None => (reply.part, reply.partial, reply.body.clone()),
            };
            let count = part
                .and_then(|(_, c)| c)
                .or(reply.part.and_then(|(_, c)| c));
            (part.map(|(i, _)| i), count, partial, text)
        })
        .collect()
}

/// Whether a reply to `message`, or an edit of one, is one the person's client cannot decrypt
/// yet: its part mark is in the clear, its text comes with the room key (a later sync).
fn unreadable(history: &[Message], message: &str) -> bool {
    let replies: Vec<&str> = history
        .iter()
        .filter(|m| m.in_reply_to.as_deref() == Some(message))
        .map(|m| m.event_id.as_str())
        .collect();
    history.iter().any(|m| {
        m.msgtype == "m.room.encrypted"
            && (m.in_reply_to.as_deref() == Some(message)
                || m.replaces.as_deref().is_some_and(|r| replies.contains(&r)))
    })
}

/// Waits for a complete answer to `message`: every part from 0 to its count present, final and
/// readable.
async fn whole_answer(person: &Person, room: &str, message: &OwnedEventId) -> Whole {
    person
        .until("a complete answer", || async {
            let history = person.history(room, 5).await.ok()?;
            if unreadable(&history, message.as_str()) {
                return None;
            }
            let versions = versions(&history, message.as_str());
            let count = versions.iter().find_map(|v| v.1)? as usize;
            let mut parts = BTreeMap::new();
            for (index, _, partial, text) in &versions {
                if *partial || text.contains("still writing") {
                    return None;
                }
                parts.insert((*index)? as usize, text.clone());
            }
            (parts.len() == count && parts.keys().copied().eq(0..count)).then(|| Whole {
                parts: parts.into_values().collect(),
                events: versions.len(),
            })
        })
        .await
        .expect("a complete answer")
}

/// Waits until everything queued in `room` before now is done (the bot answers in order).
async fn settled(person: &Person, room: &str) {
    person.ask(room, "probe").await.expect("probe answered");
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect()
}

/// A world, a bot answering through `fake` (with `edit` applied to its settings), and Anna with
/// her C1: (world, bot, Anna, C1).
async fn with_model(
    fake: &FakeOpenAi,
    edit: impl FnOnce(&mut lambda_matrix::config::RawSettings),
) -> (World, common::RunningBot, Person, String) {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| {
            raw.platform = Some("openai".into());
            raw.openai_base_url = Some(fake.url());
            edit(raw);
        }))
        .await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    (world, bot, anna, c1)
}

/// Markup that grows four to five times when escaped as HTML.
fn dense_markup(bytes: usize) -> String {
    format!("`{}`", "<&>\"".repeat(bytes / 4))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_formatted_echo_arrives_whole_encrypted_or_not() {
    let world = World::new().await;
    // Anna's C1 is encrypted (the default), Bob's is not.
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let anna_c1 = world.first_contact(&anna, true).await.c1;
    bot.stop().await;
    let bot = world
        .start_bot(world.settings(|raw| raw.encrypt_rooms = Some("false".into())))
        .await;
    let bob = world.person("bob").await;
    let bob_c1 = world.first_contact(&bob, false).await.c1;
    let encryption = |person: &Person, room: &str| {
        let room = person.room(room).expect("room");
        async move {
            room.latest_encryption_state()
                .await
                .expect("state")
                .is_encrypted()
        }
    };
    assert!(encryption(&anna, &anna_c1).await, "Anna's C1 is encrypted");
    assert!(!encryption(&bob, &bob_c1).await, "Bob's C1 is not");

    let text = dense_markup(15_000);
    for (person, room) in [(&anna, &anna_c1), (&bob, &bob_c1)] {
        let message = person.send(room, &text).await.expect("send");
        let answer = whole_answer(person, room, &message).await;
        assert!(answer.parts.len() >= 2, "split: {}", answer.parts.len());
        assert_eq!(
            squeeze(&answer.text()),
            squeeze(&format!("[C1] echo: {text}")),
            "the whole text arrived, in order"
        );
        settled(person, room).await;
        let again = whole_answer(person, room, &message).await;
        assert_eq!(again.events, again.parts.len(), "each part once");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_kib_streamed_code_answer_ends_complete() {
    let fake = FakeOpenAi::start(FakeOptions {
        chunk_delay: Duration::from_millis(150),
        ..FakeOptions::default()
    })
    .await
    .expect("fake server");
    let (_world, bot, anna, c1) = with_model(&fake, |_| {}).await;
    let message = anna.send(&c1, "code40k please").await.expect("send");
    let answer = whole_answer(&anna, &c1, &message).await;
    assert!(answer.parts.len() >= 2, "outgrew one event: {answer:?}");
    assert_eq!(squeeze(&answer.text()), squeeze(&code40k_answer()));
    assert_eq!(answer.events, answer.parts.len(), "each part once");
    let history = anna.history(&c1, 5).await.expect("history");
    let first = history
        .iter()
        .find(|m| m.in_reply_to.as_deref() == Some(message.as_str()))
        .expect("the first part");
    assert!(first.partial, "it was shown growing first");
    bot.stop().await;
}

/// About `bytes` of words full of non-ASCII letters and HTML-sensitive characters, each word
/// starting with `tag` (so two such texts share no word).
fn non_ascii_words(tag: &str, bytes: usize) -> String {
    let word = format!("{tag}{}", "ü<&>ж".repeat(20));
    vec![word.as_str(); bytes / (word.len() + 1)].join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_in_parts_restarted_by_an_edit_arrives_whole() {
    let fake = FakeOpenAi::start(FakeOptions {
        chunk_delay: Duration::from_millis(25),
        ..FakeOptions::default()
    })
    .await
    .expect("fake server");
    let (_world, bot, anna, c1) = with_model(&fake, |_| {}).await;
    let first = non_ascii_words("first", 24_000);
    let message = anna.send(&c1, &first).await.expect("send");
    // Edited while its answer streams: the answer is asked again with the new text.
    anna.until("the answer growing", || async {
        let history = anna.history(&c1, 2).await.ok()?;
        history
            .iter()
            .any(|m| m.in_reply_to.as_deref() == Some(message.as_str()) && m.partial)
            .then_some(())
    })
    .await
    .expect("growing");
    let edited = non_ascii_words("edited", 24_000);
    anna.edit(&c1, &message, &edited).await.expect("edit");
    let answer = whole_answer(&anna, &c1, &message).await;
    assert!(answer.parts.len() >= 2, "in parts: {}", answer.parts.len());
    let text = answer.text();
    let spliced: Vec<usize> = (answer.parts.iter().enumerate())
        .filter(|(_, part)| part.contains("first"))
        .map(|(index, _)| index)
        .collect();
    assert!(
        spliced.is_empty(),
        "parts {spliced:?} of {} are the first answer's",
        answer.parts.len()
    );
    assert_eq!(
        squeeze(&text),
        squeeze(&format!("openai: {edited} (context: 0)")),
        "the edited text's answer, whole and in order"
    );
    bot.stop().await; // the bot did not panic
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_parts_sends_only_the_missing_ones() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    bot.stop().await;

    let mut armed = world.binary();
    armed
        .arg("run")
        .env("FAILPOINTS", "between-parts=return")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut armed = armed.spawn().expect("spawn");
    let text = dense_markup(20_000);
    let message = anna.send(&c1, &text).await.expect("send");
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(status) = armed.try_wait().expect("wait") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the crash point fired");
    assert_eq!(status.code(), Some(137));
    let history = anna.history(&c1, 5).await.expect("history");
    let before = versions(&history, message.as_str());
    assert_eq!(
        before.len(),
        1,
        "one part was sent before the crash: {before:?}"
    );
    let first_part = history
        .iter()
        .find(|m| m.in_reply_to.as_deref() == Some(message.as_str()))
        .expect("the first part")
        .event_id
        .clone();

    let bot = world.start_bot(world.settings(|_| {})).await;
    let answer = whole_answer(&anna, &c1, &message).await;
    assert_eq!(
        squeeze(&answer.text()),
        squeeze(&format!("[C1] echo: {text}"))
    );
    settled(&anna, &c1).await;
    let after = whole_answer(&anna, &c1, &message).await;
    assert_eq!(after.events, after.parts.len(), "each part once");
    let edits = anna
        .history(&c1, 5)
        .await
        .expect("history")
        .iter()
        .filter(|m| m.replaces.as_deref() == Some(first_part.as_str()))
        .count();
    assert_eq!(edits, 0, "the part already there was left alone");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_retried_once_and_given_up_sends_finish_once_sends_work_again() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| raw.send_retry_for = Some("5s".into())))
        .await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;

    // The homeserver stores the reply but the bot never hears: tried again with the same
    // transaction id, the reply exists once.
    world.proxy.inject(
        Fault::new("PUT", "/send/m.room.", 502)
            .after_forwarding()
            .times(2),
    );
    let first = anna.send(&c1, "one").await.expect("send");
    assert_eq!(
        whole_answer(&anna, &c1, &first).await.parts,
        ["[C1] echo: one"]
    );
    // Sends fail for a while: the answer comes once they work again.
    world
        .proxy
        .inject(Fault::new("PUT", "/send/m.room.", 500).lasting(Duration::from_secs(3)));
    let second = anna.send(&c1, "two").await.expect("send");
    assert_eq!(
        whole_answer(&anna, &c1, &second).await.parts,
        ["[C1] echo: two"]
    );
    settled(&anna, &c1).await;
    for message in [&first, &second] {
        let history = anna.history(&c1, 2).await.expect("history");
        assert_eq!(
            versions(&history, message.as_str()).len(),
            1,
            "answered once"
        );
    }

    // Sends fail for longer than MATRIX_SEND_RETRY_FOR: the series of tries is given up, the
    // room stays in flight, and the answer comes once sends work again, with no restart.
    world
        .proxy
        .inject(Fault::new("PUT", "/send/m.room.", 500).lasting(Duration::from_secs(12)));
    let third = anna.send(&c1, "three").await.expect("send");
    assert_eq!(
        whole_answer(&anna, &c1, &third).await.parts,
        ["[C1] echo: three"]
    );
    settled(&anna, &c1).await;
    let history = anna.history(&c1, 2).await.expect("history");
    assert_eq!(versions(&history, third.as_str()).len(), 1, "answered once");
    // A restart (the room was in flight) does not answer it again.
    bot.stop().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    settled(&anna, &c1).await;
    let history = anna.history(&c1, 2).await.expect("history");
    assert_eq!(versions(&history, third.as_str()).len(), 1, "answered once");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_sync_connection_broke_is_answered_once() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake server");
    let (world, bot, anna, c1) = with_model(&fake, |_| {}).await;
    // A slow streamed answer (a word a second) is under way...
    let m0 = anna
        .send(
            &c1,
            "slowstream tell me a long story with very many words in it please",
        )
        .await
        .expect("send");
    anna.until("the answer started", || async {
        let history = anna.history(&c1, 1).await.ok()?;
        (!versions(&history, m0.as_str()).is_empty()).then_some(())
    })
    .await
    .expect("started");
    // ...when the server's sync fails for a while; meanwhile the person writes again, and the
    // stream's edits land after that message.
    let sync = "/v3/sync";
    world.proxy.inject(Fault::new("GET", sync, 503));
    world.proxy.until_status(sync, 503).await;
    let m1 = anna.send(&c1, "and another thing").await.expect("send");
    // The stream ends while the bot is still cut off (its room is no longer in flight then):
    // only the timeline shows that m1 is unanswered.
    whole_answer(&anna, &c1, &m0).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.proxy.heal();
    let answer = whole_answer(&anna, &c1, &m1).await;
    assert!(answer.text().contains("and another thing"), "{answer:?}");
    settled(&anna, &c1).await;
    let history = anna.history(&c1, 5).await.expect("history");
    assert_eq!(versions(&history, m1.as_str()).len(), 1, "answered once");
    assert_eq!(versions(&history, m0.as_str()).len(), 1, "answered once");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_stops_is_cut_at_the_maximum() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake server");
    let (_world, bot, anna, c1) =
        with_model(&fake, |raw| raw.max_answer_chars = Some("20000".into())).await;
    let peak_before = peak_rss_kib();
    let message = anna.send(&c1, "flood").await.expect("send");
    let answer = whole_answer(&anna, &c1, &message).await;
    let text = answer.text();
    assert!(
        text.trim_end().ends_with("longer than 20000 characters)*"),
        "cut with a note: {}",
        &text[text.len().saturating_sub(200)..]
    );
    let xs = text.matches('x').count();
    assert!(
        (19_000..=20_000).contains(&xs),
        "capped at 20,000 characters: {xs} x"
    );
    let sent = fake.bytes_sent();
    let grown = peak_rss_kib().saturating_sub(peak_before);
    eprintln!("flood: the server sent {sent} bytes before the bot stopped reading; peak RSS grew {grown} KiB");
    assert!(
        sent < 20_000_000,
        "the bot stopped reading: {sent} bytes sent"
    );
    assert!(
        grown < 200 * 1024,
        "memory stayed bounded: grew {grown} KiB"
    );
    bot.stop().await;
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
