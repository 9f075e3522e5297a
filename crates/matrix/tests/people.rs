//! Who the bot serves and how it treats what people send: access control, one Space per
//! person, owners only, notices, non-text, platform failures, long answers, language.

mod common;

use common::World;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_people_are_served_and_each_gets_one_space() {
    let world = World::new().await;
    let bot =
        world
            .start_bot(world.settings(|raw| {
                raw.allowed_users = Some("@anna:localhost,@boris:localhost".into())
            }))
            .await;

    // Someone not on the list: declined, nothing provisioned.
    let eve = world.person("eve").await;
    let rooms_before = world.synapse.room_count().await.expect("count");
    let eve_dm = eve
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm")
        .to_string();
    eve.until("the bot to decline", || async {
        let members = eve
            .room(&eve_dm)
            .ok()?
            .members_no_sync(matrix_sdk::RoomMemberships::LEAVE)
            .await
            .ok()?;
        members
            .iter()
            .any(|m| m.user_id().as_str() == world.bot_account.user_id)
            .then_some(())
    })
    .await
    .expect("invite declined");
    assert_eq!(
        world.synapse.room_count().await.expect("count"),
        rooms_before + 1,
        "only eve's own dm exists"
    );
    assert!(eve.client.invited_rooms().is_empty());

    // Anna invites the bot to two direct chats at once: still one Space.
    let anna = world.person("anna").await;
    let dm1 = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm1")
        .to_string();
    let dm2 = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm2")
        .to_string();
    anna.accept_invites(2).await.expect("space and C1");
    for dm in [&dm1, &dm2] {
        anna.until("a greeting in each direct chat", || async {
            anna.messages(dm)
                .await
                .ok()?
                .into_iter()
                .find(|m| m.sender == world.bot_account.user_id)
        })
        .await
        .expect("greeted");
    }
    // Each greeting is the last step of its direct chat's provisioning, and the bot provisions
    // a person's direct chats one at a time: a second Space would exist by now.
    anna.sync().await.expect("sync");
    let spaces = anna
        .client
        .joined_rooms()
        .into_iter()
        .chain(anna.client.invited_rooms())
        .filter(|r| r.is_space())
        .count();
    assert_eq!(spaces, 1, "one space for anna");
    // Commands work in both direct chats.
    assert!(anna
        .ask(&dm2, "!chats")
        .await
        .expect("chats")
        .contains("C1"));
    assert!(anna
        .ask(&dm1, "!chats")
        .await
        .expect("chats")
        .contains("C1"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_is_answered_and_odd_messages_get_clear_replies() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| raw.mock_fail_match = Some("explode".into())))
        .await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;

    // A guest in anna's direct chat is ignored: only the owner drives the bot there.
    let boris = world.person("boris").await;
    anna.room(&dm)
        .expect("dm")
        .invite_user_by_id(&boris.user_id())
        .await
        .expect("anna invites boris");
    boris.accept_invites(1).await.expect("boris joins");
    let guest = boris
        .send(&dm, "!new Boris was here")
        .await
        .expect("guest command");
    // The room's queue is ordered: once anna's later command is answered, boris's was handled.
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    let messages = anna.messages(&dm).await.expect("messages");
    assert!(
        messages
            .iter()
            .all(|m| m.in_reply_to.as_deref() != Some(guest.as_str())),
        "guests are ignored"
    );
    assert!(
        !anna
            .ask(&dm, "!chats")
            .await
            .expect("chats")
            .contains("Boris"),
        "no chat was made for a guest"
    );

    // m.notice is never answered; non-text gets "text only".
    let room = anna.room(&c1).expect("c1");
    let notice = room
        .send(RoomMessageEventContent::notice_plain("a notice"))
        .await
        .expect("notice")
        .response
        .event_id;
    let emote_ok = anna.send(&c1, "after the notice").await.expect("text");
    anna.replies_to(&c1, &emote_ok)
        .await
        .expect("text answered");
    let messages = anna.messages(&c1).await.expect("messages");
    assert!(
        messages
            .iter()
            .all(|m| m.in_reply_to.as_deref() != Some(notice.as_str())),
        "notices are never answered"
    );

    let location = RoomMessageEventContent::new(
        matrix_sdk::ruma::events::room::message::MessageType::Location(
            matrix_sdk::ruma::events::room::message::LocationMessageEventContent::new(
                "here".into(),
                "geo:1,2".into(),
            ),
        ),
    );
    let sent = room
        .send(location)
        .await
        .expect("location")
        .response
        .event_id;
    let reply = anna.replies_to(&c1, &sent).await.expect("text-only reply");
    assert!(reply[0].body.contains("text only"), "{}", reply[0].body);

    // A platform failure: a short apology, and the bot keeps serving.
    let failed = anna.ask(&c1, "please explode").await.expect("apology");
    assert!(failed.contains("Sorry"), "{failed}");
    assert_eq!(
        anna.ask(&c1, "still there?").await.expect("answer"),
        "[C1] echo: still there?"
    );

    // Plain text in the direct chat gets a hint, not the platform.
    let hint = anna.ask(&dm, "hi bot").await.expect("hint");
    assert!(hint.contains("!help"), "{hint}");

    // Answers in one chat come back in order.
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(anna.send(&c1, &format!("n{i}")).await.expect("send"));
    }
    let last = anna.replies_to(&c1, &sent[4]).await.expect("last answered");
    assert_eq!(last[0].body, "[C1] echo: n4");
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
        (0..5)
            .map(|i| format!("[C1] echo: n{i}"))
            .collect::<Vec<_>>()
    );

    // Instant answers show no typing notice (it would only wake the person's client once more
    // just before the reply); slow ones do (conversation.rs).
    assert!(
        world.proxy.matching("PUT", "/typing/").is_empty(),
        "no typing notice for instant answers"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_answers_are_split_and_russian_works() {
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| raw.lang = Some("ru".into())))
        .await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    assert_eq!(anna.room(&c1).expect("c1").name().as_deref(), Some("Чат 1"));
    let welcome = anna
        .until("welcome", || async {
            anna.messages(&dm)
                .await
                .ok()?
                .into_iter()
                .find(|m| m.sender == world.bot_account.user_id)
        })
        .await
        .expect("welcome");
    assert!(welcome.body.contains("Здравствуйте"), "{}", welcome.body);
    assert!(anna
        .ask(&dm, "!chats")
        .await
        .expect("chats")
        .contains("Ваши чаты"));

    let long = "слово ".repeat(2700); // ~30 KB: the answer needs more than one part
    let event = anna.send(&c1, long.trim()).await.expect("send");
    let parts = anna
        .until("all parts of the answer", || async {
            let parts = anna.replies_to(&c1, &event).await.ok()?;
            (parts.len() >= 2).then_some(parts)
        })
        .await
        .expect("split answer");
    let words: usize = parts
        .iter()
        .map(|p| p.body.split_whitespace().filter(|w| *w == "слово").count())
        .sum();
    assert_eq!(
        words,
        2700,
        "every word arrives, across {} parts",
        parts.len()
    );
    bot.stop().await;
}
