//! The bot's encryption identity: cross-signed from the first start, with a recovery key handed
//! to the operator outside the logs, and recovered (same identity, room keys from the backup)
//! after the SDK store is lost.

mod common;

use common::World;
use lambda_matrix_testkit::Person;
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use std::os::unix::fs::PermissionsExt;

fn bot_device(world: &World) -> OwnedDeviceId {
    let text = std::fs::read_to_string(world.dir.path().join("matrix_store/session.json"))
        .expect("session");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["session"]["device_id"]
        .as_str()
        .expect("device")
        .into()
}

/// The bot's master key and whether `device` is signed by it, as anna's client sees them.
async fn seen_by(anna: &Person, bot: &OwnedUserId, device: &OwnedDeviceId) -> (String, bool) {
    anna.until("the bot's identity and device", || async {
        let encryption = anna.client.encryption();
        let identity = encryption.request_user_identity(bot).await.ok()??;
        let master = serde_json::to_string(identity.master_key()).ok()?;
        let device = encryption.get_device(bot, device).await.ok()??;
        Some((master, device.is_cross_signed_by_owner()))
    })
    .await
    .expect("identity visible")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_survives_store_loss_with_the_recovery_key() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let bot_id = OwnedUserId::try_from(world.bot_account.user_id.as_str()).expect("id");
    let key_file = world.dir.path().join("lambda_matrix.db.recovery-key");
    assert_eq!(
        std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let key = std::fs::read_to_string(&key_file)
        .expect("read")
        .lines()
        .last()
        .expect("key line")
        .to_owned();
    assert!(
        key.split_whitespace().count() >= 8,
        "looks like a recovery key"
    );

    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    let (master_before, signed) = seen_by(&anna, &bot_id, &bot_device(&world)).await;
    assert!(
        signed,
        "the bot's device is cross-signed by its own identity from the first start"
    );
    assert_eq!(
        anna.ask(&c1, "before").await.expect("answer"),
        "[C1] echo: before"
    );
    bot.stop().await;

    // Sent while down, then the SDK store (the device's keys) and the cache are lost.
    let during = anna.send(&c1, "during").await.expect("send");
    world.lose_cache();
    world.lose_store();
    std::fs::remove_file(&key_file).expect("the operator moved the key into the settings");

    let bot = world
        .start_bot(world.settings(|raw| raw.recovery_key = Some(key.clone())))
        .await;
    assert!(!key_file.exists(), "recovery does not write a new key");
    let (master_after, signed) = seen_by(&anna, &bot_id, &bot_device(&world)).await;
    assert_eq!(master_after, master_before, "the same identity");
    assert!(
        signed,
        "the new device is signed by it: no warning for people"
    );
    // The room key of "during" comes back from the backup: answered, not "send it again".
    let replies = anna.replies_to(&c1, &during).await.expect("answered");
    assert_eq!(replies[0].body, "[C1] echo: during");
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_excludes_insecure_devices_can_talk_to_the_bot() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let account = world.synapse.register("strict").await.expect("register");
    let strict = Person::login_excluding_insecure_devices(&world.synapse.url(), &account)
        .await
        .expect("login");
    // The person has a cross-signing identity of their own, as real clients do.
    strict
        .client
        .encryption()
        .bootstrap_cross_signing(None)
        .await
        .expect("cross-signing");
    let common::Provisioned { dm, c1, .. } = world.first_contact(&strict, true).await;
    assert!(strict
        .ask(&dm, "!chats")
        .await
        .expect("encrypted command")
        .contains("C1"));
    assert_eq!(
        strict
            .ask(&c1, "only to signed devices")
            .await
            .expect("answer"),
        "[C1] echo: only to signed devices"
    );
    bot.stop().await;
}

/// The last line of the key file: the recovery key.
fn key_in(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .expect("key file")
        .lines()
        .last()
        .expect("key line")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_writing_the_key_and_using_it_loses_nothing() {
    let world = World::new().await;
    let bot_id = OwnedUserId::try_from(world.bot_account.user_id.as_str()).expect("id");
    let key_file = world.dir.path().join("lambda_matrix.db.recovery-key");
    let mut crashing = world
        .binary()
        .arg("run")
        .env("FAILPOINTS", "after-key-file-before-recovery=return")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let status = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            if let Some(status) = crashing.try_wait().expect("wait") {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the bot stops at the crash point");
    assert_eq!(status.code(), Some(137), "the crash point fired");
    // The key is on disk, private, before secret storage uses it.
    assert_eq!(
        std::fs::metadata(&key_file)
            .expect("written before the crash")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let key = key_in(&key_file);

    // The next start sets up secret storage with that same key.
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(key_in(&key_file), key, "the same key");
    let anna = world.person("anna").await;
    let (master_before, signed) = seen_by(&anna, &bot_id, &bot_device(&world)).await;
    assert!(signed, "the device is cross-signed");
    bot.stop().await;

    // The key the operator copied after the crash opens it: the same identity on a new device.
    world.lose_cache();
    world.lose_store();
    std::fs::remove_file(&key_file).expect("moved into the settings");
    let bot = world
        .start_bot(world.settings(|raw| raw.recovery_key = Some(key.clone())))
        .await;
    assert!(!key_file.exists(), "recovered: no new key");
    let (master_after, signed) = seen_by(&anna, &bot_id, &bot_device(&world)).await;
    assert_eq!(master_after, master_before, "the same identity");
    assert!(signed, "the new device is signed by it");
    bot.stop().await;
}
