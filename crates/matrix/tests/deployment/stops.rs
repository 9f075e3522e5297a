//! A stop at any moment exits cleanly and loses nothing: a stop that comes while the bot is
//! still starting ends the start where it is (it never goes live), and the next start answers
//! what was waiting, once (issue 30, point 8). A first contact in progress is finished first,
//! within the stop's grace, and nothing the bot does outlives its stop.

use super::common::World;
use lambda_matrix_testkit::Fault;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_middle_of_a_first_contact_lets_it_finish_first() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    // The first room creation is refused once: the first contact tries again 5 s later.
    world
        .proxy
        .inject(Fault::new("POST", "/createRoom", 429).times(1));
    let dm = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm");
    anna.until("the refused room creation", || async {
        (!world.proxy.matching("POST", "/createRoom").is_empty()).then_some(())
    })
    .await
    .expect("refused");

    // Stopped while the first contact waits to try again (the grace is 8 s).
    bot.stop().await;
    let at_stop = world.proxy.requests();
    let created = at_stop
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/createRoom") && r.status == 200)
        .count();
    assert_eq!(
        created, 2,
        "the Space and C1 were made before the stop returned"
    );
    let welcomed = at_stop.iter().any(|r| {
        r.method == "PUT" && r.path.contains(&format!("/rooms/{dm}/send/")) && r.status == 200
    });
    assert!(welcomed, "the welcome was sent before the stop returned");

    // Anna has both invitations without a restart, and the bot did nothing after its stop.
    assert_eq!(anna.accept_invites(2).await.expect("invited").len(), 2);
    assert_eq!(
        world.proxy.requests().len(),
        at_stop.len(),
        "no request after the stop returned"
    );
}
