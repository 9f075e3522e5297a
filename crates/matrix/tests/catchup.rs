//! Exactly once across downtime: what people sent while the bot was stopped is answered once,
//! in order, within MATRIX_CATCHUP_MAX_AGE, even after losing the cache; a replayed `!new`
//! whose room already exists makes no second room.

mod common;

use common::World;
use lambda_matrix::markers::{CHAT_MARKER, SPACE_MARKER};
use lambda_matrix_testkit::Person;
use matrix_sdk::ruma::api::client::room::create_room::v3::{
    Request as CreateRoomRequest, RoomPreset,
};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::OwnedEventId;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// How many replies from the bot each event in `room` has.
async fn reply_counts(anna: &Person, room: &str, bot: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in anna.messages(room).await.expect("messages") {
        if message.sender == bot {
            if let Some(target) = message.in_reply_to {
                *counts.entry(target).or_default() += 1;
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_down_are_answered_once_in_order() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    assert_eq!(
        anna.ask(&c1, "warm up").await.expect("answer"),
        "[C1] echo: warm up"
    );
    bot.stop().await;

    // 25 messages (more than one sync timeline holds) and a command, while the bot is down.
    let mut sent: Vec<OwnedEventId> = Vec::new();
    for i in 0..25 {
        sent.push(anna.send(&c1, &format!("m{i:02}")).await.expect("send"));
    }
    let new_cmd = anna.send(&dm, "!new Downtime").await.expect("send");
    let rooms_before = world.synapse.room_count().await.expect("count");

    let bot = world.start_bot(world.settings(|_| {})).await;
    anna.replies_to(&c1, &sent[24])
        .await
        .expect("the last one is answered");
    let created = anna
        .replies_to(&dm, &new_cmd)
        .await
        .expect("the command is answered");
    assert!(created[0].body.contains("C2"), "{}", created[0].body);
    let answers: Vec<String> = anna
        .messages(&c1)
        .await
        .expect("messages")
        .into_iter()
        .filter(|m| {
            sent.iter()
                .any(|s| m.in_reply_to.as_deref() == Some(s.as_str()))
        })
        .map(|m| m.body)
        .collect();
    assert_eq!(
        answers,
        (0..25)
            .map(|i| format!("[C1] echo: m{i:02}"))
            .collect::<Vec<_>>(),
        "each once, in order"
    );
    bot.stop().await;

    // Restart again, this time with the cache lost: nothing is answered twice.
    world.lose_cache();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("answer"),
        "[C1] echo: probe"
    );
    let counts = reply_counts(&anna, &c1, &world.bot_account.user_id).await;
    for event in &sent {
        assert_eq!(
            counts.get(event.as_str()),
            Some(&1),
            "{event} answered exactly once"
        );
    }
    assert_eq!(
        reply_counts(&anna, &dm, &world.bot_account.user_id)
            .await
            .get(new_cmd.as_str()),
        Some(&1)
    );
    assert_eq!(
        world.synapse.room_count().await.expect("count"),
        rooms_before + 1,
        "one room for the one !new"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_messages_younger_than_the_catch_up_age_are_answered() {
    let world = World::new().await;
    let settings = || world.settings(|raw| raw.catchup_max_age = Some("4s".into()));
    let bot = world.start_bot(settings()).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    bot.stop().await;

    let old = anna.send(&c1, "too old").await.expect("send");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let fresh = anna.send(&c1, "just in time").await.expect("send");
    let bot = world.start_bot(settings()).await;
    assert_eq!(
        anna.replies_to(&c1, &fresh).await.expect("fresh")[0].body,
        "[C1] echo: just in time"
    );
    // The queue is ordered: once a later message is answered, catch-up is done.
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("answer"),
        "[C1] echo: probe"
    );
    let counts = reply_counts(&anna, &c1, &world.bot_account.user_id).await;
    assert_eq!(
        counts.get(old.as_str()),
        None,
        "older than MATRIX_CATCHUP_MAX_AGE: not answered"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_whose_room_exists_but_was_never_answered_makes_no_second_room() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, space, .. } = world.first_contact(&anna, false).await;
    bot.stop().await;

    // Anna's `!new` arrives; the bot raised last_chat_index and created the room, then crashed
    // before writing its cache row, linking it, or replying (made here as the bot, by hand).
    let command = anna.send(&dm, "!new Crashed").await.expect("send");
    let as_bot = Person::login(&world.synapse.url(), &world.bot_account)
        .await
        .expect("bot device");
    as_bot.sync().await.expect("sync");
    as_bot
        .room(&space)
        .expect("space")
        .send_state_event_raw(
            SPACE_MARKER,
            "",
            json!({"owner": "@anna:localhost", "last_chat_index": 2, "version": 1}),
        )
        .await
        .expect("raise last_chat_index");
    let mut request = CreateRoomRequest::new();
    request.preset = Some(RoomPreset::PrivateChat);
    request.name = Some("Crashed".into());
    request.invite = vec![anna.user_id()];
    let state = [
        json!({"type": CHAT_MARKER, "state_key": "", "content": {"owner": "@anna:localhost", "chat_id": "C2", "status": "active", "cause": command.as_str(), "version": 1}}),
        json!({"type": "m.space.parent", "state_key": space, "content": {"via": ["localhost"], "canonical": true}}),
    ];
    request.initial_state = state
        .iter()
        .map(|s| Raw::from_json_string(s.to_string()).expect("json"))
        .collect();
    let crashed = as_bot
        .client
        .create_room(request)
        .await
        .expect("room")
        .room_id()
        .to_string();
    as_bot.client.matrix_auth().logout().await.expect("logout");
    let rooms_before = world.synapse.room_count().await.expect("count");

    let bot = world.start_bot(world.settings(|_| {})).await;
    let reply = anna
        .replies_to(&dm, &command)
        .await
        .expect("the replayed command is answered");
    assert!(
        reply[0].body.contains("C2") && reply[0].body.contains("Crashed"),
        "{}",
        reply[0].body
    );
    assert_eq!(
        world.synapse.room_count().await.expect("count"),
        rooms_before,
        "no second room"
    );
    anna.sync().await.expect("sync");
    assert!(
        anna.state_keys(&space, "m.space.child")
            .await
            .expect("children")
            .contains(&crashed),
        "resume linked it"
    );
    assert!(anna.ask(&dm, "!new").await.expect("new").contains("C3"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_losing_cache_and_store_encrypted_history_is_handled_once() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    let before = anna.send(&c1, "before").await.expect("send");
    anna.replies_to(&c1, &before).await.expect("answered");
    bot.stop().await;

    // Sent while the bot is down, encrypted for its old device only; then everything local is
    // lost, the recovery key file too (with it, the new device would recover the room keys).
    let during = anna.send(&c1, "during").await.expect("send");
    world.lose_cache();
    world.lose_store();
    std::fs::remove_file(world.dir.path().join("lambda_matrix.db.recovery-key"))
        .expect("remove the recovery key file");

    let bot = world.start_bot(world.settings(|_| {})).await;
    // The new device cannot read "during": it asks to resend, once, instead of staying silent.
    let asked = anna
        .replies_to(&c1, &during)
        .await
        .expect("a reply to the unreadable message");
    assert_eq!(asked.len(), 1);
    assert!(asked[0].body.contains("send it again"), "{}", asked[0].body);
    // The notice answers that event's own text: an edit of it sent before does not count as
    // answered by it (catch-up gives such an edit its own reply).
    assert_eq!(asked[0].text_of.as_deref(), Some(during.as_str()));
    // The old answer was recognised from its relation (unreadable to the new device): not redone.
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    assert_eq!(
        anna.ask(&c1, "again").await.expect("answer"),
        "[C1] echo: again"
    );
    let counts = reply_counts(&anna, &c1, &world.bot_account.user_id).await;
    assert_eq!(
        counts.get(before.as_str()),
        Some(&1),
        "answered once, before the loss"
    );
    assert_eq!(counts.get(during.as_str()), Some(&1));
    bot.stop().await;
}

/// Asserts that `room` was read back and no other room's history was read, but for `joined`
/// (rooms the bot joined or made meanwhile: a first timeline can have a gap, read back like
/// any gap).
fn only_read_back(world: &World, room: &str, joined: &[&str]) {
    let encoded = |room: &str| room.replace('!', "%21").replace(':', "%3A");
    let of = |path: &str, room: &str| path.contains(&encoded(room)) || path.contains(room);
    let reads: Vec<String> = world
        .proxy
        .matching("GET", "/messages")
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(reads.iter().any(|p| of(p, room)), "{room} was read back");
    let others: Vec<&String> = reads
        .iter()
        .filter(|p| !of(p, room) && joined.iter().all(|joined| !of(p, joined)))
        .collect();
    assert!(
        others.is_empty(),
        "no other room's history was read at start: {others:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_back_only_the_rooms_with_news() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bob = world.person("bob").await;
    let anna_rooms = world.first_contact(&anna, false).await;
    let bob_rooms = world.first_contact(&bob, false).await;
    for (person, c1) in [(&anna, &anna_rooms.c1), (&bob, &bob_rooms.c1)] {
        assert_eq!(person.ask(c1, "hi").await.expect("answer"), "[C1] echo: hi");
    }
    bot.stop().await;

    // Only anna writes while the bot is away.
    let away = anna.send(&anna_rooms.c1, "while away").await.expect("send");
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    let replies = anna
        .replies_to(&anna_rooms.c1, &away)
        .await
        .expect("answered after the restart");
    assert_eq!(replies[0].body, "[C1] echo: while away");
    only_read_back(&world, &anna_rooms.c1, &[]);
    assert_eq!(
        bob.ask(&bob_rooms.c1, "still there?")
            .await
            .expect("answer"),
        "[C1] echo: still there?"
    );
    bot.stop().await;

    // Cache lost, SDK store kept: the saved sync position resumes, nothing is read back, the cache
    // comes back from the store, and everyone is answered.
    world.lose_cache();
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        anna.ask(&anna_rooms.c1, "and now?").await.expect("answer"),
        "[C1] echo: and now?"
    );
    assert_eq!(
        world.proxy.matching("GET", "/messages").len(),
        0,
        "quiet rooms cost no history read"
    );
    let syncs = world.proxy.syncs();
    let first_sync = syncs.first().expect("a sync");
    assert!(
        first_sync.path.ends_with("/v3/sync") && first_sync.query.contains("since="),
        "the first sync continued from the saved position: {first_sync:?}"
    );
    assert!(
        syncs.iter().all(|r| !r.path.contains("msc3575")),
        "no snapshot of every room after a restart with the SDK store"
    );
    assert_eq!(
        reply_counts(&anna, &anna_rooms.c1, &world.bot_account.user_id)
            .await
            .get(away.as_str()),
        Some(&1),
        "answered once"
    );
    bot.stop().await;

    // Everything lost: one snapshot of every room (the latest events only of the rooms that
    // are not Spaces); again only the room with news is read back, its message answered once,
    // and cleo's invite, sent while the bot was away, is taken up (the snapshot's invite list).
    let lost = anna.send(&anna_rooms.c1, "all lost").await.expect("send");
    let cleo = world.person("cleo").await;
    let cleo_dm = cleo
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("cleo's direct chat")
        .to_string();
    world.lose_cache();
    world.lose_store();
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    let replies = anna
        .replies_to(&anna_rooms.c1, &lost)
        .await
        .expect("answered after losing everything");
    assert_eq!(replies[0].body, "[C1] echo: all lost");
    let snapshots = world.proxy.matching("POST", "msc3575");
    assert_eq!(snapshots.len(), 1, "one snapshot: {snapshots:?}");
    // Cleo's Space and C1, made by this start (the first timeline of a room just made can be
    // cut short: then it is read back like any gap; that was the flake of this test).
    let cleos = cleo
        .accept_invites(2)
        .await
        .expect("cleo gets a Space and C1 from the invite sent while the bot was away");
    let mut made: Vec<&str> = cleos.iter().map(|id| id.as_str()).collect();
    made.push(&cleo_dm);
    only_read_back(&world, &anna_rooms.c1, &made);
    assert_eq!(
        bob.ask(&bob_rooms.c1, "and now?").await.expect("answer"),
        "[C1] echo: and now?"
    );
    let counts = reply_counts(&anna, &anna_rooms.c1, &world.bot_account.user_id).await;
    assert_eq!(counts.get(away.as_str()), Some(&1), "still answered once");
    assert_eq!(counts.get(lost.as_str()), Some(&1), "answered once");
    bot.stop().await;
}

/// A live gap: while the bot's syncs fail, Anna sends a message, nine reactions, an edit of the
/// message and a second message, so the response after the outage carries the edit and the
/// second message but not the first one (a timeline holds at most ten events). The message
/// behind the gap is answered once, in its edited form, before the message that followed it;
/// the edit gets no answer of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_behind_a_live_gap_is_answered_once_and_before_what_followed_it() {
    let world = World::new().await;
    let settings = world.settings(|raw| raw.encrypt_rooms = Some("false".into()));
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    let bot_id = world.bot_account.user_id.clone();
    let warm = anna.send(&c1, "warm").await.expect("send");
    anna.replies_to(&c1, &warm).await.expect("answered");

    // The bot's next syncs fail; the long-poll in flight returns with the next event.
    world
        .proxy
        .inject(lambda_matrix_testkit::Fault::new("GET", "/sync", 502));
    anna.react(&c1, &warm, "👀").await.expect("react");
    world.proxy.until_status("/sync", 502).await;
    let first = anna.send(&c1, "first").await.expect("send");
    for key in ["1", "2", "3", "4", "5", "6", "7", "8", "9"] {
        anna.react(&c1, &first, key).await.expect("react");
    }
    let edit = anna.edit(&c1, &first, "first, edited").await.expect("edit");
    let second = anna.send(&c1, "second").await.expect("send");
    world.proxy.heal();

    let replies = anna.replies_to(&c1, &first).await.expect("answered");
    assert_eq!(replies[0].body, "[C1] echo: first, edited");
    anna.replies_to(&c1, &second).await.expect("answered");
    // Anything still to come has come once a later question is answered.
    anna.ask(&c1, "probe").await.expect("the probe is answered");
    let messages = anna.history(&c1, 3).await.expect("history");
    let answers: Vec<&str> = messages
        .iter()
        .filter(|m| m.sender == bot_id)
        .filter_map(|m| m.in_reply_to.as_deref())
        .filter(|to| [first.as_str(), edit.as_str(), second.as_str()].contains(to))
        .collect();
    assert_eq!(
        answers,
        vec![first.as_str(), second.as_str()],
        "the first message once, in its edited form, then the second; the edit not on its own"
    );
    bot.stop().await;
}
