//! The OpenAI-compatible platform end to end: a real Synapse for the Matrix side and a small
//! chat-completions server in this process (the platform is the one thing simulated). Answers
//! stream into the reply by edits; the context is the chat room's own history on the
//! homeserver; failures give the person a short clear message.

mod common;

use common::World;
use lambda_matrix_platform::fake_openai::{expected_answer, FakeOpenAi, FakeOptions};
use lambda_matrix_testkit::person::Message;
use lambda_matrix_testkit::Person;
use matrix_sdk::ruma::OwnedEventId;
use std::time::Duration;

/// The bot's reply to `message` once a final edit (or a plain reply) is there: (reply, text,
/// how many edits it took).
async fn final_answer(
    person: &Person,
    room: &str,
    message: &OwnedEventId,
) -> (Message, String, usize) {
    person
        .until("a finished answer", || async {
            let history = person.history(room, 3).await.ok()?;
            let reply = history
                .iter()
                .find(|m| m.in_reply_to.as_deref() == Some(message.as_str()))?
                .clone();
            // Not decrypted yet (its room key still on the way): not readable yet.
            let undecrypted = history.iter().any(|m| {
                m.msgtype == "m.room.encrypted"
                    && (m.event_id == reply.event_id
                        || m.replaces.as_deref() == Some(reply.event_id.as_str()))
            });
            if undecrypted {
                return None;
            }
            let edits: Vec<&Message> = history
                .iter()
                .filter(|m| m.replaces.as_deref() == Some(reply.event_id.as_str()))
                .collect();
            let text = edits
                .last()
                .and_then(|e| e.new_body.clone())
                .unwrap_or_else(|| reply.body.clone());
            (!text.contains("still writing")).then_some((reply, text, edits.len()))
        })
        .await
        .expect("a finished answer")
}

fn openai_settings(world: &World, fake: &FakeOpenAi) -> lambda_matrix::Settings {
    // The two settings a person changes to switch from the mock to a model server.
    world.settings(|raw| {
        raw.platform = Some("openai".into());
        raw.openai_base_url = Some(fake.url());
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_stream_in_with_the_chat_as_context() {
    let fake = FakeOpenAi::start(FakeOptions {
        chunk_delay: Duration::from_millis(400),
        ..FakeOptions::default()
    })
    .await
    .expect("fake server");
    let world = World::new().await;
    let bot = world.start_bot(openai_settings(&world, &fake)).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;

    // Commands and the bot's notices are not context.
    anna.ask(&p.c1, "!chats").await.expect("chats");
    let first = anna
        .send(&p.c1, "tell me a long story about cats")
        .await
        .expect("send");
    let (reply, text, edits) = final_answer(&anna, &p.c1, &first).await;
    assert_eq!(text, expected_answer("tell me a long story about cats", 0));
    assert!(
        edits >= 2,
        "the answer grew by edits, then was finished ({edits} edits)"
    );
    assert!(
        reply.body.contains("still writing"),
        "first shown unfinished: {}",
        reply.body
    );

    let second = anna.send(&p.c1, "and dogs").await.expect("send");
    let (_, text, _) = final_answer(&anna, &p.c1, &second).await;
    assert_eq!(text, expected_answer("and dogs", 2));
    let asked = fake.requests().last().expect("a request").body.clone();
    let roles: Vec<&str> = asked["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        asked["messages"][1]["content"],
        expected_answer("tell me a long story about cats", 0),
        "the bot's earlier answer, complete and without progress marks"
    );

    // Each chat is its own conversation: C2 starts empty.
    assert!(anna.ask(&p.dm, "!new").await.expect("new").contains("C2"));
    let c2 = anna.accept_invites(1).await.expect("invited")[0].to_string();
    let other = anna.send(&c2, "hello").await.expect("send");
    assert_eq!(
        final_answer(&anna, &c2, &other).await.1,
        expected_answer("hello", 0)
    );

    // The context is read from the homeserver: losing the cache changes nothing.
    bot.stop().await;
    world.lose_cache();
    let bot = world.start_bot(openai_settings(&world, &fake)).await;
    let third = anna.send(&p.c1, "and birds").await.expect("send");
    assert_eq!(
        final_answer(&anna, &p.c1, &third).await.1,
        expected_answer("and birds", 4)
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_a_short_clear_message_and_others_are_still_served() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake server");
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.platform = Some("openai".into());
        raw.openai_base_url = Some(fake.url());
        raw.openai_stream = Some("false".into());
        raw.platform_timeout = Some("2s".into());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    for (trigger, expected) in [
        ("status500", "unavailable"),
        ("status429", "busy"),
        ("status401", "operator"),
        ("malformed", "could not answer"),
        ("hang", "took too long"),
    ] {
        let said = anna
            .ask(&p.c1, &format!("please {trigger}"))
            .await
            .expect("reply");
        assert!(said.contains(expected), "{trigger}: {said}");
        assert!(said.len() < 200, "short: {said}");
    }
    assert_eq!(
        anna.ask(&p.c1, "fine now").await.expect("answer"),
        expected_answer("fine now", 5),
        "the person's earlier messages are context; the bot's failure notices are not"
    );
    bot.stop().await;
}
