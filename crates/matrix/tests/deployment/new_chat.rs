//! A `!new` whose room exists when a later step fails; both found by the chaos soak:
//! - the link from the Space refused (a 502 on `m.space.child`): the person was told "cannot
//!   create" while the room was made, and it turned up in their Space at the next start. The
//!   link is now tried again like a send; once the room exists the chat is made, and a link
//!   still refused is added by the next start.
//! - the reply refused while the sync fails: the command is run again when the answer is
//!   finished (no restart), and it looked for the room it made by a marker the store did not
//!   have yet (no sync since), so it made a second room. The marker is now read from the
//!   homeserver then.

use super::common::World;
use lambda_matrix_testkit::Fault;
use std::time::Duration;

/// Whether `person` sees `room` linked from `space` (a child event naming a server).
async fn linked(person: &lambda_matrix_testkit::Person, space: &str, room: &str) -> bool {
    person
        .state(space, "m.space.child", room)
        .await
        .expect("state")
        .is_some_and(|link| link["content"]["via"].is_array())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chat_is_made_once_even_when_its_space_link_fails() {
    let world = World::new().await;
    let settings = || world.settings(|raw| raw.send_retry_for = Some("3s".into()));
    let bot = world.start_bot(settings()).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    let rooms_before = world.synapse.room_count().await.expect("count");

    // Two failures pass within the send window: linked at once, without a restart.
    world
        .proxy
        .inject(Fault::new("PUT", "/state/m.space.child/", 502).times(2));
    let answer = anna.ask(&p.dm, "!new Flaky").await.expect("answer");
    assert!(answer.contains("Created C2"), "{answer}");
    let c2 = anna.accept_invites(1).await.expect("invited")[0].to_string();
    assert!(
        linked(&anna, &p.space, &c2).await,
        "C2 linked from the Space"
    );

    // Refused for longer than the window: still made and said so, listed, linked at the next
    // start.
    world
        .proxy
        .inject(Fault::new("PUT", "/state/m.space.child/", 502).lasting(Duration::from_secs(8)));
    let answer = anna.ask(&p.dm, "!new Stubborn").await.expect("answer");
    assert!(answer.contains("Created C3"), "{answer}");
    let c3 = anna.accept_invites(1).await.expect("invited")[0].to_string();
    assert!(
        !linked(&anna, &p.space, &c3).await,
        "not linked while refused"
    );
    let chats = anna.ask(&p.dm, "!chats").await.expect("chats");
    assert!(chats.contains("C3"), "{chats}");
    assert_eq!(
        world.synapse.room_count().await.expect("count") - rooms_before,
        2,
        "one room per !new"
    );

    world.proxy.heal();
    bot.stop().await;
    let bot = world.start_bot(settings()).await;
    anna.until("C3 linked by the next start", || async {
        linked(&anna, &p.space, &c3).await.then_some(())
    })
    .await
    .expect("linked");
    let chats = anna.ask(&p.dm, "!chats").await.expect("chats");
    assert!(chats.contains("C2") && chats.contains("C3"), "{chats}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chat_finished_while_the_sync_fails_makes_one_room() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| raw.send_retry_for = Some("2s".into())))
        .await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    let rooms_before = world.synapse.room_count().await.expect("count");

    // The long-poll in flight brings the command; the syncs after it fail for long, and the
    // reply is refused for longer than the send window, so it is finished by the timer
    // (every 10 s) while the bot still has had no sync since the room was made.
    world
        .proxy
        .inject(Fault::new("GET", "/sync", 502).lasting(Duration::from_secs(40)));
    world.proxy.inject(
        Fault::new("PUT", &format!("/rooms/{}/send/", p.dm), 502).lasting(Duration::from_secs(5)),
    );
    let command = anna.send(&p.dm, "!new Once").await.expect("sent");
    let replies = anna.replies_to(&p.dm, &command).await.expect("answered");
    assert!(
        replies[0].body.contains("Created C2"),
        "{}",
        replies[0].body
    );
    assert!(
        world
            .proxy
            .matching("GET", "/sync")
            .iter()
            .any(|r| r.status == 502),
        "the sync was failing"
    );
    assert_eq!(
        world.synapse.room_count().await.expect("count") - rooms_before,
        1,
        "one room for the command"
    );

    world.proxy.heal();
    let chats = anna.ask(&p.dm, "!chats").await.expect("chats");
    assert!(chats.contains("C2") && !chats.contains("C3"), "{chats}");
    assert_eq!(
        anna.reply_count(&p.dm, &command).await.expect("count"),
        1,
        "answered once"
    );
    bot.stop().await;
}
