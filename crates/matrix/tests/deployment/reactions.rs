//! 🛑 stops an answer (issue 31, point 5): on the person's message waiting for its answer, on
//! the answer being written (what was shown stays, marked), and on a message sent while the
//! bot was away (read back at the start, so the message is not answered after all). Other
//! reactions change nothing.

use super::common::World;
use lambda_matrix_platform::fake_openai::{FakeOpenAi, FakeOptions};
use std::time::Duration;

const STOPPED: &str = "Stopped: you cancelled this answer.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_a_waiting_message_stops_it_live_and_when_read_back() {
    stop_on_a_waiting_message(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_a_room_without_encryption() {
    stop_on_a_waiting_message(false).await;
}

async fn stop_on_a_waiting_message(encrypted: bool) {
    let world = World::new().await;
    let settings = || {
        world.settings(|raw| {
            raw.mock_slow_match = Some("slow".into());
            raw.mock_slow_delay = Some("10m".into());
            raw.encrypt_rooms = Some(encrypted.to_string());
        })
    };
    let bot = world.start_bot(settings()).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, encrypted).await.c1;
    let room = anna.room(&c1).expect("c1");
    assert_eq!(room.encryption_state().is_encrypted(), encrypted);

    let slow = anna.send(&c1, "a slow question").await.expect("send");
    let thumbs = anna.react(&c1, &slow, "👍").await.expect("👍");
    anna.react(&c1, &slow, "🛑\u{fe0f}").await.expect("🛑");
    let replies = anna.replies_to(&c1, &slow).await.expect("told");
    assert_eq!(replies[0].body, STOPPED);
    assert_eq!(
        anna.ask(&c1, "next").await.expect("next"),
        "[C1] echo: next"
    );
    let to_thumbs = anna.messages(&c1).await.expect("read");
    assert!(
        !to_thumbs
            .iter()
            .any(|m| m.in_reply_to.as_deref() == Some(thumbs.as_str())),
        "a 👍 is not answered"
    );

    bot.stop().await;
    let away = anna.send(&c1, "sent while away").await.expect("send");
    anna.react(&c1, &away, "🛑").await.expect("🛑");
    let kept = anna.send(&c1, "also while away").await.expect("send");
    let bot = world.start_bot(settings()).await;
    let replies = anna.replies_to(&c1, &kept).await.expect("answered");
    assert_eq!(replies[0].body, "[C1] echo: also while away");
    let replies = anna.replies_to(&c1, &away).await.expect("told");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].body, STOPPED);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_the_answer_being_written_keeps_what_was_shown_marked() {
    let fake = FakeOpenAi::start(FakeOptions {
        chunk_delay: Duration::from_millis(700),
        ..FakeOptions::default()
    })
    .await
    .expect("fake server");
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| {
            raw.platform = Some("openai".into());
            raw.openai_base_url = Some(fake.url());
        }))
        .await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    let question = anna
        .send(
            &c1,
            "tell me a long story about a lighthouse keeper and the sea",
        )
        .await
        .expect("send");
    let growing = anna
        .until("the answer shown while it is written", || async {
            let messages = anna.messages(&c1).await.ok()?;
            messages
                .into_iter()
                .find(|m| m.in_reply_to.as_deref() == Some(question.as_str()) && m.partial)
        })
        .await
        .expect("a growing answer");
    let answer_id = growing.event_id.as_str().try_into().expect("event id");
    anna.react(&c1, &answer_id, "🛑").await.expect("🛑");
    let notice = anna
        .until("the stop told", || async {
            let messages = anna.messages(&c1).await.ok()?;
            messages.into_iter().find(|m| {
                m.in_reply_to.as_deref() == Some(question.as_str()) && m.msgtype == "m.notice"
            })
        })
        .await
        .expect("told");
    assert_eq!(notice.body, STOPPED);
    let last_edit = anna
        .until("the answer marked stopped", || async {
            let messages = anna.messages(&c1).await.ok()?;
            messages.into_iter().rev().find(|m| {
                m.replaces.as_deref() == Some(growing.event_id.as_str())
                    && m.new_body
                        .as_deref()
                        .is_some_and(|b| b.contains("stopped here"))
            })
        })
        .await
        .expect("marked");
    let text = last_edit.new_body.unwrap_or_default();
    assert!(text.starts_with("openai:"), "what was shown stays: {text}");
    assert!(!text.contains("(context"), "cut short: {text}");
    bot.stop().await;
}

