//! The bot's everyday job against a real Synapse, with a second real client as the person:
//! first contact, commands, answers, the room template.

mod common;

use common::World;
use lambda_matrix::markers::{CHAT_MARKER, SPACE_MARKER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_contact_commands_and_answers() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let bot_id = world.bot_account.user_id.clone();

    // First contact: a direct chat with the bot gives a Space and C1, both invited.
    let dm = anna
        .create_dm(&bot_id, false)
        .await
        .expect("create dm")
        .to_string();
    let invited = anna
        .accept_invites(2)
        .await
        .expect("invited to space and C1");
    let mut space = None;
    let mut c1 = None;
    for room_id in &invited {
        let room = anna.room(room_id.as_str()).expect("room");
        if room.is_space() {
            space = Some(room_id.to_string())
        } else {
            c1 = Some(room_id.to_string())
        }
    }
    let (space, c1) = (space.expect("a space"), c1.expect("a chat room"));

    // The marker counts C1 once C1 exists (it is raised right after the room is made).
    let space_marker = anna
        .until("the space marker to count C1", || async {
            let marker = anna.state(&space, SPACE_MARKER, "").await.ok()??;
            (marker["content"]["last_chat_index"] == 1).then_some(marker)
        })
        .await
        .expect("space marker");
    assert_eq!(space_marker["sender"], bot_id.as_str());
    assert_eq!(space_marker["content"]["owner"], "@anna:localhost");
    let chat_marker = anna
        .state(&c1, CHAT_MARKER, "")
        .await
        .expect("read")
        .expect("chat marker");
    assert_eq!(chat_marker["content"]["chat_id"], "C1");
    assert_eq!(chat_marker["content"]["status"], "active");
    assert_eq!(chat_marker["content"]["cause"], dm.as_str());
    assert_eq!(
        anna.state_keys(&space, "m.space.child")
            .await
            .expect("children"),
        vec![c1.clone()]
    );
    assert!(
        anna.state(&c1, "m.space.parent", &space)
            .await
            .expect("read")
            .is_some(),
        "C1 links to its space"
    );
    assert_eq!(
        anna.room(&c1).expect("c1").name().as_deref(),
        Some("Chat 1")
    );

    let welcome = anna
        .until("the welcome", || async {
            anna.messages(&dm)
                .await
                .ok()?
                .into_iter()
                .find(|m| m.sender == bot_id)
        })
        .await
        .expect("welcome");
    assert_eq!(welcome.msgtype, "m.notice");
    assert!(
        welcome.body.contains("C1") && welcome.body.contains("!new"),
        "{}",
        welcome.body
    );

    // A message in C1 is answered by the platform, as a reply, with HTML escaped.
    let hello = anna
        .send(&c1, "hello <b>there</b> **friend**")
        .await
        .expect("send");
    let replies = anna.replies_to(&c1, &hello).await.expect("answer");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].msgtype, "m.text");
    assert_eq!(replies[0].body, "[C1] echo: hello <b>there</b> **friend**");
    let html = replies[0].html.as_deref().expect("markdown rendered");
    assert!(
        html.contains("&lt;b&gt;there&lt;/b&gt;") && html.contains("<strong>friend</strong>"),
        "{html}"
    );

    // Commands in the direct chat, each answered as a reply.
    let created = anna.ask(&dm, "!new Trip to Riga").await.expect("!new");
    assert!(
        created.contains("C2") && created.contains("Trip to Riga"),
        "{created}"
    );
    let c2 = anna.accept_invites(1).await.expect("invited to C2")[0].to_string();
    assert_eq!(
        anna.room(&c2).expect("c2").name().as_deref(),
        Some("Trip to Riga")
    );
    let space_marker = anna
        .state(&space, SPACE_MARKER, "")
        .await
        .expect("read")
        .expect("marker");
    assert_eq!(space_marker["content"]["last_chat_index"], 2);
    let c2_marker = anna
        .state(&c2, CHAT_MARKER, "")
        .await
        .expect("read")
        .expect("marker");
    assert_eq!(c2_marker["content"]["chat_id"], "C2");

    let listed = anna.ask(&dm, "!chats").await.expect("!chats");
    assert!(
        listed.contains("C1")
            && listed.contains("Chat 1")
            && listed.contains("C2")
            && listed.contains("Trip to Riga"),
        "{listed}"
    );

    let renamed = anna.ask(&dm, "!rename C2 Holidays").await.expect("!rename");
    assert!(renamed.contains("Holidays"), "{renamed}");
    anna.until("C2 renamed", || async {
        (anna.room(&c2).ok()?.name().as_deref() == Some("Holidays")).then_some(())
    })
    .await
    .expect("room renamed on the server");

    let archived = anna.ask(&c2, "!archive").await.expect("!archive");
    assert!(archived.contains("C2"), "{archived}");
    anna.sync().await.expect("sync");
    assert_eq!(
        anna.state_keys(&space, "m.space.child")
            .await
            .expect("children"),
        vec![c1.clone()]
    );
    let c2_marker = anna
        .state(&c2, CHAT_MARKER, "")
        .await
        .expect("read")
        .expect("marker");
    assert_eq!(c2_marker["content"]["status"], "archived");
    let notice = anna
        .ask(&c2, "are you there?")
        .await
        .expect("archived notice");
    assert!(notice.contains("!unarchive C2"), "{notice}");

    let unarchived = anna.ask(&dm, "!unarchive C2").await.expect("!unarchive");
    assert!(unarchived.contains("C2"), "{unarchived}");
    anna.sync().await.expect("sync");
    let mut children = vec![c1.clone(), c2.clone()];
    children.sort();
    assert_eq!(
        anna.state_keys(&space, "m.space.child")
            .await
            .expect("children"),
        children
    );

    // Bad input gets a clear answer, not silence.
    let unknown = anna.ask(&dm, "!frobnicate").await.expect("unknown");
    assert!(
        unknown.contains("!frobnicate") && unknown.contains("!help"),
        "{unknown}"
    );
    let missing = anna.ask(&dm, "!rename Holidays").await.expect("needs id");
    assert!(missing.contains("!rename C1"), "{missing}");
    let nope = anna.ask(&dm, "!archive C9").await.expect("no such chat");
    assert!(nope.contains("C9"), "{nope}");

    // Renaming the room in a client renames the chat.
    anna.room(&c1)
        .expect("c1")
        .set_name("Daily notes".into())
        .await
        .expect("rename in client");
    let listed = anna
        .until("the rename to reach the bot", || async {
            let listed = anna.ask(&dm, "!chats").await.ok()?;
            listed.contains("Daily notes").then_some(listed)
        })
        .await
        .expect("chat renamed");
    assert!(listed.contains("C1"), "{listed}");

    // The room template: the person cannot touch markers, links, power levels or upgrade.
    let forged = serde_json::json!({"owner": "@anna:localhost", "chat_id": "C1", "status": "archived", "cause": "$x", "version": 1});
    let attempts = [
        (CHAT_MARKER, "", forged),
        (
            "m.space.parent",
            space.as_str(),
            serde_json::json!({"via": ["localhost"]}),
        ),
        (
            "m.room.power_levels",
            "",
            serde_json::json!({"users": {"@anna:localhost": 100}}),
        ),
        (
            "m.room.tombstone",
            "",
            serde_json::json!({"body": "moved", "replacement_room": "!elsewhere:localhost"}),
        ),
        (
            "m.room.encryption",
            "",
            serde_json::json!({"algorithm": "m.megolm.v1.aes-sha2"}),
        ),
    ];
    for (event_type, key, content) in attempts {
        let refused = anna.try_state(&c1, event_type, key, content).await;
        assert_eq!(
            refused.as_deref(),
            Some("Forbidden"),
            "{event_type} must be refused"
        );
    }
    let refused = anna
        .try_state(
            &space,
            "m.space.child",
            "!fake:localhost",
            serde_json::json!({"via": ["localhost"]}),
        )
        .await;
    assert_eq!(refused.as_deref(), Some("Forbidden"));
    assert_eq!(
        anna.try_upgrade(&c1).await.as_deref(),
        Some("Forbidden"),
        "room upgrade must be refused"
    );

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_a_thread_is_answered_in_that_thread() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;

    let root = anna.send(&p.c1, "a topic").await.expect("send");
    let main = anna.replies_to(&p.c1, &root).await.expect("answered");
    assert_eq!(main[0].thread, None, "the main timeline stays the default");

    let threaded = anna
        .send_in_thread(&p.c1, &root, "more on that")
        .await
        .expect("send in thread");
    let reply = anna.replies_to(&p.c1, &threaded).await.expect("answered")[0].clone();
    assert_eq!(reply.body, "[C1] echo: more on that");
    assert_eq!(
        reply.thread.as_deref(),
        Some(root.as_str()),
        "the answer stays in the thread"
    );
    bot.stop().await;
}
