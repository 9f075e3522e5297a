//! A stop at any moment exits cleanly and loses nothing: a stop that comes while the bot is
//! still starting ends the start where it is (it never goes live), and the next start answers
//! what was waiting, once (issue 30, point 8).

use super::common::World;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_the_start_exits_cleanly_and_the_next_start_answers_once() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    bot.stop().await;
    let message = anna.send(&c1, "while down").await.expect("send");

    // A start stopped as soon as it asks for its first sync.
    let before = world.proxy.syncs().len();
    let proxy = &world.proxy;
    let stop = async {
        while proxy.syncs().len() == before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let platform = lambda_matrix::app::platform(&settings)
        .await
        .expect("platform");
    let stopped = tokio::time::timeout(
        Duration::from_secs(20),
        lambda_matrix::run_with_platform(settings.clone(), platform, stop),
    )
    .await
    .expect("the stopped start exits promptly");
    stopped.expect("a clean exit");
    assert!(
        !world.proxy.syncs()[before..]
            .iter()
            .any(|r| r.query.contains("timeout=30000")),
        "it never went live"
    );
    anna.sync().await.expect("sync");
    assert_eq!(
        anna.reply_count(&c1, &message).await.expect("count"),
        0,
        "it stopped where it was, before catch-up"
    );

    // The next start answers what was waiting, once.
    let bot = world.start_bot(settings).await;
    let replies = anna.replies_to(&c1, &message).await.expect("answered");
    assert_eq!(replies[0].body, "[C1] echo: while down");
    assert_eq!(
        anna.ask(&c1, "and now").await.expect("answer"),
        "[C1] echo: and now"
    );
    assert_eq!(
        anna.reply_count(&c1, &message).await.expect("count"),
        1,
        "answered once"
    );
    bot.stop().await;
}
