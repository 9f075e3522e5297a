//! A slow platform: one slow answer holds up neither other chats nor other people, and a
//! timeout gives a clear reply in the room and counts as handled.

mod common;

use common::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_blocks_nobody_else_and_times_out_clearly() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| {
            raw.platform_timeout = Some("10s".into());
            raw.mock_slow_match = Some("slowly".into());
            raw.mock_slow_delay = Some("60s".into());
        }))
        .await;
    let anna = world.person("anna").await;
    let boris = world.person("boris").await;
    let common::Provisioned {
        dm: anna_dm,
        c1: anna_c1,
        ..
    } = world.first_contact(&anna, false).await;
    let boris_c1 = world.first_contact(&boris, false).await.c1;

    let slow = anna
        .send(&anna_c1, "answer slowly please")
        .await
        .expect("send");
    // Meanwhile: anna's other chat and another person are served at once.
    assert!(anna
        .ask(&anna_dm, "!new Other")
        .await
        .expect("new")
        .contains("C2"));
    let c2 = anna.accept_invites(1).await.expect("C2")[0].to_string();
    assert_eq!(
        anna.ask(&c2, "quick").await.expect("answer"),
        "[C2] echo: quick"
    );
    assert_eq!(
        boris.ask(&boris_c1, "hi").await.expect("answer"),
        "[C1] echo: hi"
    );
    let pending = anna.messages(&anna_c1).await.expect("messages");
    assert!(
        pending
            .iter()
            .all(|m| m.in_reply_to.as_deref() != Some(slow.as_str())),
        "the slow one is still being worked on"
    );

    // The timeout: a clear reply to the slow message, and the chat goes on.
    let timed_out = anna
        .replies_to(&anna_c1, &slow)
        .await
        .expect("timeout reply");
    assert_eq!(timed_out.len(), 1);
    assert!(
        timed_out[0].body.contains("took too long"),
        "{}",
        timed_out[0].body
    );
    assert_eq!(
        anna.ask(&anna_c1, "next").await.expect("answer"),
        "[C1] echo: next"
    );
    bot.stop().await;
}
