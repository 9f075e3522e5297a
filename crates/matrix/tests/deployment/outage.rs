//! An outage longer than `MATRIX_SEND_RETRY_FOR`: the answer being sent when the homeserver
//! went away is given up by its series of tries, and still delivered, once, when the
//! homeserver answers again, with no restart (issue 30, point 1).
//!
//! The room is not encrypted. In an encrypted room the answer is delivered the same way, but
//! the person's client never receives its room key: the test's Synapse runs on SQLite, which
//! reuses to-device stream ids after a restart, so the person's sync token is already past the
//! key's to-device message (docs/RELIABILITY.md, "Limits"). That is Synapse's, for every
//! client; on PostgreSQL the ids come from a real sequence.

use super::common::World;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_held_up_by_an_outage_longer_than_the_send_window_comes_without_a_restart() {
    let mut world = World::new().await;
    let settings = world.settings(|raw| {
        raw.send_retry_for = Some("2s".into());
        raw.encrypt_rooms = Some("false".into());
        raw.mock_slow_match = Some("slow".into());
        raw.mock_slow_delay = Some("1s".into());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    let bot_id = world.bot_account.user_id.clone();

    let message = anna.send(&c1, "slow one").await.expect("send");
    // The bot is making the answer (its typing notice is up)...
    anna.until("the bot to be typing", || async {
        anna.typing(&c1).await.ok()?.contains(&bot_id).then_some(())
    })
    .await
    .expect("typing");
    // ...when the homeserver goes away for four times the send window.
    world.synapse.stop();
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The answer's tries failed (in an encrypted room the first requests of a send share the
    // room key, so the failure may come before the event itself is put).
    let failed = world
        .proxy
        .requests()
        .iter()
        .filter(|r| !r.path.contains("/sync") && r.status >= 500)
        .count();
    assert!(failed > 0, "the answer's sends failed during the outage");
    world.synapse.resume().await.expect("synapse back");

    let replies = anna
        .replies_to(&c1, &message)
        .await
        .expect("answered with no restart");
    assert_eq!(replies[0].body, "[C1] echo: slow one");
    // A later message answered means the room's queue is past the first one.
    assert_eq!(
        anna.ask(&c1, "after").await.expect("answer"),
        "[C1] echo: after"
    );
    assert_eq!(
        anna.reply_count(&c1, &message).await.expect("count"),
        1,
        "answered once"
    );
    bot.stop().await;
}
