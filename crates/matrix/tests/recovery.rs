//! The cache is rebuildable: after losing it (and the SDK store), a restart restores every row
//! from the homeserver without writing to it, and everything keeps working.

mod common;

use common::{RunningBot, World};
use lambda_matrix_core::{CacheDump, Change, ChatId, SqliteStore, Store};
use lambda_matrix_testkit::{Fault, Person};

/// Anna with C1 "Chat 1", C2 renamed "Holidays", C3 archived; returns (dm, c1, c2, c3).
async fn anna_with_history(world: &World, anna: &Person) -> (String, String, String, String) {
    let common::Provisioned { dm, c1, .. } = world.first_contact(anna, false).await;
    assert!(anna.ask(&dm, "!new").await.expect("new").contains("C2"));
    let c2 = anna.accept_invites(1).await.expect("C2")[0].to_string();
    assert!(anna
        .ask(&dm, "!new Old stuff")
        .await
        .expect("new")
        .contains("C3"));
    let c3 = anna.accept_invites(1).await.expect("C3")[0].to_string();
    assert!(anna
        .ask(&dm, "!rename C2 Holidays")
        .await
        .expect("rename")
        .contains("Holidays"));
    assert!(anna
        .ask(&dm, "!archive C3")
        .await
        .expect("archive")
        .contains("C3"));
    (dm, c1, c2, c3)
}

