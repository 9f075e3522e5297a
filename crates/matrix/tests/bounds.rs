//! Bounds a hostile but allowed person cannot exceed, and what a person removed from
//! `MATRIX_ALLOWED_USERS` gets: a flood is refused message by message with a notice (the
//! record that each was handled) while others are served as before; a direct chat over the
//! limit is left with a notice; a removed person is told once, then silence, and is served
//! again, with nothing lost, once added back.

mod common;

use common::World;
use lambda_matrix_testkit::Person;
use std::time::{Duration, Instant};

/// How long `person` waits for the answer to `text` in `room`.
async fn round_trip(person: &Person, room: &str, text: &str) -> Duration {
    let started = Instant::now();
    let answer = person.ask(room, text).await.expect("answered");
    assert!(answer.ends_with(text), "{answer}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_refused_message_by_message_and_others_are_served_meanwhile() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bob = world.person("bob").await;
    let anna_c1 = world.first_contact(&anna, false).await.c1;
    let bob_c1 = world.first_contact(&bob, false).await.c1;
    let before = round_trip(&bob, &bob_c1, "ping").await;

    let flood = 200;
    let mut sent = Vec::new();
    for i in 0..flood {
        sent.push(
            anna.send(&anna_c1, &format!("flood {i}"))
                .await
                .expect("send"),
        );
        if i == flood / 2 {
            let during = round_trip(&bob, &bob_c1, "pong").await;
            eprintln!("bob's round trip: {before:?} before the flood, {during:?} during it");
            assert!(during < Duration::from_secs(10), "bob waited {during:?}");
        }
    }
    let last = sent.last().expect("sent").clone();
    anna.replies_to(&anna_c1, &last)
        .await
        .expect("the last one handled");
    let history = anna.history(&anna_c1, 8).await.expect("history");
    let (mut answered, mut refused) = (0, 0);
    for message in &sent {
        let replies: Vec<_> = history
            .iter()
            .filter(|m| m.in_reply_to.as_deref() == Some(message.as_str()))
            .collect();
        assert_eq!(replies.len(), 1, "each message handled once: {replies:?}");
        if replies[0].body.contains("faster than 30 messages a minute") {
            refused += 1;
        } else {
            answered += 1;
        }
    }
    assert_eq!(answered, 30, "MATRIX_MAX_MESSAGES_PER_MINUTE answered");
    assert_eq!(refused, flood - 30, "the rest refused, each with a notice");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_over_the_limit_is_left_with_a_notice() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| raw.max_dms_per_user = Some("1".into())))
        .await;
    let anna = world.person("anna").await;
    world.first_contact(&anna, false).await;
    let second = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("second dm")
        .to_string();
    let notice = anna
        .until("the bot's notice", || async {
            let messages = anna.messages(&second).await.ok()?;
            messages
                .into_iter()
                .find(|m| m.sender == world.bot_account.user_id)
        })
        .await
        .expect("notice");
    assert!(
        notice.body.contains("already have 1 direct chats"),
        "{}",
        notice.body
    );
    anna.until("the bot left", || async {
        let member = anna
            .state(&second, "m.room.member", &world.bot_account.user_id)
            .await
            .ok()??;
        (member["content"]["membership"] == "leave").then_some(())
    })
    .await
    .expect("left");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_person_is_told_once_then_silence_and_served_again_when_added_back() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bob = world.person("bob").await;
    let anna_c1 = world.first_contact(&anna, false).await.c1;
    let bob_c1 = world.first_contact(&bob, false).await.c1;
    bot.stop().await;

    let only_bob = |raw: &mut lambda_matrix::config::RawSettings| {
        raw.allowed_users = Some("@bob:localhost".into())
    };
    let bot = world.start_bot(world.settings(only_bob)).await;
    let told = anna.ask(&anna_c1, "hello?").await.expect("told");
    assert!(told.contains("no longer have access"), "{told}");
    let second = anna.send(&anna_c1, "anyone?").await.expect("send");
    // Bob is served meanwhile; Anna's second message got nothing. Bob's message came after
    // Anna's, so the bot had queued hers by the time it answered him; a stop lets every queued
    // job finish, so whatever the bot would say to her is on the server once it has stopped.
    round_trip(&bob, &bob_c1, "ping").await;
    bot.stop().await;
    let history = anna.history(&anna_c1, 2).await.expect("history");
    assert!(
        !history
            .iter()
            .any(|m| m.in_reply_to.as_deref() == Some(second.as_str())),
        "silence after the one notice"
    );

    // Added back: served again, the chats kept.
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        anna.ask(&anna_c1, "back").await.expect("answer"),
        "[C1] echo: back"
    );
    let dm_list = anna.ask(&anna_c1, "!chats").await.expect("chats");
    assert!(dm_list.contains("C1"), "{dm_list}");
    bot.stop().await;
}
