//! Abuse resistance: room-creating commands are capped per person (count and rate) with a clear
//! refusal, and the room template holds against redacting markers and kicking the bot.

mod common;

use common::World;
use lambda_matrix::markers::CHAT_MARKER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_count_and_creation_rate_are_capped_with_clear_refusals() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| {
            raw.max_chats_per_user = Some("3".into());
            raw.max_new_per_minute = Some("1".into());
        }))
        .await;
    let anna = world.person("anna").await;
    let dm = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm")
        .to_string();
    anna.accept_invites(2).await.expect("provisioned");
    let rooms = world.synapse.room_count().await.expect("count");

    assert!(anna.ask(&dm, "!new One").await.expect("new").contains("C2"));
    let slow_down = anna.ask(&dm, "!new Two").await.expect("refused");
    assert!(
        slow_down.contains("At most 1 new chats per minute"),
        "{slow_down}"
    );
    assert_eq!(
        world.synapse.room_count().await.expect("count"),
        rooms + 1,
        "a refusal makes no room"
    );
    bot.stop().await;

    // A fresh process has a fresh rate window; the count cap still holds (C1..C3 exist then).
    let bot = world
        .start_bot(world.settings(|raw| raw.max_chats_per_user = Some("3".into())))
        .await;
    assert!(anna
        .ask(&dm, "!new Three")
        .await
        .expect("new")
        .contains("C3"));
    let too_many = anna.ask(&dm, "!new Four").await.expect("refused");
    assert!(too_many.contains("limit of 3 chats"), "{too_many}");
    assert_eq!(world.synapse.room_count().await.expect("count"), rooms + 2);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_cannot_redact_markers_or_kick_the_bot() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    let marker = anna
        .state(&c1, CHAT_MARKER, "")
        .await
        .expect("read")
        .expect("marker");
    let marker_id: matrix_sdk::ruma::OwnedEventId = marker["event_id"]
        .as_str()
        .expect("id")
        .try_into()
        .expect("event id");
    let room = anna.room(&c1).expect("c1");
    let redacted = room.redact(&marker_id, Some("mine now"), None).await;
    assert!(redacted.is_err(), "redacting the bot's marker is refused");
    let bot_id: matrix_sdk::ruma::OwnedUserId =
        world.bot_account.user_id.as_str().try_into().expect("id");
    assert!(
        room.kick_user(&bot_id, None).await.is_err(),
        "kicking the bot is refused"
    );
    // And her own messages she may redact.
    let mine = anna.send(&c1, "oops").await.expect("send");
    room.redact(&mine, None, None)
        .await
        .expect("own message redacted");
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_text_are_stored_and_echoed_safely() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;

    // A name with markup, a direction override, zero-width and control characters.
    let created = anna
        .ask(
            &p.dm,
            "!new <script>alert(1)</script>\u{202E}gnp.exe\u{200B}\u{7}",
        )
        .await
        .expect("new");
    assert!(created.contains("C2"), "{created}");
    let c2 = anna.accept_invites(1).await.expect("C2")[0].to_string();
    let name = anna.room(&c2).expect("c2").name().expect("named");
    assert_eq!(
        name, "<script>alert(1)</script>gnp.exe",
        "invisible and direction characters are gone"
    );
    let replies = anna.messages(&p.dm).await.expect("messages");
    let html = replies
        .iter()
        .rev()
        .find_map(|m| m.html.clone().filter(|h| h.contains("alert")))
        .expect("an HTML reply naming the chat");
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;"),
        "{html}"
    );

    // A huge emoji run with markup in a message: answered, HTML escaped, nothing lost.
    let text = format!("<img src=x onerror=alert(1)> {}", "🙂".repeat(3000));
    let event = anna.send(&p.c1, &text).await.expect("send");
    let answer = anna.answer(&p.c1, &event).await.expect("answered");
    let echoed: String = answer
        .iter()
        .map(|m| m.body.clone())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(echoed.matches('🙂').count(), 3000);
    assert!(
        answer
            .iter()
            .all(|m| m.html.as_deref().is_none_or(|h| !h.contains("<img"))),
        "no live markup"
    );

    // An over-long name gets a clear refusal and makes nothing.
    let long = anna
        .ask(&p.dm, &format!("!new {}", "n".repeat(101)))
        .await
        .expect("refused");
    assert!(long.contains("at most 100"), "{long}");
    bot.stop().await;
}
