//! Server states no healthy run leaves, made by hand as the bot (from a second device), and
//! what startup does with them: adopt, finish, or skip with a reason.

mod common;

use common::World;
use lambda_matrix::markers::CHAT_MARKER;
use lambda_matrix_testkit::{Fault, Person};
use matrix_sdk::ruma::api::client::room::create_room::v3::{
    Request as CreateRoomRequest, RoomPreset,
};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::OwnedUserId;
use serde_json::json;

async fn create(
    as_bot: &Person,
    name: &str,
    invite: &str,
    space: bool,
    state: Vec<serde_json::Value>,
) -> String {
    let mut request = CreateRoomRequest::new();
    request.preset = Some(RoomPreset::PrivateChat);
    request.name = Some(name.to_owned());
    request.invite = vec![OwnedUserId::try_from(invite).expect("user id")];
    if space {
        request.creation_content =
            Some(Raw::from_json_string(json!({"type": "m.space"}).to_string()).expect("json"));
    }
    request.initial_state = state
        .iter()
        .map(|s| Raw::from_json_string(s.to_string()).expect("json"))
        .collect();
    as_bot
        .client
        .create_room(request)
        .await
        .expect("create")
        .room_id()
        .to_string()
}

/// A room "Chat 7" with Anna invited and no marker, linked into `space`, made by `as_bot` (what
/// a crash between creating a chat room and writing its marker leaves).
async fn unmarked_chat_in(as_bot: &Person, space: &str) -> String {
    let old = create(as_bot, "Chat 7", "@anna:localhost", false, vec![]).await;
    as_bot.sync().await.expect("sync");
    as_bot
        .room(space)
        .expect("space")
        .send_state_event_raw("m.space.child", &old, json!({"via": ["localhost"]}))
        .await
        .expect("link the old room");
    old
}

