//! How the bot syncs (issue 20): live traffic on `/sync` v2 from a position saved after each
//! response, `MATRIX_SYNC=v2` for homeservers without sliding sync, and `auto` falling back to
//! it when the homeserver does not offer MSC4186 — end to end against Synapse, in encrypted
//! rooms (the room keys, device lists and one-time keys then come with the v2 responses).

mod common;

use common::World;
use lambda_matrix_testkit::{Fault, RecordingProxy};

const SLIDING: &str = "simplified_msc3575/sync";

fn sliding_requests(proxy: &RecordingProxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.path.contains(SLIDING))
        .count()
}

async fn reply_count(anna: &lambda_matrix_testkit::Person, room: &str, to: &str) -> usize {
    anna.messages(room)
        .await
        .expect("messages")
        .iter()
        .filter(|m| m.in_reply_to.as_deref() == Some(to))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_on_v2_only_serves_restarts_and_rebuilds_everything_in_encrypted_rooms() {
    let world = World::new().await;
    let v2 = |r: &mut lambda_matrix::config::RawSettings| r.sync = Some("v2".into());
    // A new store: one v2 initial sync.
    let bot = world.start_bot(world.settings(v2)).await;
    let anna = world.person("anna").await;
    let rooms = world.first_contact(&anna, true).await;
    assert_eq!(
        anna.ask(&rooms.c1, "hello").await.expect("answer"),
        "[C1] echo: hello"
    );
    bot.stop().await;

    // Sent while the bot is down; the restart asks from the saved position.
    let away = anna.send(&rooms.c1, "while away").await.expect("send");
    world.proxy.clear();
    let bot = world.start_bot(world.settings(v2)).await;
    let answer = anna.replies_to(&rooms.c1, &away).await.expect("answered");
    assert!(answer[0].body.ends_with("echo: while away"), "{answer:?}");
    let first = world.proxy.syncs().into_iter().next().expect("a sync");
    assert!(
        first.query.contains("since="),
        "resumed from the saved position: {first:?}"
    );
    bot.stop().await;

    // Cache and store lost: a new device, a v2 initial sync, everything rebuilt from the server.
    world.lose_cache();
    world.lose_store();
    let bot = world.start_bot(world.settings(v2)).await;
    assert_eq!(
        anna.ask(&rooms.c1, "still there?").await.expect("answer"),
        "[C1] echo: still there?"
    );
    assert!(
        anna.ask(&rooms.dm, "!chats")
            .await
            .expect("chats")
            .contains("C1"),
        "the chat list is rebuilt from the server"
    );
    bot.stop().await;
    assert_eq!(
        reply_count(&anna, &rooms.c1, away.as_str()).await,
        1,
        "answered once across the restarts"
    );
    assert_eq!(
        sliding_requests(&world.proxy),
        0,
        "MATRIX_SYNC=v2 never asks for sliding sync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_v2_when_the_homeserver_lacks_sliding_sync() {
    let world = World::new().await;
    // The homeserver answers the sliding-sync endpoint as one without MSC4186 does.
    world.proxy.inject(
        Fault::new("POST", SLIDING, 404)
            .body(r#"{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}"#),
    );
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let rooms = world.first_contact(&anna, true).await;
    assert_eq!(
        anna.ask(&rooms.c1, "hello").await.expect("answer"),
        "[C1] echo: hello"
    );
    bot.stop().await;
    assert_eq!(sliding_requests(&world.proxy), 1, "asked once, then v2");

    // `sliding` does not fall back: the start stops with a clear line.
    world.lose_cache();
    world.lose_store();
    let output = world
        .binary()
        .arg("run")
        .env("MATRIX_SYNC", "sliding")
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the bot refuses to run: {said}");
    assert!(said.contains("the first sync failed"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_traffic_and_restarts_take_no_snapshot_of_every_room() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let rooms = world.first_contact(&anna, true).await;
    let snapshot = sliding_requests(&world.proxy);
    assert_eq!(snapshot, 1, "one snapshot for a new store");
    for text in ["one", "two", "three"] {
        assert_eq!(
            anna.ask(&rooms.c1, text).await.expect("answer"),
            format!("[C1] echo: {text}")
        );
    }
    bot.stop().await;
    world.lose_cache();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        anna.ask(&rooms.c1, "after").await.expect("answer"),
        "[C1] echo: after"
    );
    bot.stop().await;
    assert_eq!(
        sliding_requests(&world.proxy),
        snapshot,
        "live traffic and a restart with the store ask v2 only"
    );
}

/// Encryption state rides on the v2 loop: when people use up the bot's one-time keys, the count
/// in the next v2 response makes the bot upload new ones, and a new room key (a device the bot
/// has not seen) still reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_one_time_keys_are_replenished_from_the_v2_counts() {
    use matrix_sdk::ruma::api::client::keys::claim_keys;
    use matrix_sdk::ruma::{OneTimeKeyAlgorithm, OwnedUserId};
    use std::collections::BTreeMap;
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let rooms = world.first_contact(&anna, true).await;
    assert_eq!(
        anna.ask(&rooms.c1, "hello").await.expect("answer"),
        "[C1] echo: hello"
    );
    let bot_id = OwnedUserId::try_from(world.bot_account.user_id.as_str()).expect("id");
    let devices: Vec<_> = anna
        .client
        .encryption()
        .get_user_devices(&bot_id)
        .await
        .expect("devices")
        .devices()
        .map(|d| d.device_id().to_owned())
        .collect();
    assert_eq!(devices.len(), 1, "{devices:?}");
    world.proxy.clear();
    for _ in 0..60 {
        let wanted = BTreeMap::from([(
            bot_id.clone(),
            BTreeMap::from([(devices[0].clone(), OneTimeKeyAlgorithm::SignedCurve25519)]),
        )]);
        anna.client
            .send(claim_keys::v3::Request::new(wanted))
            .await
            .expect("claim");
    }
    // A second device of anna's (new Olm session, new room key) writes in the chat.
    let second = lambda_matrix_testkit::Person::login(&world.synapse.url(), &anna.account)
        .await
        .expect("second device");
    assert_eq!(
        second
            .ask(&rooms.c1, "from my phone")
            .await
            .expect("answer"),
        "[C1] echo: from my phone"
    );
    anna.until("the bot uploaded new one-time keys", || async {
        (!world.proxy.matching("POST", "/keys/upload").is_empty()).then_some(())
    })
    .await
    .expect("keys uploaded");
    bot.stop().await;
}
