//! A message sent while the bot was down is answered at the next start, whatever the person
//! did after it: more events than one sync response carries (reactions, redactions, renames,
//! stickers) leave only those in the room's latest events, and the start must still read the
//! room back. Rooms are not encrypted here: in an encrypted room a reaction or a sticker is an
//! encrypted event, which already makes the room look unanswered.

use super::common::World;
use lambda_matrix_testkit::Person;
use matrix_sdk::ruma::OwnedEventId;
use serde_json::json;

/// What a person does after their message.
#[derive(Clone, Copy, Debug)]
enum Burst {
    Reactions,
    Redactions,
    Renames,
    Stickers,
}

/// Sends `burst` into `room` after `message` (well past the 10 latest events a start sees).
async fn follow(person: &Person, room: &str, message: &OwnedEventId, burst: Burst) {
    let client_room = person.room(room).expect("room");
    let reaction = |n: usize| json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": message, "key": format!("{n}")}});
    match burst {
        Burst::Reactions => {
            for n in 0..15 {
                client_room
                    .send_raw("m.reaction", reaction(n))
                    .await
                    .expect("reaction");
            }
        }
        Burst::Redactions => {
            for n in 0..15 {
                let sent = client_room
                    .send_raw("m.reaction", reaction(n))
                    .await
                    .expect("reaction");
                person
                    .redact(room, &sent.response.event_id)
                    .await
                    .expect("redaction");
            }
        }
        Burst::Renames => {
            for n in 0..30 {
                client_room
                    .send_state_event_raw("m.room.name", "", json!({"name": format!("Plans {n}")}))
                    .await
                    .expect("rename");
            }
        }
        Burst::Stickers => {
            for n in 0..12 {
                let sticker =
                    json!({"body": format!("cat {n}"), "url": "mxc://localhost/cat", "info": {}});
                client_room
                    .send_raw("m.sticker", sticker)
                    .await
                    .expect("sticker");
            }
        }
    }
}

/// Each of four people writes while the bot is down, then does one kind of burst; at the
/// restart (`lose_store`: a cold start from a new SDK store, else a warm one from the saved
/// position) each message is answered, once.
async fn answered_once_whatever_follows(lose_store: bool) {
    let world = World::new().await;
    let settings = world.settings(|raw| raw.encrypt_rooms = Some("false".into()));
    let bot = world.start_bot(settings.clone()).await;
    let bursts = [
        ("anna", Burst::Reactions),
        ("bob", Burst::Redactions),
        ("cleo", Burst::Renames),
        ("dan", Burst::Stickers),
    ];
    let mut people = Vec::new();
    for (name, burst) in bursts {
        let person = world.person(name).await;
        let c1 = world.first_contact(&person, false).await.c1;
        people.push((person, c1, burst));
    }
    bot.stop().await;
    if lose_store {
        world.lose_store();
    }

    let mut sent = Vec::new();
    for (person, c1, burst) in &people {
        let message = person.send(c1, "while away").await.expect("send");
        follow(person, c1, &message, *burst).await;
        sent.push(message);
    }
    let bot = world.start_bot(settings).await;
    for ((person, c1, burst), message) in people.iter().zip(&sent) {
        let replies = person
            .replies_to(c1, message)
            .await
            .unwrap_or_else(|e| panic!("{burst:?}: the message is answered: {e:#}"));
        assert_eq!(replies[0].body, "[C1] echo: while away", "{burst:?}");
        // A later message answered means the room's queue is past the first one: any second
        // answer to it would be there by now.
        assert_eq!(
            person.ask(c1, "and now").await.expect("answer"),
            "[C1] echo: and now"
        );
        assert_eq!(
            person.reply_count(c1, message).await.expect("count"),
            1,
            "{burst:?}: answered once"
        );
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_behind_reactions_redactions_renames_or_stickers_is_answered_at_a_restart() {
    answered_once_whatever_follows(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_behind_them_is_answered_at_a_cold_start_too() {
    answered_once_whatever_follows(true).await;
}
