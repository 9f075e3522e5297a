//! Encryption and continuity: encrypted direct chats and rooms across a bot restart, invites
//! that arrive while the bot is down, and a homeserver restart under a running bot.

mod common;

use common::{bot_typing, World};
use lambda_matrix_testkit::Person;
use matrix_sdk::ruma::OwnedEventId;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_chats_keep_working_across_a_restart() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, true).await;
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
async fn the_bot_rides_out_a_homeserver_outage() {
    let mut world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    assert_eq!(
        anna.ask(&c1, "before").await.expect("answer"),
        "[C1] echo: before"
    );

    world.synapse.stop();
    // Down until the bot's own sync loop has met the outage: the SDK tries a request up to six
    // times (`session.rs`), so a seventh failed sync is the loop's next round.
    let failed_syncs = || {
        world
            .proxy
            .syncs()
            .iter()
            .filter(|r| r.status >= 500)
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while failed_syncs() < 7 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot did not retry its sync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.synapse.resume().await.expect("synapse back");

    // Sent the moment the server is back, before the bot's next retry: answered once.
    let after = anna.send(&c1, "after").await.expect("send");
    let replies = anna.replies_to(&c1, &after).await.expect("answered");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].body, "[C1] echo: after");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_rate_limits_are_waited_out_with_nothing_dropped() {
    let synapse = lambda_matrix_testkit::Synapse::start_with_real_limits()
        .await
        .expect("synapse");
    let bot_account = synapse.register("lambda").await.expect("bot");
    let proxy = lambda_matrix_testkit::RecordingProxy::start(&synapse.url())
        .await
        .expect("proxy");
    let world = common::World {
        synapse,
        proxy,
        bot_account,
        dir: tempfile::tempdir().expect("dir"),
    };
    let bot = world
        .start_bot(world.settings(|raw| raw.encrypt_rooms = Some("false".into())))
        .await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;

    // More replies than Synapse's default message burst (10) allows at once.
    let mut sent = Vec::new();
    for i in 0..14 {
        sent.push(anna.send(&c1, &format!("burst {i}")).await.expect("send"));
    }
    anna.replies_to(&c1, &sent[13])
        .await
        .expect("the last is answered");
    let messages = anna.messages(&c1).await.expect("messages");
    for (i, event) in sent.iter().enumerate() {
        let replies: Vec<_> = messages
            .iter()
            .filter(|m| m.in_reply_to.as_deref() == Some(event.as_str()))
            .collect();
        assert_eq!(replies.len(), 1, "burst {i} answered once");
        assert_eq!(replies[0].body, format!("[C1] echo: burst {i}"));
    }
    let limited = world
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(
        limited >= 1,
        "the homeserver rate-limited the bot at least once"
    );
    bot.stop().await;
}

/// A stop (SIGTERM) while an answer is being worked on lets it finish within
/// `MATRIX_SHUTDOWN_GRACE`: the person has it when the process has exited. With no grace the
/// process exits at once and the answer comes after the next start, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_the_answer_in_progress_finish() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    bot.stop().await;
    // The reply events to `event` on the server, readable or not yet.
    let replies_to = |event: OwnedEventId| {
        let anna = &anna;
        let c1 = p.c1.clone();
        async move {
            anna.messages(&c1)
                .await
                .expect("read the chat")
                .into_iter()
                .filter(|m| m.in_reply_to.as_deref() == Some(event.as_str()))
                .count()
        }
    };
    let answer = |event: OwnedEventId| {
        let anna = &anna;
        let c1 = p.c1.clone();
        async move {
            let parts = anna.answer(&c1, &event).await.expect("a complete answer");
            parts.into_iter().map(|m| m.body).collect::<Vec<_>>()
        }
    };

    let first = stopped_while_answering(&world, &anna, &p.c1, "8s", "slow one").await;
    assert_eq!(
        replies_to(first.clone()).await,
        1,
        "answered before the process exited"
    );
    assert_eq!(answer(first.clone()).await, ["[C1] echo: slow one"]);

    let second = stopped_while_answering(&world, &anna, &p.c1, "0s", "slow two").await;
    assert_eq!(
        replies_to(second.clone()).await,
        0,
        "no grace: the process exits without waiting"
    );
    let mut process = serving_binary(&world, "0s").await;
    assert_eq!(answer(second.clone()).await, ["[C1] echo: slow two"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replies_to(second).await, 1, "answered once");
    assert_eq!(
        replies_to(first).await,
        1,
        "the first answer is not repeated"
    );
    terminate(&mut process).await;
}

/// Starts the binary with `grace`, sends `text` (a slow one) to `room` as `person`, and sends
/// SIGTERM once the bot is typing (working on it). Returns the message after a clean exit.
async fn stopped_while_answering(
    world: &World,
    person: &Person,
    room: &str,
    grace: &str,
    text: &str,
) -> OwnedEventId {
    let mut process = serving_binary(world, grace).await;
    let message = person.send(room, text).await.expect("send");
    bot_typing(person, room, &world.bot_account.user_id).await;
    let status = terminate(&mut process).await;
    assert!(status.success(), "a clean exit: {status}");
    message
}

/// The binary with a mock that takes 2 s over messages containing "slow" and the given
/// `MATRIX_SHUTDOWN_GRACE`, once it is serving (its first live long-poll is in flight).
async fn serving_binary(world: &World, grace: &str) -> Child {
    let before = world.proxy.syncs().len();
    let mut child = world
        .binary()
        .arg("run")
        .env("LAMBDA_MOCK_SLOW_MATCH", "slow")
        .env("LAMBDA_MOCK_SLOW_DELAY", "2s")
        .env("MATRIX_SHUTDOWN_GRACE", grace)
        .spawn()
        .expect("the binary starts");
    let running = world
        .serving(before, || child.try_wait().expect("wait").is_none())
        .await;
    assert!(running, "the bot stopped early");
    child
}

/// Sends SIGTERM (what a supervisor sends) and waits for the exit, at most 20 s.
async fn terminate(child: &mut Child) -> ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "the bot exits after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A direct chat its person left while the bot was down: the next start leaves it too, as the
/// bot does when they leave while it runs (nobody can come back to a room only the bot is in),
/// and the person can open a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_its_person_left_while_the_bot_was_down_is_left_at_the_next_start() {
    let world = World::new().await;
    let settings = world.settings(|raw| raw.encrypt_rooms = Some("false".into()));
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    bot.stop().await;

    let room = anna
        .client
        .get_room(<&matrix_sdk::ruma::RoomId>::try_from(dm.as_str()).expect("room id"))
        .expect("the direct chat");
    room.leave().await.expect("leave");
    let bot = world.start_bot(settings).await;
    world.until_the_bot_left(&anna, &dm).await;
    // Her chats are untouched.
    assert_eq!(
        anna.ask(&c1, "still here?").await.expect("answer"),
        "[C1] echo: still here?"
    );
    bot.stop().await;
}
