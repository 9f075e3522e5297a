//! A reply from a client that still sends reply fallbacks (the quoted message at the top of the
//! body): the quote is not the person's words, so a command sent as a reply runs, and the
//! platform gets only what the person wrote, and is told which message they replied to (read
//! by its id, decrypted: C1 is encrypted), as the mock's `in reply to:` line shows (issue 31,
//! point 1).

use super::common::World;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_fallback_is_answered_for_the_persons_own_words() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    let bot_id = world.bot_account.user_id.clone();
    let encrypted = anna.room(&c1).expect("c1").encryption_state();
    assert!(encrypted.is_encrypted(), "C1 is encrypted");
    let question = anna.send(&c1, "quote me").await.expect("send");
    let answer = anna.replies_to(&c1, &question).await.expect("answered");
    let reply_to_answer = |words: &str| {
        json!({
            "msgtype": "m.text",
            "body": format!("> <{bot_id}> {}\n\n{words}", answer[0].body),
            "format": "org.matrix.custom.html",
            "formatted_body": format!("<mx-reply><blockquote>{}</blockquote></mx-reply>{words}", answer[0].body),
            "m.relates_to": {"m.in_reply_to": {"event_id": answer[0].event_id}}
        })
    };

    let own = anna
        .send_raw(&c1, reply_to_answer("my own words"))
        .await
        .expect("send");
    let replies = anna.replies_to(&c1, &own).await.expect("answered");
    assert_eq!(
        replies[0].body,
        "[C1] echo: my own words\nin reply to: [C1] echo: quote me"
    );

    let command = anna
        .send_raw(&c1, reply_to_answer("!chats"))
        .await
        .expect("send");
    let replies = anna.replies_to(&c1, &command).await.expect("answered");
    assert_eq!(replies[0].msgtype, "m.notice", "the command ran");
    assert!(replies[0].body.contains("C1"), "{}", replies[0].body);
    bot.stop().await;
}
