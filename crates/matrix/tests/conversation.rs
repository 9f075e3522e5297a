//! Conversation features against a real Synapse with a real client as the person: edits and
//! redactions before and after the answer, `!cancel` and the typing notice of a long answer,
//! `!delete` and `!forget-me` (confirmed, and never brought back by a restart).

mod common;

use common::{bot_typing, World};
use lambda_matrix_core::{SqliteStore, Store};
use lambda_matrix_platform::{MockConfig, MockPlatform};
use lambda_matrix_testkit::Person;
use matrix_sdk::ruma::OwnedEventId;
use std::sync::Arc;
use std::time::Duration;

/// Replies in `room` to `event` once everything queued before now in the room is done: a probe
/// goes through the room's ordered queue and its answer is waited for first.
async fn settled_replies(
    person: &Person,
    room: &str,
    event: &OwnedEventId,
) -> Vec<lambda_matrix_testkit::person::Message> {
    person
        .ask(room, "probe")
        .await
        .expect("the probe is answered");
    person
        .history(room, 3)
        .await
        .expect("history")
        .into_iter()
        .filter(|m| m.in_reply_to.as_deref() == Some(event.as_str()))
        .collect()
}

/// The bot's membership in `room` as the person sees it.
async fn bot_membership(person: &Person, room: &str, bot: &str) -> Option<String> {
    person.sync().await.expect("sync");
    person
        .state(room, "m.room.member", bot)
        .await
        .expect("state")
        .and_then(|m| m["content"]["membership"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_redactions_before_and_after_the_answer() {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.mock_slow_match = Some("slow".into());
        raw.mock_slow_delay = Some("3s".into());
    });
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;

    // Edited while the bot works on it: answered once, in the edited form; the edit itself
    // gets no answer of its own.
    let typo = anna.send(&p.c1, "slow helo").await.expect("send");
    bot_typing(&anna, &p.c1, &world.bot_account.user_id).await;
    let fix = anna.edit(&p.c1, &typo, "slow hello").await.expect("edit");
    let replies = anna.replies_to(&p.c1, &typo).await.expect("answer");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].body, "[C1] echo: slow hello");

    // Removed while the bot works on it: never answered (the next message is, in order).
    let doomed = anna.send(&p.c1, "slow doomed").await.expect("send");
    bot_typing(&anna, &p.c1, &world.bot_account.user_id).await;
    anna.redact(&p.c1, &doomed).await.expect("redact");
    assert_eq!(
        anna.ask(&p.c1, "after").await.expect("answer"),
        "[C1] echo: after"
    );
    assert!(settled_replies(&anna, &p.c1, &doomed).await.is_empty());
    assert!(
        settled_replies(&anna, &p.c1, &fix).await.is_empty(),
        "an edit made before the answer gets no second answer"
    );

    // Edited after its answer: a fresh answer, marked, as a reply to the edit.
    let hello = anna.send(&p.c1, "hi").await.expect("send");
    anna.replies_to(&p.c1, &hello).await.expect("answer");
    let again = anna.edit(&p.c1, &hello, "hi there").await.expect("edit");
    let fresh = anna.replies_to(&p.c1, &again).await.expect("fresh answer");
    assert_eq!(fresh.len(), 1);
    assert!(
        fresh[0].body.contains("edited message") && fresh[0].body.ends_with("[C1] echo: hi there"),
        "{}",
        fresh[0].body
    );

    // While the bot is away: a message and its edit are answered once, in the edited form;
    // nothing answered before is answered again.
    bot.stop().await;
    let away = anna.send(&p.c1, "while away").await.expect("send");
    let away_fix = anna
        .edit(&p.c1, &away, "while away, edited")
        .await
        .expect("edit");
    let bot = world.start_bot(settings).await;
    let replies = anna.replies_to(&p.c1, &away).await.expect("caught up");
    assert_eq!(replies[0].body, "[C1] echo: while away, edited");
    assert_eq!(settled_replies(&anna, &p.c1, &away).await.len(), 1);
    for (event, expected) in [
        (&away_fix, 0),
        (&typo, 1),
        (&fix, 0),
        (&hello, 1),
        (&again, 1),
    ] {
        assert_eq!(
            settled_replies(&anna, &p.c1, event).await.len(),
            expected,
            "replies to {event} after the restart"
        );
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_answer_keeps_typing_and_cancel_stops_it() {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.mock_slow_match = Some("think".into());
        raw.mock_slow_delay = Some("45s".into());
        // Notices of 3 s: the renewals are seen in seconds, not half a minute.
        raw.typing_notice = Some("3s".into());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    let bot_id = world.bot_account.user_id.clone();

    let nothing = anna.ask(&p.c1, "!cancel").await.expect("reply");
    assert!(nothing.contains("Nothing to cancel"), "{nothing}");

    let question = anna.send(&p.c1, "think hard").await.expect("send");
    // Well past two notices' life the person still sees the bot typing: it was renewed.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        anna.typing(&p.c1).await.expect("typing"),
        vec![bot_id.clone()]
    );

    let cancel = anna.send(&p.c1, "!cancel").await.expect("send");
    let stopped = anna.replies_to(&p.c1, &question).await.expect("told");
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0].body.contains("cancelled"), "{}", stopped[0].body);
    assert_eq!(stopped[0].msgtype, "m.notice");
    let done = anna.replies_to(&p.c1, &cancel).await.expect("outcome");
    assert!(done[0].body.contains("Cancelled 1"), "{}", done[0].body);
    anna.until("the typing notice to clear", || async {
        anna.typing(&p.c1).await.ok()?.is_empty().then_some(())
    })
    .await
    .expect("typing cleared");

    // The chat goes on, and the cancelled question is not answered later.
    assert_eq!(
        anna.ask(&p.c1, "next").await.expect("answer"),
        "[C1] echo: next"
    );
    assert_eq!(settled_replies(&anna, &p.c1, &question).await.len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_asks_first_then_removes_the_chat_for_good() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bot_id = world.bot_account.user_id.clone();
    let p = world.first_contact(&anna, false).await;
    assert!(anna
        .ask(&p.dm, "!new Work")
        .await
        .expect("created")
        .contains("C2"));
    let c2 = anna.accept_invites(1).await.expect("invited")[0].to_string();

    let asked = anna.ask(&p.dm, "!delete C2").await.expect("asked");
    assert!(asked.contains("!delete C2 confirm"), "{asked}");
    assert!(anna
        .ask(&p.dm, "!chats")
        .await
        .expect("list")
        .contains("C2"));

    // Confirmed in the chat itself: told there, then the bot leaves.
    let done = anna.ask(&c2, "!delete confirm").await.expect("deleted");
    assert!(done.contains("Deleted C2"), "{done}");
    anna.until("the bot to leave C2", || async {
        (bot_membership(&anna, &c2, &bot_id).await.as_deref() == Some("leave")).then_some(())
    })
    .await
    .expect("left");
    let link = anna
        .state(&p.space, "m.space.child", &c2)
        .await
        .expect("state")
        .expect("link event");
    assert_eq!(link["content"], serde_json::json!({}), "unlinked");
    let chats = anna.ask(&p.dm, "!chats").await.expect("list");
    assert!(chats.contains("C1") && !chats.contains("C2"), "{chats}");

    // A restart with the cache lost does not bring it back, and its id is not reused.
    bot.stop().await;
    world.lose_cache();
    let bot = world.start_bot(world.settings(|_| {})).await;
    let chats = anna.ask(&p.dm, "!chats").await.expect("list");
    assert!(!chats.contains("C2"), "{chats}");
    assert!(anna.ask(&p.dm, "!new").await.expect("new").contains("C3"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_me_erases_the_person_everywhere() {
    let world = World::new().await;
    let mock = Arc::new(MockPlatform::new(MockConfig::default()));
    let bot = world
        .start_bot_with(world.settings(|_| {}), mock.clone())
        .await;
    let anna = world.person("anna").await;
    let bob = world.person("bob").await;
    let bot_id = world.bot_account.user_id.clone();
    let p = world.first_contact(&anna, false).await;
    let pb = world.first_contact(&bob, false).await;
    anna.ask(&p.c1, "remember me").await.expect("answer");
    bob.ask(&pb.c1, "me too").await.expect("answer");
    assert!(mock.knows(anna.user_id().as_str()));

    let asked = anna.ask(&p.dm, "!forget-me").await.expect("asked");
    assert!(asked.contains("!forget-me confirm"), "{asked}");
    let done = anna
        .ask(&p.dm, "!forget-me confirm")
        .await
        .expect("forgotten");
    assert!(done.contains("erased"), "{done}");
    for room in [&p.dm, &p.c1, &p.space] {
        anna.until("the bot to leave", || async {
            (bot_membership(&anna, room, &bot_id).await.as_deref() == Some("leave")).then_some(())
        })
        .await
        .expect("left");
    }
    assert!(!mock.knows(anna.user_id().as_str()), "platform data erased");
    assert!(mock.knows(bob.user_id().as_str()), "others untouched");
    assert_eq!(
        bob.ask(&pb.c1, "still here").await.expect("answer"),
        "[C1] echo: still here"
    );

    // Nothing about anna is left in the cache, and a restart that rebuilds it from the
    // homeserver does not bring her back.
    bot.stop().await;
    let cache_has_anna = |world: &World| {
        let cache =
            SqliteStore::open(world.dir.path().join("lambda_matrix.db")).expect("open cache");
        let dump = cache.dump().expect("dump");
        let anna_id = anna.user_id().to_string();
        dump.users.iter().any(|u| u.user_id == anna_id)
            || dump.rooms.iter().any(|r| r.owner == anna_id)
            || dump.chats.iter().any(|c| c.owner == anna_id)
    };
    assert!(!cache_has_anna(&world));
    world.lose_cache();
    let bot = world.start_bot(world.settings(|_| {})).await;
    bob.ask(&pb.c1, "after restart").await.expect("answer");
    bot.stop().await;
    assert!(!cache_has_anna(&world));

    // Writing to the bot again starts from scratch: a new Space and a new C1.
    let bot = world.start_bot(world.settings(|_| {})).await;
    let again = world.first_contact(&anna, false).await;
    assert_ne!(again.space, p.space);
    assert_eq!(
        anna.ask(&again.c1, "hello again").await.expect("answer"),
        "[C1] echo: hello again"
    );
    bot.stop().await;
}

/// Waits until the person sees the bot's membership in `room` become `leave`.
async fn until_bot_left(person: &Person, room: &str, bot: &str) {
    person
        .until(&format!("the bot to leave {room}"), || async {
            (bot_membership(person, room, bot).await.as_deref() == Some("leave")).then_some(())
        })
        .await
        .expect("left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_chat_leaves_a_space_no_restart_refills() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bot_id = world.bot_account.user_id.clone();
    let p = world.first_contact(&anna, false).await;
    assert!(anna
        .ask(&p.dm, "!new Work")
        .await
        .expect("created")
        .contains("C2"));
    let c2 = anna.accept_invites(1).await.expect("invited")[0].to_string();
    for (id, room) in [("C1", &p.c1), ("C2", &c2)] {
        let done = anna
            .ask(&p.dm, &format!("!delete {id} confirm"))
            .await
            .expect("deleted");
        assert!(done.contains(&format!("Deleted {id}")), "{done}");
        until_bot_left(&anna, room, &bot_id).await;
    }
    bot.stop().await;
    let rooms = world.synapse.room_count().await.expect("count");

    // Restarts, with the cache kept and then lost: no room is made, no one is invited, and
    // the person still has no chat.
    for lose_cache in [false, true] {
        if lose_cache {
            world.lose_cache();
        }
        world.proxy.clear();
        let bot = world.start_bot(world.settings(|_| {})).await;
        let chats = anna.ask(&p.dm, "!chats").await.expect("list");
        assert!(
            chats.contains("no chats"),
            "cache lost {lose_cache}: {chats}"
        );
        bot.stop().await;
        assert_eq!(
            world.synapse.room_count().await.expect("count"),
            rooms,
            "no room made at start (cache lost {lose_cache})"
        );
        assert!(
            world.proxy.matching("POST", "/createRoom").is_empty(),
            "cache lost {lose_cache}"
        );
        anna.sync().await.expect("sync");
        assert!(
            anna.client.invited_rooms().is_empty(),
            "no invite (cache lost {lose_cache})"
        );
    }

    // A later chat gets an id never used before.
    let bot = world.start_bot(world.settings(|_| {})).await;
    let created = anna.ask(&p.dm, "!new").await.expect("new");
    assert!(created.contains("C3"), "{created}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_me_leaves_every_direct_chat() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bot_id = world.bot_account.user_id.clone();
    let p = world.first_contact(&anna, false).await;
    // A second direct chat, once the first is set up: the bot joins and greets again.
    let dm2 = anna
        .create_dm(&bot_id, false)
        .await
        .expect("second dm")
        .to_string();
    let greeted = anna
        .until("the greeting in the second direct chat", || async {
            let messages = anna.messages(&dm2).await.ok()?;
            messages
                .into_iter()
                .find(|m| m.sender == bot_id)
                .map(|m| m.body)
        })
        .await
        .expect("greeted");
    assert!(greeted.contains("Hello again"), "{greeted}");

    let asked = anna.ask(&dm2, "!forget-me").await.expect("asked");
    assert!(asked.contains("!forget-me confirm"), "{asked}");
    let done = anna
        .ask(&dm2, "!forget-me confirm")
        .await
        .expect("forgotten");
    assert!(done.contains("erased"), "{done}");
    for room in [&p.dm, &dm2, &p.c1, &p.space] {
        until_bot_left(&anna, room, &bot_id).await;
    }
    bot.stop().await;
    assert!(!cache_has(&world, &anna), "no rows left");

    // A restart with the cache lost rebuilds nothing of her and joins nothing.
    world.lose_cache();
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    bot.stop().await;
    assert!(!cache_has(&world, &anna), "nothing rebuilt");
    assert!(world.proxy.matching("POST", "/join").is_empty());
    assert!(world.proxy.matching("POST", "/createRoom").is_empty());
}

/// Whether the bot's cache holds any row of `person`.
fn cache_has(world: &World, person: &Person) -> bool {
    let cache = SqliteStore::open(world.dir.path().join("lambda_matrix.db")).expect("open cache");
    let dump = cache.dump().expect("dump");
    let id = person.user_id().to_string();
    dump.users.iter().any(|u| u.user_id == id)
        || dump.rooms.iter().any(|r| r.owner == id)
        || dump.chats.iter().any(|c| c.owner == id)
}
