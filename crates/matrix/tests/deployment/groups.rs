//! Rooms with other people (issue 31, point 2): an invite into a group room gets one notice
//! and the bot leaves it, making no Space; a direct chat that gains a member is told once that
//! only its owner is answered, and the other member's messages are never answered, live or at
//! a start with the cache lost.

use super::common::{Provisioned, World};
use lambda_matrix_testkit::{Message, Person};

/// The bot's messages in `room` whose text contains `needle`.
async fn said(person: &Person, room: &str, bot: &str, needle: &str) -> Vec<Message> {
    person
        .messages(room)
        .await
        .expect("messages")
        .into_iter()
        .filter(|m| m.sender == bot && m.body.contains(needle))
        .collect()
}

/// Waits until the bot has said `needle` in `room` and left it.
async fn told_and_left(world: &World, person: &Person, room: &str) {
    let bot = world.bot_account.user_id.clone();
    let told = person
        .until("the bot's notice", || async {
            let told = said(person, room, &bot, "direct chats").await;
            (!told.is_empty()).then_some(told)
        })
        .await
        .expect("told");
    assert_eq!(told.len(), 1, "one notice");
    world.until_the_bot_left(person, room).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_into_a_group_room_gets_one_notice_and_no_space() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let boris = world.person("boris").await;
    let bot_id = world.bot_account.user_id.clone();
    let boris_id = boris.user_id().to_string();

    let group = anna
        .create_room_inviting(&[&bot_id, &boris_id], false)
        .await
        .expect("a group room")
        .to_string();
    told_and_left(&world, &anna, &group).await;
    // Marked direct, but with someone else invited too: still a group room.
    let crowded = anna
        .create_room_inviting(&[&bot_id, &boris_id], true)
        .await
        .expect("a crowded direct chat")
        .to_string();
    told_and_left(&world, &anna, &crowded).await;

    // No Space was made for either: a direct chat now is Anna's first contact.
    let Provisioned { dm, .. } = world.first_contact(&anna, false).await;
    let chats = anna.ask(&dm, "!chats").await.expect("chats");
    assert!(chats.contains("C1") && !chats.contains("C2"), "{chats}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_that_gains_a_member_answers_only_its_owner() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let boris = world.person("boris").await;
    let bot_id = world.bot_account.user_id.clone();
    let Provisioned { dm, .. } = world.first_contact(&anna, false).await;

    anna.room(&dm)
        .expect("dm")
        .invite_user_by_id(&boris.user_id())
        .await
        .expect("anna invites boris");
    boris.accept_invites(1).await.expect("boris joins");
    anna.until("the bot to say who it answers", || async {
        let told = said(&anna, &dm, &bot_id, "I answer only").await;
        (!told.is_empty()).then_some(())
    })
    .await
    .expect("told");
    let guest = boris.send(&dm, "hello bot").await.expect("send");
    let guest_command = boris.send(&dm, "!new Boris").await.expect("send");
    // The room's queue is ordered: once Anna's later command is answered, Boris's were handled.
    let chats = anna.ask(&dm, "!chats").await.expect("chats");
    assert!(!chats.contains("Boris"), "{chats}");
    bot.stop().await;

    // Written while the bot is down, read back by a start that lost its cache: not answered.
    let while_down = boris.send(&dm, "anyone there?").await.expect("send");
    world.lose_cache();
    let bot = world.start_bot(settings).await;
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    for event in [&guest, &guest_command, &while_down] {
        assert_eq!(
            anna.reply_count(&dm, event).await.expect("count"),
            0,
            "only the owner is answered"
        );
    }
    let told = said(&anna, &dm, &bot_id, "I answer only").await;
    assert_eq!(told.len(), 1, "said once (the invite and the join)");
    assert!(told[0].body.contains("@anna:"), "{}", told[0].body);
    bot.stop().await;
}
