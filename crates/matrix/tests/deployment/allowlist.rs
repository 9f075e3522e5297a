//! One rule for a person taken off `MATRIX_ALLOWED_USERS` (issue 33, point 6): they are told
//! once, what they send while removed is never answered (not even after they are allowed
//! again, with the cache lost), and nothing of theirs is deleted.

use super::common::{Provisioned, World};
use std::time::Duration;

const REFUSED: &str = "org.lambda.matrix.refused";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_removed_person_sent_is_not_answered_after_they_are_allowed_again() {
    let world = World::new().await;
    let allowed = world.settings(|_| {});
    let bot = world.start_bot(allowed.clone()).await;
    let anna = world.person("anna").await;
    let Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    assert_eq!(
        anna.ask(&c1, "hello").await.expect("answer"),
        "[C1] echo: hello"
    );
    bot.stop().await;

    let removed = world.settings(|raw| {
        raw.allowed_users = Some(format!("@someone-else:{}", world.synapse.server_name()));
    });
    let bot = world.start_bot(removed).await;
    let first = anna.send(&c1, "while removed, one").await.expect("send");
    let told = anna.replies_to(&c1, &first).await.expect("told");
    assert!(
        told[0].body.contains("no longer have access"),
        "{}",
        told[0].body
    );
    let first_until = refused_until(&world, &c1)
        .await
        .expect("the refusal is recorded");
    let second = anna.send(&c1, "while removed, two").await.expect("send");
    wait_for_refused_after(&world, &c1, first_until).await;
    bot.stop().await;

    // Allowed again, and the cache and the SDK store are gone: every room is read back, and
    // only the server can say what was refused.
    world.lose_cache();
    world.lose_store();
    let bot = world.start_bot(allowed).await;
    assert_eq!(
        anna.ask(&c1, "back").await.expect("answer"),
        "[C1] echo: back"
    );
    assert_eq!(
        anna.reply_count(&c1, &first).await.expect("count"),
        1,
        "told once, no answer"
    );
    assert_eq!(
        anna.reply_count(&c1, &second).await.expect("count"),
        0,
        "a message sent while removed is not answered later"
    );
    let chats = anna.ask(&dm, "!chats").await.expect("chats");
    assert!(
        chats.contains("C1"),
        "nothing of theirs is deleted: {chats}"
    );
    bot.stop().await;
}

/// The bot's record of refused messages in `room`, read with its own account.
async fn refused_until(world: &World, room: &str) -> Option<u64> {
    let record = world
        .synapse
        .room_account_data(&world.bot_account, room, REFUSED)
        .await
        .expect("read account data")?;
    record["until"].as_u64()
}

/// Waits until the bot has refused a message newer than `after` in `room` (it says nothing).
async fn wait_for_refused_after(world: &World, room: &str, after: u64) {
    for _ in 0..600 {
        if refused_until(world, room)
            .await
            .is_some_and(|until| until > after)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the bot did not refuse the second message within 30 s");
}