/// The edits of `answer` in `room` as `person` sees them.
async fn edits_of(person: &lambda_matrix_testkit::Person, room: &str, answer: &str) -> usize {
    person
        .messages(room)
        .await
        .expect("read")
        .iter()
        .filter(|m| m.replaces.as_deref() == Some(answer))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn again_writes_the_answer_again_once_per_reaction_also_across_restarts() {
    again_once_per_reaction(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn again_in_a_room_without_encryption() {
    again_once_per_reaction(false).await;
}

async fn again_once_per_reaction(encrypted: bool) {
    use lambda_matrix_platform::MockPlatform;
    use std::sync::Arc;
    let world = World::new().await;
    let settings = || world.settings(|raw| raw.encrypt_rooms = Some(encrypted.to_string()));
    let mock = Arc::new(MockPlatform::default());
    let bot = world.start_bot_with(settings(), mock.clone()).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, encrypted).await.c1;
    let room = anna.room(&c1).expect("c1");
    assert_eq!(room.encryption_state().is_encrypted(), encrypted);

    let question = anna.send(&c1, "hi").await.expect("send");
    let answer = anna.replies_to(&c1, &question).await.expect("answered")[0].clone();
    assert_eq!(mock.calls(), 1);
    let first = anna
        .react(&c1, &answer.event_id.as_str().try_into().expect("id"), "🔁")
        .await
        .expect("🔁");
    let edit = anna
        .until("the answer written again", || async {
            let messages = anna.messages(&c1).await.ok()?;
            messages
                .into_iter()
                .find(|m| m.replaces.as_deref() == Some(answer.event_id.as_str()))
        })
        .await
        .expect("edited");
    assert_eq!(edit.new_body.as_deref(), Some("[C1] echo: hi"));
    assert_eq!(mock.calls(), 2, "asked again");

    let other = anna.send(&c1, "other").await.expect("send");
    let other = anna.replies_to(&c1, &other).await.expect("answered")[0].clone();

    // A restart does not act on the first 🔁 again (it stays); a 🔁 sent while away is acted
    // on at the start (a homeserver takes one reaction per key: this one has the variation
    // selector); a 🔁 removed while away is not.
    bot.stop().await;
    let second = anna.send(&c1, "second").await.expect("send");
    let id = |m: &lambda_matrix_testkit::Message| -> matrix_sdk::ruma::OwnedEventId {
        m.event_id.as_str().try_into().expect("id")
    };
    anna.react(&c1, &id(&answer), "🔁\u{fe0f}")
        .await
        .expect("🔁 while away");
    let removed = anna.react(&c1, &id(&other), "🔁").await.expect("🔁");
    anna.redact(&c1, &removed).await.expect("removed");
    let mock = Arc::new(MockPlatform::default());
    let bot = world.start_bot_with(settings(), mock.clone()).await;
    anna.replies_to(&c1, &second).await.expect("answered");
    anna.until("the 🔁 sent while away acted on", || async {
        (edits_of(&anna, &c1, &answer.event_id).await >= 2).then_some(())
    })
    .await
    .expect("acted on");
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("probe"),
        "[C1] echo: probe"
    );
    assert_eq!(
        edits_of(&anna, &c1, &answer.event_id).await,
        2,
        "one edit per 🔁 acted on, the first not again ({first})"
    );
    assert_eq!(
        edits_of(&anna, &c1, &other.event_id).await,
        0,
        "removed first"
    );
    assert_eq!(mock.calls(), 3, "second, the 🔁 while away, probe");
    bot.stop().await;
}
