//! Login without a password (issue 33, point 2): the operator gives the bot an access token and
//! its device (`MATRIX_ACCESS_TOKEN`, `MATRIX_DEVICE_ID`), as a login service's compatibility
//! token or a Synapse admin would. The token never shows in the bot's output; when it is
//! revoked the rule for a lost session holds (a password logs in again, else exit code 3), and
//! a revoked token is not tried again at every start.

use super::common::World;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_token_serves_without_a_password_and_never_shows() {
    let world = World::new().await;
    let token = world
        .synapse
        .log_in_device(&world.bot_account, "LMTOKEN")
        .await
        .expect("a token for a new device");
    let before_devices = world.bot_devices().await;
    let before = world.proxy.syncs().len();
    let mut bot = world
        .binary()
        .arg("run")
        .env_remove("MATRIX_PASSWORD")
        .env("MATRIX_ACCESS_TOKEN", &token)
        .env("MATRIX_DEVICE_ID", "LMTOKEN")
        .env("RUST_LOG", lambda_matrix::config::DEFAULT_LOG_FILTER)
        .stderr(Stdio::piped())
        .spawn()
        .expect("bot starts");
    let mut pipe = bot.stderr.take().expect("stderr");
    let output = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    assert!(
        world
            .serving(before, || matches!(bot.try_wait(), Ok(None)))
            .await,
        "the bot serves with the given token"
    );
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;
    assert_eq!(
        anna.ask(&c1, "encrypted").await.expect("answer"),
        "[C1] echo: encrypted"
    );
    assert_eq!(
        world.bot_devices().await,
        before_devices,
        "the given device, no login of its own"
    );

    // The token is revoked and there is no password: one clear line and exit code 3.
    world
        .synapse
        .delete_device(&world.bot_account.user_id, "LMTOKEN")
        .await
        .expect("revoked");
    anna.send(&c1, "after the revocation").await.expect("send");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = bot.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the bot did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stderr = output.join().expect("stderr");
    assert_eq!(status.code(), Some(3), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one line: {stderr}");
    assert!(errors[0].contains("MATRIX_ACCESS_TOKEN"), "{stderr}");
    assert!(!stderr.contains(&token), "the token never shows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_with_a_password_is_replaced_once_and_a_new_token_is_taken() {
    let world = World::new().await;
    let first = world
        .synapse
        .log_in_device(&world.bot_account, "LMFIRST")
        .await
        .expect("token");
    let settings = world.settings(|raw| {
        raw.access_token = Some(first.clone());
        raw.device_id = Some("LMFIRST".into());
    });
    let bot = world.start_bot(settings.clone()).await;
    assert_eq!(
        lambda_matrix::session::saved_device(&settings).as_deref(),
        Some("LMFIRST")
    );
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;
    assert_eq!(
        anna.ask(&c1, "one").await.expect("answer"),
        "[C1] echo: one"
    );

    world
        .synapse
        .delete_device(&world.bot_account.user_id, "LMFIRST")
        .await
        .expect("revoked");
    assert_eq!(
        anna.ask(&c1, "two").await.expect("answer"),
        "[C1] echo: two"
    );
    let relogged = lambda_matrix::session::saved_device(&settings).expect("a device");
    assert_ne!(relogged, "LMFIRST", "a password login made a new device");
    bot.stop().await;

    // The next start keeps the password's session: the revoked token is not tried again.
    let after_relogin = world.bot_devices().await;
    let bot = world.start_bot(settings.clone()).await;
    assert_eq!(
        anna.ask(&c1, "three").await.expect("answer"),
        "[C1] echo: three"
    );
    assert_eq!(
        world.bot_devices().await,
        after_relogin,
        "no login at the start"
    );
    assert_eq!(
        lambda_matrix::session::saved_device(&settings),
        Some(relogged)
    );
    bot.stop().await;

    // A new token from the operator is taken at the next start.
    let second = world
        .synapse
        .log_in_device(&world.bot_account, "LMSECOND")
        .await
        .expect("token");
    let settings = world.settings(|raw| {
        raw.access_token = Some(second);
        raw.device_id = Some("LMSECOND".into());
    });
    let bot = world.start_bot(settings.clone()).await;
    assert_eq!(
        lambda_matrix::session::saved_device(&settings).as_deref(),
        Some("LMSECOND")
    );
    assert_eq!(
        anna.ask(&c1, "four").await.expect("answer"),
        "[C1] echo: four"
    );
    bot.stop().await;

    // The SDK store is lost: the token's device has keys the bot no longer holds, so the
    // password logs in as a new device (a token alone would be refused with one line).
    world.lose_store();
    let bot = world.start_bot(settings.clone()).await;
    let device = lambda_matrix::session::saved_device(&settings).expect("a device");
    assert_ne!(device, "LMSECOND");
    assert_eq!(
        anna.ask(&c1, "five").await.expect("answer"),
        "[C1] echo: five"
    );
    bot.stop().await;
}
