//! First contact is resumable (issue 30, point 6): the direct chat is recorded before the join,
//! so a crash anywhere after that, or a room creation the homeserver refuses, is finished —
//! retried while running, else by the next start — and never leaves a person with a direct
//! chat and no Space.

use super::common::{crashed, World};
use lambda_matrix_testkit::{Fault, Person};

/// `person` gets their Space and C1 (accepting both invites) and a welcome in `dm`; one Space.
async fn provisioned(world: &World, person: &Person, dm: &str) {
    let invited = person.accept_invites(2).await.expect("the Space and C1");
    let spaces = invited
        .iter()
        .filter(|id| person.room(id.as_str()).expect("room").is_space())
        .count();
    assert_eq!(spaces, 1, "one Space");
    let bot = world.bot_account.user_id.clone();
    person
        .until("the welcome", || async {
            let messages = person.messages(dm).await.ok()?;
            messages
                .iter()
                .any(|m| m.sender == bot && m.body.contains("C1"))
                .then_some(())
        })
        .await
        .expect("welcomed");
    let chats = person.ask(dm, "!chats").await.expect("chats");
    assert!(chats.contains("C1") && !chats.contains("C2"), "{chats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_around_the_join_is_finished_by_the_next_start() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    for (name, point) in [
        ("anna", "after-dm-record-before-join"),
        ("boris", "after-join-before-space"),
    ] {
        let person = world.person(name).await;
        let bot = world.armed(point);
        let dm = person
            .create_dm(&world.bot_account.user_id, false)
            .await
            .expect("dm")
            .to_string();
        crashed(bot).await;
        let bot = world.start_bot(settings.clone()).await;
        provisioned(&world, &person, &dm).await;
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_room_creation_is_retried_and_else_finished_by_the_next_start() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let bot = world.start_bot(settings.clone()).await;

    // Refused once: retried while running.
    world
        .proxy
        .inject(Fault::new("POST", "/createRoom", 403).times(1));
    let anna = world.person("anna").await;
    let dm = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm")
        .to_string();
    provisioned(&world, &anna, &dm).await;

    // Refused every time while running: the person is told, and the next start finishes it.
    world
        .proxy
        .inject(Fault::new("POST", "/createRoom", 429).times(3));
    let boris = world.person("boris").await;
    let dm = boris
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm")
        .to_string();
    let bot_id = world.bot_account.user_id.clone();
    boris
        .until("the failure notice", || async {
            let messages = boris.messages(&dm).await.ok()?;
            messages
                .iter()
                .any(|m| m.sender == bot_id && m.msgtype == "m.notice")
                .then_some(())
        })
        .await
        .expect("told");
    bot.stop().await;
    let bot = world.start_bot(settings).await;
    provisioned(&world, &boris, &dm).await;
    bot.stop().await;
}