/// Requests that change rooms on the server: none may happen while the bot only reconciles.
/// (The bot's own encryption identity lives in its user-level account data and is set up in a
/// step of its own when the SDK store is new; room account data, like the DM record, counts.)
fn server_writes(world: &World) -> Vec<String> {
    let patterns = [
        "/createRoom",
        "/invite",
        "/join",
        "/leave",
        "/forget",
        "/state/",
        "/send/",
        "/redact/",
    ];
    world
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .filter(|r| {
            patterns.iter().any(|p| r.path.contains(p))
                || (r.path.contains("/account_data/") && r.path.contains("/rooms/"))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn restart_after(world: &World, bot: RunningBot, lose: impl FnOnce()) -> RunningBot {
    bot.stop().await;
    lose();
    world.proxy.clear();
    world.start_bot(world.settings(|_| {})).await
}

fn dump(world: &World) -> CacheDump {
    SqliteStore::read_only_dump(world.dir.path().join("lambda_matrix.db")).expect("dump")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_cache_is_rebuilt_exactly_without_touching_the_server() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let (dm, c1, c2, _c3) = anna_with_history(&world, &anna).await;
    bot.stop().await;
    let before = dump(&world);
    assert_eq!(
        (before.users.len(), before.rooms.len(), before.chats.len()),
        (1, 5, 3)
    );
    let rooms_before = world.synapse.room_count().await.expect("rooms");

    let bot = restart_after(
        &world,
        world.start_bot(world.settings(|_| {})).await,
        || world.lose_cache(),
    )
    .await;
    assert_eq!(
        server_writes(&world),
        Vec::<String>::new(),
        "startup after cache loss writes nothing to the server"
    );
    bot.stop().await;
    assert_eq!(dump(&world), before, "every row is back as it was");

    // And everything works in the recovered rooms.
    let bot = world.start_bot(world.settings(|_| {})).await;
    let listed = anna.ask(&dm, "!chats").await.expect("chats");
    assert!(
        listed.contains("Holidays") && listed.contains("Old stuff") && listed.contains("Chat 1"),
        "{listed}"
    );
    assert!(anna
        .ask(&c2, "!rename Summer")
        .await
        .expect("rename")
        .contains("Summer"));
    assert_eq!(
        anna.ask(&c1, "still me").await.expect("answer"),
        "[C1] echo: still me"
    );
    assert!(anna.ask(&dm, "!new").await.expect("new").contains("C4"));
    assert_eq!(
        world.synapse.room_count().await.expect("rooms"),
        rooms_before + 1,
        "only the new C4"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_cache_and_sdk_store_means_a_new_device_and_the_same_chats() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let (dm, c1, _c2, _c3) = anna_with_history(&world, &anna).await;
    bot.stop().await;
    let before = dump(&world);

    let bot = restart_after(
        &world,
        world.start_bot(world.settings(|_| {})).await,
        || {
            world.lose_cache();
            world.lose_store();
        },
    )
    .await;
    assert_eq!(
        world.proxy.matching("POST", "/login").len(),
        1,
        "a fresh login"
    );
    assert_eq!(server_writes(&world), Vec::<String>::new());
    assert!(anna
        .ask(&dm, "!chats")
        .await
        .expect("chats")
        .contains("Holidays"));
    assert_eq!(
        anna.ask(&c1, "new device?").await.expect("answer"),
        "[C1] echo: new device?"
    );
    bot.stop().await;
    assert_eq!(dump(&world), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_never_reused_when_the_newest_room_is_lost() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let (dm, _c1, _c2, c3) = anna_with_history(&world, &anna).await;
    bot.stop().await;

    // The bot loses C3 (it is no longer in the room), and its cache.
    let other_device = Person::login(&world.synapse.url(), &world.bot_account)
        .await
        .expect("bot login");
    other_device
        .room(&c3)
        .expect("c3")
        .leave()
        .await
        .expect("leave");
    world.lose_cache();

    let bot = world.start_bot(world.settings(|_| {})).await;
    let created = anna.ask(&dm, "!new").await.expect("new");
    assert!(
        created.contains("C4"),
        "C3 was issued once and is never reused: {created}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_row_is_repaired_when_its_room_speaks() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let (_dm, c1, _c2, _c3) = anna_with_history(&world, &anna).await;

    let cache =
        SqliteStore::open(world.dir.path().join("lambda_matrix.db")).expect("second connection");
    cache
        .apply(&[
            Change::DeleteChat {
                owner: "@anna:localhost".into(),
                id: ChatId::FIRST,
            },
            Change::DeleteRoom(c1.clone()),
        ])
        .expect("lose C1's rows while the bot runs");
    assert_eq!(
        anna.ask(&c1, "hello?").await.expect("answer"),
        "[C1] echo: hello?"
    );
    assert!(
        cache
            .chat("@anna:localhost", ChatId::FIRST)
            .expect("read")
            .is_some(),
        "the row is back"
    );
    bot.stop().await;
}

/// The cache damaged while the bot runs (tables gone, as a tool or a bad disk can leave it):
/// messages are still answered, from the rooms' records on the homeserver, and the next start
/// moves the damaged file aside and rebuilds it; messages behind a timeline gap are read back
/// without it. Nothing is answered twice. (Before, every message was dropped with "cannot read
/// the cache", and the next start stopped on the file.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_damaged_while_running_still_answers_and_is_rebuilt_at_the_next_start() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let (dm, c1, c2, _c3) = anna_with_history(&world, &anna).await;
    rusqlite::Connection::open(world.dir.path().join("lambda_matrix.db"))
        .expect("second connection")
        .execute_batch("DROP TABLE chat; DROP TABLE matrix_room;")
        .expect("damage the cache while the bot runs");
    let message = anna.send(&c2, "still there?").await.expect("send");
    let replies = anna
        .replies_to(&c2, &message)
        .await
        .expect("answered with the cache damaged");
    assert_eq!(replies[0].body, "[C2] echo: still there?");
    // More messages than one sync response carries, sent while the bot's sync fails: the
    // first ones are behind a gap, which the bot reads back without its cache.
    let sync = "/v3/sync";
    world.proxy.inject(Fault::new("GET", sync, 503));
    world.proxy.until_status(sync, 503).await;
    let mut burst = Vec::new();
    for i in 0..12 {
        burst.push(anna.send(&c2, &format!("gap {i}")).await.expect("send"));
    }
    world.proxy.heal();
    for (i, event) in burst.iter().enumerate() {
        let replies = anna.replies_to(&c2, event).await.expect("answered");
        assert_eq!(replies[0].body, format!("[C2] echo: gap {i}"));
    }

    let bot = restart_after(&world, bot, || {}).await;
    assert_eq!(
        anna.ask(&c1, "and now?").await.expect("answer"),
        "[C1] echo: and now?"
    );
    let chats = anna.ask(&dm, "!chats").await.expect("chats");
    assert!(chats.contains("Holidays"), "{chats}");
    assert_eq!(dump(&world).chats.len(), 3, "the cache is rebuilt");
    let moved = std::fs::read_dir(world.dir.path())
        .expect("dir")
        .filter_map(|entry| entry.ok())
        .any(|entry| entry.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(moved, "the damaged file is kept aside");
    for event in std::iter::once(&message).chain(&burst) {
        let answers = anna.reply_count(&c2, event).await.expect("messages");
        assert_eq!(answers, 1, "answered once");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_dry_run_json_reports_and_changes_nothing() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    anna_with_history(&world, &anna).await;
    bot.stop().await;
    let db = world.dir.path().join("lambda_matrix.db");
    world.lose_cache();
    world.lose_store();
    let devices_before = world
        .synapse
        .devices(&world.bot_account.user_id)
        .await
        .expect("devices");
    world.proxy.clear();

    let out = world
        .binary()
        .args(["reconcile", "--dry-run", "--json"])
        .current_dir(world.dir.path())
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["restored_user_meta"], 1);
    assert_eq!(
        report["restored_room_meta"], 5,
        "space, direct chat, three chat rooms"
    );
    assert_eq!(report["restored_chat_rows"], 3);
    assert_eq!(report["repaired"], 0);
    assert_eq!(report["joined_rooms"], 5);
    assert!(!db.exists(), "a dry run writes no cache");
    assert_eq!(server_writes(&world), Vec::<String>::new());
    assert_eq!(
        world.proxy.matching("POST", "/logout").len(),
        1,
        "the one-shot logged out"
    );
    assert_eq!(
        world
            .synapse
            .devices(&world.bot_account.user_id)
            .await
            .expect("devices"),
        devices_before,
        "no stray device"
    );
}

/// `!invite` after a start that lost everything: the snapshot stores no one's membership but the
/// bot's, so the command asks the homeserver who is in. Anna, still in her Space, is told so and
/// not invited again; C1, which she left while the bot was down, invites her back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_after_losing_everything_knows_who_is_in() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let rooms = world.first_contact(&anna, false).await;
    bot.stop().await;
    anna.room(&rooms.c1)
        .expect("C1")
        .leave()
        .await
        .expect("anna leaves C1");

    world.lose_cache();
    world.lose_store();
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        anna.ask(&rooms.dm, "!invite").await.expect("reply"),
        "You are already in that room."
    );
    assert!(world.proxy.matching("POST", "/invite").is_empty());
    let invited = anna.ask(&rooms.dm, "!invite C1").await.expect("reply");
    assert!(invited.starts_with("Invited you to C1"), "{invited}");
    assert_eq!(world.proxy.matching("POST", "/invite").len(), 1);
    assert_eq!(
        anna.accept_invites(1).await.expect("invited to C1")[0].as_str(),
        rooms.c1
    );
    assert_eq!(
        anna.ask(&rooms.c1, "back").await.expect("answer"),
        "[C1] echo: back"
    );
    bot.stop().await;
}

/// An edit the bot handled (its original's answer used the edited text) stays handled by a
/// new device that cannot read it (store and recovery key file lost, so no room keys from the
/// backup): its relation is in the clear. The chaos soak found it after a login again (keys
/// not yet in the backup): each such edit got a second answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_already_answered_is_not_answered_again_by_a_new_device() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    bot.stop().await;
    // While the bot is down: a message and its edit; the one answer uses the edited text.
    let message = anna.send(&c1, "first words").await.expect("send");
    let edit = anna
        .edit(&c1, &message, "second words")
        .await
        .expect("edit");
    let bot = world.start_bot(world.settings(|_| {})).await;
    let answer = anna.replies_to(&c1, &message).await.expect("answered");
    assert_eq!(answer[0].body, "[C1] echo: second words");
    bot.stop().await;

    // A message while the bot is down makes the start read C1 back, edit included.
    let away = anna.send(&c1, "while away").await.expect("send");
    world.lose_store();
    std::fs::remove_file(world.dir.path().join("lambda_matrix.db.recovery-key"))
        .expect("remove the recovery key file");
    let bot = world.start_bot(world.settings(|_| {})).await;
    // Anna's client learns of the new device (her syncs while she waits for this answer)...
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    // ...and catch-up's work in C1 is queued before anything said after the start.
    assert_eq!(
        anna.ask(&c1, "later").await.expect("answer"),
        "[C1] echo: later"
    );
    let to_edit = anna.reply_count(&c1, &edit).await.expect("count");
    let to_message = anna.reply_count(&c1, &message).await.expect("count");
    // (Unreadable to the new device: asked to resend, as it should be.)
    let to_away = anna.reply_count(&c1, &away).await.expect("count");
    bot.stop().await;
    assert_eq!(
        (to_message, to_edit, to_away),
        (1, 0, 1),
        "the edit was answered once"
    );
}
