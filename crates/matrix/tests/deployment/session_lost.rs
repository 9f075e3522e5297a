//! A session taken away while the bot runs (an admin logs its device out): with a password the
//! bot logs in again as a new device, recovers its encryption identity and goes on answering,
//! in an encrypted room too; without one it stops with one clear line and exit code 3, instead
//! of retrying forever (issue 30, point 2). It does not wait for answers it can no longer send,
//! keeps the usage it had not written, and its new device's first answers stay readable when
//! they cross the person's first key share with it (the chaos soak's finding 5).

use super::common::World;
use std::future::Future;
use std::process::Stdio;
use std::time::Duration;
use tokio::time::Instant;

/// What `check` gives, tried every 200 ms for at most `limit`; fails with what its last try
/// said.
async fn polled<T, F, Fut>(limit: Duration, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(found) => return found,
            Err(why) => assert!(Instant::now() < deadline, "{why}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Logs the bot's saved device out as an admin would (deletes it); returns its id.
async fn log_out_the_bot(world: &World, settings: &lambda_matrix::config::Settings) -> String {
    let old = lambda_matrix::session::saved_device(settings).expect("the bot's device");
    world
        .synapse
        .delete_device(&world.bot_account.user_id, &old)
        .await
        .expect("logged out");
    old
}

/// Waits (at most `limit`) until the devices of `user_id` are `others` and one new one (not
/// `old`), and returns the new one.
async fn new_device(
    world: &World,
    user_id: &str,
    others: &[String],
    old: &str,
    limit: Duration,
) -> String {
    polled(limit, || async {
        let devices = world.synapse.devices(user_id).await.expect("devices");
        let new: Vec<&String> = devices.iter().filter(|d| !others.contains(d)).collect();
        match new.as_slice() {
            [device] if *device != old && devices.len() == others.len() + 1 => {
                Ok((*device).clone())
            }
            _ => Err(format!("no single new device after {limit:?}: {devices:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_logged_out_by_an_admin_logs_in_again_and_goes_on_answering() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;
    assert_eq!(
        anna.ask(&c1, "before").await.expect("answer"),
        "[C1] echo: before"
    );
    let bot_id = world.bot_account.user_id.clone();
    let old = log_out_the_bot(&world, &settings).await;
    // The account's other devices (the one its registration made) stay as they are.
    let others = world.synapse.devices(&bot_id).await.expect("devices");

    // The next message meets a bot whose token is gone: it logs in again and answers it.
    let message = anna.send(&c1, "after").await.expect("send");
    new_device(&world, &bot_id, &others, &old, Duration::from_secs(60)).await;
    let replies = anna
        .replies_to(&c1, &message)
        .await
        .expect("answered after the new login");
    assert_eq!(replies[0].body, "[C1] echo: after");
    assert_eq!(
        anna.ask(&c1, "and again").await.expect("answer"),
        "[C1] echo: and again"
    );
    assert_eq!(
        anna.reply_count(&c1, &message).await.expect("count"),
        1,
        "answered once"
    );
    assert_eq!(
        world.synapse.devices(&bot_id).await.expect("devices").len(),
        others.len() + 1,
        "one new device: no login loop"
    );
    bot.stop().await;

    // A saved session the homeserver refuses at the next start is replaced by a fresh login.
    let old = log_out_the_bot(&world, &settings).await;
    let bot = world.start_bot(settings.clone()).await;
    assert_eq!(
        anna.ask(&c1, "after a start").await.expect("answer"),
        "[C1] echo: after a start"
    );
    new_device(&world, &bot_id, &others, &old, Duration::from_secs(5)).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_password_a_lost_session_stops_the_bot_with_one_clear_line() {
    let world = World::new().await;
    // A first start logs in with the password and saves the session.
    let before = world.proxy.syncs().len();
    let mut first = world.binary().arg("run").spawn().expect("bot starts");
    assert!(
        world
            .serving(before, || matches!(first.try_wait(), Ok(None)))
            .await,
        "the first start serves"
    );
    let pid = rustix::process::Pid::from_child(&first);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert!(first.wait().expect("exit").success(), "a clean stop");

    // The next start has the saved session and no password.
    let before = world.proxy.syncs().len();
    let mut second = world
        .binary()
        .arg("run")
        .env_remove("MATRIX_PASSWORD")
        .env("RUST_LOG", lambda_matrix::config::DEFAULT_LOG_FILTER)
        .stderr(Stdio::piped())
        .spawn()
        .expect("bot starts");
    assert!(
        world
            .serving(before, || matches!(second.try_wait(), Ok(None)))
            .await,
        "the saved session serves"
    );
    let bot_id = world.bot_account.user_id.clone();
    log_out_the_bot(&world, &world.settings(|_| {})).await;
    // An invite wakes the bot's sync; its next request meets the dead token.
    let anna = world.person("anna").await;
    anna.create_dm(&bot_id, false).await.expect("dm");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the bot did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(3), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("no longer accepts the bot's session")
            && lines[0].contains("MATRIX_PASSWORD"),
        "{stderr}"
    );
    let session = std::fs::read_to_string(world.dir.path().join("matrix_store/session.json"))
        .expect("the session file");
    let saved: serde_json::Value = serde_json::from_str(&session).expect("json");
    let token = saved["session"]["tokens"]["access_token"]
        .as_str()
        .or_else(|| saved["session"]["access_token"].as_str())
        .unwrap_or_default();
    assert!(!token.is_empty(), "{session}");
    assert!(!stderr.contains(token), "the token never shows");
}

/// A session taken away while an answer is still with the platform: nothing of it can be sent
/// with the dead session, so the bot does not wait `MATRIX_SHUTDOWN_GRACE` for it before
/// logging in again (it is finished by the new session), and the usage counted but not yet
/// written (`LAMBDA_USAGE_WRITE_EVERY`) is written by the new session instead of being lost with
/// the old one. (Seen in the chaos soak: the new device came 8-40 s after the old one was gone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_keeps_the_usage_and_does_not_wait_for_answers_it_cannot_send() {
    let world = World::new().await;
    let anna = world.person("anna").await;
    let mut bot = world
        .binary()
        .arg("run")
        .env("LAMBDA_USAGE_WRITE_EVERY", "1h")
        .env("MATRIX_SHUTDOWN_GRACE", "2m")
        .env("LAMBDA_MOCK_SLOW_MATCH", "stall")
        .env("LAMBDA_MOCK_SLOW_DELAY", "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bot starts");
    let p = world.first_contact(&anna, false).await;
    assert_eq!(
        anna.ask(&p.c1, "hi").await.expect("answer"),
        "[C1] echo: hi"
    );
    // An answer the platform does not finish; once a later command is answered, it is running.
    anna.send(&p.c1, "stall").await.expect("send");
    anna.ask(&p.dm, "!chats").await.expect("!chats");

    log_out_the_bot(&world, &world.settings(|_| {})).await;
    let usage = anna.ask(&p.dm, "!usage").await;
    bot.kill().expect("SIGKILL");
    let _ = bot.wait();
    let usage = usage.expect("answered by the new session without waiting for the stalled answer");
    assert!(
        usage.contains("**Today**: 4 (no budget)") && usage.contains("mock: 4 (1 answer)"),
        "the usage counted by the old session is kept: {usage}"
    );
}

/// Whether the bot has sent an event in `room_id` after `event_id` (read with the admin API, so
/// the person's client does not sync).
async fn bot_spoke_after(world: &World, room_id: &str, event_id: &str) -> bool {
    let path = format!("/_synapse/admin/v1/rooms/{room_id}/messages?dir=b&limit=50");
    let Ok(page) = world.synapse.admin_get(&path).await else {
        return false;
    };
    let bot = world.bot_account.user_id.as_str();
    let events = page["chunk"].as_array().cloned().unwrap_or_default();
    // Newest first: a bot event before reaching `event_id`.
    for event in events {
        if event["event_id"] == event_id {
            return false;
        }
        if event["sender"] == bot && event["type"] == "m.room.encrypted" {
            return true;
        }
    }
    false
}

async fn until_bot_spoke_after(world: &World, room_id: &str, event_id: &str) {
    polled(Duration::from_secs(30), || async {
        match bot_spoke_after(world, room_id, event_id).await {
            true => Ok(()),
            false => Err(format!("the bot did not answer {event_id}")),
        }
    })
    .await
}

/// After the bot logs in as a new device, its first answer in a room and the person's own first
/// key share with that device cross: the bot shares its new room key with the person's device
/// (index 0) before that device has synced, then the person's client, writing again, makes its
/// own Olm session with the new device to share its key. matrix-sdk takes a new Olm session
/// from a device as a sign it may have lost keys and shares the same room key with it again,
/// at the next index; the person's client receives both copies in one sync and keeps the later
/// one (matrix-sdk-crypto 0.18 compares a received key with its store, not with the rest of
/// the batch), so the bot's first answer can never be decrypted. Seen in the chaos soak (3 of
/// 16 runs). The bot starts a new room key in a room when a person's device shares one there
/// with it, so its key in that room does not reach the device twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_answers_of_a_new_device_stay_readable_when_its_keys_and_the_persons_cross() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    assert_eq!(anna.ask(&c1, "hi").await.expect("answer"), "[C1] echo: hi");
    bot.stop().await;
    let bot_id = world.bot_account.user_id.clone();
    log_out_the_bot(&world, &settings).await;
    let bot = world.start_bot(settings.clone()).await;

    // The person's client has not synced since: it does not know the new device yet.
    let two = anna.send(&c1, "two").await.expect("send");
    until_bot_spoke_after(&world, &c1, two.as_str()).await;
    // It learns of the new device without syncing (so the bot's key share waits in its inbox)
    // and writes again: its key goes to the new device over an Olm session of its own.
    anna.client
        .encryption()
        .request_user_identity(&matrix_sdk::ruma::OwnedUserId::try_from(bot_id).expect("id"))
        .await
        .expect("keys query");
    let three = anna.send(&c1, "three").await.expect("send");
    until_bot_spoke_after(&world, &c1, three.as_str()).await;

    let first = anna.replies_to(&c1, &two).await;
    let second = anna.replies_to(&c1, &three).await;
    bot.stop().await;
    let first = first.expect("the new device's first answer can be read");
    assert_eq!(second.expect("the second too")[0].body, "[C1] echo: three");
    assert!(
        first[0].body.contains("two") || first[0].msgtype == "m.notice",
        "{first:?}"
    );
}
