//! One budget for attachment bodies (issue 30, point 4): at most
//! `MATRIX_MAX_CONCURRENT_DOWNLOADS` are held at once (from the download to the end of the
//! answer), whatever the answers' own bound, shared fairly between people.

use super::common::World;
use super::herd::{three_rooms, Counting};
use lambda_matrix_testkit::Upload;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_bodies_are_held_two_at_a_time_and_shared_between_people() {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.encrypt_rooms = Some("false".into());
        raw.max_concurrent_answers = Some("8".into());
        raw.max_concurrent_downloads = Some("2".into());
        // Long enough for Bob's file to reach the bot while Anna's first two are held, on a
        // busy machine too (at 1 s a CI run under load saw all three of Anna's go first).
        raw.mock_delay = Some("3s".into());
    });
    let platform = Arc::new(Counting::new(&settings));
    let bot = world
        .start_bot_with(settings.clone(), platform.clone())
        .await;
    let anna = world.person("anna").await;
    let rooms = three_rooms(&world, &anna).await;
    let bob = world.person("bob").await;
    let bobs = world.first_contact(&bob, false).await.c1;
    platform.forget_calls();

    // Anna's three files, then Bob's one, each in a room of its own (rooms run side by side).
    let mut sent = Vec::new();
    for room in &rooms {
        let file = Upload::new("notes.txt", "text/plain", b"anna's notes");
        sent.push((
            &anna,
            room.clone(),
            anna.send_file(room, file).await.expect("send"),
        ));
    }
    let file = Upload::new("notes.txt", "text/plain", b"bob's notes");
    sent.push((
        &bob,
        bobs.clone(),
        bob.send_file(&bobs, file).await.expect("send"),
    ));
    for (person, room, event) in &sent {
        let replies = person.replies_to(room, event).await.expect("answered");
        assert!(
            replies[0].body.contains("got file text/plain"),
            "{}",
            replies[0].body
        );
    }
    assert_eq!(
        platform.peak.load(Ordering::SeqCst),
        2,
        "two bodies at a time, although eight answers may run"
    );
    let (bobs_turn, calls) = platform.turn_of("@bob");
    assert!(
        bobs_turn <= 2,
        "bob's file waited for one of anna's at most: {calls:?}"
    );
    bot.stop().await;
}
