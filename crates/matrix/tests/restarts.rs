//! Encryption and continuity: encrypted direct chats and rooms across a bot restart, invites
//! that arrive while the bot is down, and a homeserver restart under a running bot.

mod common;

use common::World;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_chats_keep_working_across_a_restart() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let dm = anna
        .create_dm(&world.bot_account.user_id, true)
        .await
        .expect("encrypted dm")
        .to_string();
    let invited = anna.accept_invites(2).await.expect("space and C1");
    let c1 = invited
        .iter()
        .find(|id| !anna.room(id.as_str()).expect("room").is_space())
        .expect("C1")
        .to_string();
    assert!(
        anna.state(&c1, "m.room.encryption", "")
            .await
            .expect("read")
            .is_some(),
        "C1 is encrypted by default"
    );

    // The encrypted direct chat: the bot reads the command and its reply decrypts on anna's side.
    let event = anna.send(&dm, "!chats").await.expect("send");
    let reply = anna.replies_to(&dm, &event).await.expect("reply")[0].clone();
    assert_ne!(
        reply.msgtype, "m.room.encrypted",
        "anna can read the bot's encrypted reply"
    );
    assert!(reply.body.contains("C1"), "{}", reply.body);
    assert_eq!(
        anna.ask(&c1, "secret one").await.expect("answer"),
        "[C1] echo: secret one"
    );

    // Restart: the same device comes back (no login) and keeps reading and writing.
    bot.stop().await;
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert!(
        world.proxy.matching("POST", "/login").is_empty(),
        "the session was restored"
    );
    assert_eq!(
        anna.ask(&c1, "secret two").await.expect("answer"),
        "[C1] echo: secret two"
    );
    let created = anna.ask(&dm, "!new After restart").await.expect("!new");
    assert!(created.contains("C2"), "{created}");
    let c2 = anna.accept_invites(1).await.expect("C2")[0].to_string();
    assert_eq!(
        anna.ask(&c2, "in C2").await.expect("answer"),
        "[C2] echo: in C2"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unencrypted_rooms_when_configured_and_invites_from_downtime_are_handled() {
    let world = World::new().await;
    let settings = || world.settings(|raw| raw.encrypt_rooms = Some("false".into()));
    // The bot has run once (logged in), then is down when the person arrives.
    world.start_bot(settings()).await.stop().await;
    let anna = world.person("anna").await;
    anna.create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm while the bot is down");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let bot = world.start_bot(settings()).await;
    let invited = anna
        .accept_invites(2)
        .await
        .expect("provisioned after start");
    let c1 = invited
        .iter()
        .find(|id| !anna.room(id.as_str()).expect("room").is_space())
        .expect("C1")
        .to_string();
    assert!(
        anna.state(&c1, "m.room.encryption", "")
            .await
            .expect("read")
            .is_none(),
        "MATRIX_ENCRYPT_ROOMS=false"
    );
    assert_eq!(
        anna.ask(&c1, "plain").await.expect("answer"),
        "[C1] echo: plain"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_rides_out_a_homeserver_restart() {
    let mut world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    anna.create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm");
    let invited = anna.accept_invites(2).await.expect("provisioned");
    let c1 = invited
        .iter()
        .find(|id| !anna.room(id.as_str()).expect("room").is_space())
        .expect("C1")
        .to_string();
    assert_eq!(
        anna.ask(&c1, "before").await.expect("answer"),
        "[C1] echo: before"
    );

    world.synapse.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.synapse.resume().await.expect("synapse back");
    let failed_syncs = world
        .proxy
        .matching("GET", "/sync")
        .iter()
        .filter(|r| r.status >= 500)
        .count();
    assert!(failed_syncs >= 1, "the outage was seen by the bot");

    assert_eq!(
        anna.ask(&c1, "after").await.expect("answer"),
        "[C1] echo: after"
    );
    bot.stop().await;
}