/// `reconcile --dry-run --json` run by the binary (from the saved session): its report.
fn dry_run(world: &World) -> serde_json::Value {
    let out = world
        .binary()
        .args(["reconcile", "--dry-run", "--json"])
        .env_remove("MATRIX_PASSWORD")
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmarked_rooms_are_adopted_half_made_spaces_finished_and_unknown_records_skipped() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let dm = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm")
        .to_string();
    let invited = anna.accept_invites(2).await.expect("provisioned");
    let space = invited
        .iter()
        .find(|id| anna.room(id.as_str()).expect("room").is_space())
        .expect("space")
        .to_string();
    bot.stop().await;

    // What an older version or a crash could have left, made as the bot from another device.
    let as_bot = Person::login(&world.synapse.url(), &world.bot_account)
        .await
        .expect("bot device");
    let old = unmarked_chat_in(&as_bot, &space).await;
    let future = create(&as_bot, "From the future", "@anna:localhost", false, vec![json!({
        "type": CHAT_MARKER, "state_key": "",
        "content": {"owner": "@anna:localhost", "chat_id": "C9", "status": "active", "cause": "$x", "version": 2}
    })])
    .await;
    let boris = world.person("boris").await;
    let boris_space = create(
        &as_bot,
        "Lambda",
        "@boris:localhost",
        true,
        vec![json!({
            "type": "org.lambda.matrix.space", "state_key": "",
            // A crash between the Space and C1: the marker counts no chat yet.
            "content": {"owner": "@boris:localhost", "last_chat_index": 0, "version": 1}
        })],
    )
    .await;
    as_bot
        .client
        .matrix_auth()
        .logout()
        .await
        .expect("log the extra device out");

    // The dry run tells what startup will do, and does nothing.
    let report = dry_run(&world);
    let skipped = report["skipped_rooms"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!(skipped[0]["room_id"], future.as_str());
    assert!(
        skipped[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("unknown record version 2"),
        "{report}"
    );
    let pending = report["resume_pending"].to_string();
    assert!(
        pending.contains("write_chat_marker") && pending.contains(&old) && pending.contains("7"),
        "{pending}"
    );
    assert!(
        pending.contains("create_first_chat") && pending.contains(&boris_space),
        "{pending}"
    );

    // Startup adopts the old room (as C7, from its name), gives boris his C1, skips the rest.
    let bot = world.start_bot(world.settings(|_| {})).await;
    anna.accept_invites(1)
        .await
        .expect("anna joins the old room");
    let marker = anna
        .until("the adopted room's marker", || async {
            anna.state(&old, CHAT_MARKER, "").await.ok().flatten()
        })
        .await
        .expect("marker written by resume");
    assert_eq!(marker["sender"], world.bot_account.user_id.as_str());
    assert_eq!(marker["content"]["chat_id"], "C7");
    assert_eq!(
        anna.ask(&old, "remember me?").await.expect("answer"),
        "[C7] echo: remember me?"
    );
    assert!(
        anna.ask(&dm, "!new").await.expect("new").contains("C8"),
        "ids continue after the adopted C7"
    );

    let invited = boris
        .accept_invites(2)
        .await
        .expect("boris: his space and the C1 resume made");
    let c1 = invited
        .iter()
        .find(|id| !boris.room(id.as_str()).expect("room").is_space())
        .expect("C1")
        .to_string();
    assert_eq!(boris.ask(&c1, "hi").await.expect("answer"), "[C1] echo: hi");
    let anna_rooms: Vec<String> = anna
        .client
        .joined_rooms()
        .iter()
        .map(|r| r.room_id().to_string())
        .collect();
    assert!(
        anna_rooms.contains(&future),
        "the skipped room is left alone, not left or forgotten"
    );
    bot.stop().await;
}

/// A room the bot would adopt whose members the homeserver will not list at startup (`GET
/// /members` fails) is skipped, never adopted on partial data; a message written in it while
/// the bot does not serve it is answered, once, by the next start that adopts the room (before,
/// the live bot had seen and dropped it, and no later start read it back: lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_members_cannot_be_read_is_adopted_later_with_its_messages_answered() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let home = world.first_contact(&anna, false).await;
    bot.stop().await;
    // A chat room a crash left without its marker, made as the bot from another device.
    let as_bot = Person::login(&world.synapse.url(), &world.bot_account)
        .await
        .expect("bot device");
    let old = unmarked_chat_in(&as_bot, &home.space).await;
    as_bot
        .client
        .matrix_auth()
        .logout()
        .await
        .expect("log the extra device out");
    anna.accept_invites(1)
        .await
        .expect("anna joins the old room");

    // The homeserver will not list this room's members: it is skipped, saying why.
    let members = format!("/rooms/{old}/members");
    world.proxy.inject(Fault::new("GET", &members, 500));
    let report = dry_run(&world);
    let skipped = report["skipped_rooms"].to_string();
    assert!(
        skipped.contains(&old) && skipped.contains("cannot load the members"),
        "{report}"
    );
    assert!(
        !report["resume_pending"].to_string().contains(&old),
        "nothing is planned for a room read in part: {report}"
    );
    let bot = world.start_bot(world.settings(|_| {})).await;
    let message = anna.send(&old, "anyone here?").await.expect("send");
    assert_eq!(
        anna.ask(&home.c1, "probe").await.expect("answer"),
        "[C1] echo: probe",
        "the other rooms are served meanwhile"
    );
    assert!(
        !world.proxy.matching("GET", &members).is_empty(),
        "the members were asked for"
    );
    assert!(
        anna.state(&old, CHAT_MARKER, "")
            .await
            .expect("state")
            .is_none(),
        "not adopted while its members cannot be read"
    );
    bot.stop().await;

    // The homeserver is well again: the next start adopts the room and answers what was
    // written in it meanwhile, once.
    world.proxy.heal();
    let bot = world.start_bot(world.settings(|_| {})).await;
    let marker = anna
        .until("the adopted room's marker", || async {
            anna.state(&old, CHAT_MARKER, "").await.ok().flatten()
        })
        .await
        .expect("marker written by resume");
    assert_eq!(marker["content"]["chat_id"], "C7");
    let replies = anna.replies_to(&old, &message).await.expect("answered");
    assert_eq!(replies[0].body, "[C7] echo: anyone here?");
    assert_eq!(
        anna.ask(&old, "and now?").await.expect("answer"),
        "[C7] echo: and now?"
    );
    let answers = anna.reply_count(&old, &message).await.expect("messages");
    assert_eq!(answers, 1, "answered once");
    bot.stop().await;
}

/// `!chats` asked in `dm` until its reply's HTML contains `needle`; that reply.
async fn chats_showing(
    person: &Person,
    dm: &str,
    needle: &str,
) -> lambda_matrix_testkit::person::Message {
    person
        .until(&format!("!chats showing {needle:?}"), || async {
            let asked = person.send(dm, "!chats").await.ok()?;
            let reply = person.replies_to(dm, &asked).await.ok()?.remove(0);
            reply
                .html
                .as_deref()
                .is_some_and(|h| h.contains(needle))
                .then_some(reply)
        })
        .await
        .expect("!chats shows the name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_given_in_a_client_are_cleaned_and_shown_as_text() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;

    // Renamed live to Markdown: the bot's notice shows it as text, not as a link or bold.
    let markdown = "[x](https://example.org) **b**";
    anna.room(&p.c1)
        .expect("c1")
        .set_name(markdown.into())
        .await
        .expect("rename in the client");
    let listed = chats_showing(&anna, &p.dm, "example.org").await;
    let html = listed.html.expect("html");
    assert!(!html.contains("<a href"), "the name became a link: {html}");
    assert!(
        html.contains(&format!("<strong>{markdown}</strong>")),
        "the name is shown as typed, in the bot's own bold only: {html}"
    );

    // Renamed while the bot is down and its cache is lost, with direction, zero-width and
    // control characters: reconcile reads the name from the room and cleans it.
    bot.stop().await;
    world.lose_cache();
    anna.room(&p.c1)
        .expect("c1")
        .set_name("\u{202E}evil\u{200B}  name\u{7}".into())
        .await
        .expect("rename in the client");
    let bot = world.start_bot(world.settings(|_| {})).await;
    let listed = chats_showing(&anna, &p.dm, "evil name").await;
    let html = listed.html.unwrap_or_default();
    assert!(
        !listed.body.contains(['\u{202E}', '\u{200B}', '\u{7}'])
            && !html.contains(['\u{202E}', '\u{200B}', '\u{7}']),
        "{:?}",
        listed.body
    );
    assert!(listed.body.contains("C1"), "{}", listed.body);
    // The cleaning is the cache's, not only the notice's.
    let cache =
        lambda_matrix_core::SqliteStore::read_only_dump(world.dir.path().join("lambda_matrix.db"))
            .expect("read the cache");
    let names: Vec<&str> = cache.chats.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["evil name"]);
    bot.stop().await;
}

/// The mock platform, except that answering "boom" panics: a bug somewhere in answering.
#[derive(Debug)]
struct PanicsOnBoom(lambda_matrix_platform::MockPlatform);

#[async_trait::async_trait]
impl lambda_matrix_platform::Platform for PanicsOnBoom {
    fn name(&self) -> &'static str {
        "panics-on-boom"
    }

    async fn answer(
        &self,
        request: lambda_matrix_platform::Request,
        progress: &lambda_matrix_platform::Progress,
    ) -> Result<lambda_matrix_platform::Answer, lambda_matrix_platform::PlatformError> {
        if request.text == "boom" {
            panic!("the platform broke on purpose");
        }
        self.0.answer(request, progress).await
    }

    async fn forget_person(
        &self,
        user_id: &str,
    ) -> Result<(), lambda_matrix_platform::PlatformError> {
        self.0.forget_person(user_id).await
    }
}

