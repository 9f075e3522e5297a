//! A message removed before the bot handled it is neither answered nor met with "please send
//! it again", even when the bot cannot decrypt it (issue 31, point 3).

use super::common::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_removed_while_the_bot_was_down_gets_no_reply() {
    let world = World::new().await;
    let settings = world.settings(|_| {});
    let bot = world.start_bot(settings.clone()).await;
    let anna = world.person("anna").await;
    let super::common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    assert_eq!(
        anna.ask(&c1, "before").await.expect("answer"),
        "[C1] echo: before"
    );
    bot.stop().await;

    // Encrypted for the bot's old device, then removed; the bot then loses its store and its
    // recovery key file, so it could not read the message even if it were there.
    let gone = anna.send(&c1, "oops").await.expect("send");
    anna.redact(&c1, &gone).await.expect("removed");
    // A message after it makes the room one to read back: the removed one is met on the way.
    let kept = anna.send(&c1, "this one stays").await.expect("send");
    world.lose_store();
    std::fs::remove_file(world.dir.path().join("lambda_matrix.db.recovery-key"))
        .expect("remove the recovery key file");

    let bot = world.start_bot(settings).await;
    let asked = anna
        .replies_to(&c1, &kept)
        .await
        .expect("a reply to the kept message");
    assert!(asked[0].body.contains("send it again"), "{}", asked[0].body);
    // The direct chat is not encrypted: by its answer Anna's client has met the new device.
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    // Answered after anything queued before it: the removed message had its turn.
    assert_eq!(
        anna.ask(&c1, "after").await.expect("answer"),
        "[C1] echo: after"
    );
    assert_eq!(
        anna.reply_count(&c1, &gone).await.expect("count"),
        0,
        "no answer and no 'please send it again' for a removed message"
    );
    bot.stop().await;
}