/// A panic while answering one message is a bug, not a reason to go silent: the person is
/// told, the message queued behind it in the same room is answered, and a restart neither
/// answers the broken one again nor loses the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_answering_is_told_and_the_room_goes_on() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let platform = std::sync::Arc::new(PanicsOnBoom(lambda_matrix_platform::MockPlatform::new(
        settings.platform.mock.clone(),
    )));
    let bot = world.start_bot_with(settings, platform.clone()).await;
    let anna = world.person("anna").await;
    let common::Provisioned { c1, .. } = world.first_contact(&anna, false).await;
    let boom = anna.send(&c1, "boom").await.expect("send");
    let after = anna.send(&c1, "after").await.expect("send");
    let told = anna.replies_to(&c1, &boom).await.expect("a reply to boom");
    assert!(
        told[0].body.contains("problem on my side"),
        "{}",
        told[0].body
    );
    let answered = anna
        .replies_to(&c1, &after)
        .await
        .expect("a reply to after");
    assert_eq!(answered[0].body, "[C1] echo: after");
    assert_eq!(
        anna.ask(&c1, "still here?").await.expect("answer"),
        "[C1] echo: still here?"
    );
    bot.stop().await;

    let bot = world.start_bot_with(world.settings(|_| {}), platform).await;
    assert_eq!(
        anna.ask(&c1, "and now?").await.expect("answer"),
        "[C1] echo: and now?"
    );
    for message in [&boom, &after] {
        let replies = anna.replies_to(&c1, message).await.expect("replies");
        assert_eq!(replies.len(), 1, "one reply to {message} after a restart");
    }
    bot.stop().await;
}
