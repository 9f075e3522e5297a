//! Attachments through the OpenAI-compatible platform end to end: a real Synapse, a real
//! client sending files into an encrypted chat room, and the fake chat-completions server in
//! this process checking what arrives: the image as an `image_url` part with the same bytes,
//! the voice message transcribed (and the transcript quoted back), the text file's text in the
//! message, earlier files described in the context, and a PDF refused with a clear reply.

mod common;

use common::World;
use lambda_matrix_platform::fake_openai::{
    expected_answer, expected_transcript, FakeOpenAi, FakeOptions,
};
use lambda_matrix_testkit::{Person, Upload};
use matrix_sdk::ruma::OwnedEventId;

/// The text of the bot's finished answer to `message` (its last edit, or the reply itself).
async fn final_text(person: &Person, room: &str, message: &OwnedEventId) -> String {
    person
        .until("a finished answer", || async {
            let history = person.history(room, 3).await.ok()?;
            let reply = history
                .iter()
                .find(|m| m.in_reply_to.as_deref() == Some(message.as_str()))?;
            // Not decrypted yet (its room key still on the way): not readable yet.
            let undecrypted = |id: &str| {
                history.iter().any(|m| {
                    m.msgtype == "m.room.encrypted"
                        && (m.event_id == id || m.replaces.as_deref() == Some(id))
                })
            };
            if undecrypted(&reply.event_id) {
                return None;
            }
            let text = (history.iter())
                .rfind(|m| m.replaces.as_deref() == Some(reply.event_id.as_str()))
                .and_then(|e| e.new_body.clone())
                .unwrap_or_else(|| reply.body.clone());
            (!text.contains("still writing")).then_some(text)
        })
        .await
        .expect("a finished answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_voice_and_files_reach_the_model_server() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake server");
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.platform = Some("openai".into());
        raw.openai_base_url = Some(fake.url());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;

    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(0..=255u8);
    let image = Upload {
        caption: Some("what is it?"),
        ..Upload::new("cat.png", "image/png", &png)
    };
    let image = anna.send_file(&c1, image).await.expect("send");
    assert_eq!(
        final_text(&anna, &c1, &image).await,
        format!("{} (images: 1)", expected_answer("what is it?", 0))
    );
    let asked = fake.requests();
    assert_eq!(
        asked.last().expect("asked").images(),
        [("image/png".to_owned(), png.clone())]
    );

    let ogg = b"OggS\0\x02\0\0\0\0\0\0\0\0OpusHead voice".to_vec();
    let voice = Upload {
        voice: true,
        ..Upload::new("voice.ogg", "audio/ogg", &ogg)
    };
    let voice = anna.send_file(&c1, voice).await.expect("send");
    let heard = expected_transcript(&ogg);
    let answer = final_text(&anna, &c1, &voice).await;
    assert!(
        answer.starts_with(&format!("> 🎤\n> {heard}\n\n")),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("openai: {heard} (context: 2)")),
        "{answer}"
    );
    let transcribed = fake.transcriptions();
    assert_eq!(transcribed.len(), 1);
    assert_eq!(
        (transcribed[0].mime.as_str(), &transcribed[0].bytes),
        ("audio/ogg", &ogg)
    );

    let notes = "# Notes\n\n- cats: 3\n";
    let file = Upload::new("notes.md", "text/markdown", notes.as_bytes());
    let file = anna.send_file(&c1, file).await.expect("send");
    final_text(&anna, &c1, &file).await;
    let asked = fake.requests();
    let last = asked.last().expect("asked");
    assert_eq!(
        last.last_user_text().as_deref(),
        Some(format!("<file name=\"notes.md\" type=\"text/markdown\">\n{notes}\n</file>").as_str())
    );
    let sent = last.body.to_string();
    let described = format!("[image \\\"cat.png\\\", image/png, {} bytes]", png.len());
    assert!(
        sent.contains(&described),
        "earlier image described, not sent: {sent}"
    );
    assert_eq!(last.images(), [], "no bytes of earlier files");

    let pdf = anna
        .send_file(
            &c1,
            Upload::new("paper.pdf", "application/pdf", b"%PDF-1.7\n%\xe2\xe3"),
        )
        .await
        .expect("send");
    let replies = anna.replies_to(&c1, &pdf).await.expect("a reply");
    assert!(
        replies[0].body.contains("can't read this kind of file"),
        "{}",
        replies[0].body
    );
    assert_eq!(
        fake.requests().len(),
        asked.len(),
        "the PDF never reached the server"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_vision_or_transcription_says_so_in_the_persons_language() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake server");
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.platform = Some("openai".into());
        raw.openai_base_url = Some(fake.url());
        raw.openai_vision = Some("false".into());
        raw.openai_transcription_model = Some("none".into());
        raw.lang = Some("ru".into());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let image = anna
        .send_file(&c1, Upload::new("cat.png", "image/png", png))
        .await
        .expect("send");
    let replies = anna.replies_to(&c1, &image).await.expect("a reply");
    assert!(
        replies[0].body.contains("не умеет читать картинки"),
        "{}",
        replies[0].body
    );
    let voice = Upload {
        voice: true,
        ..Upload::new("voice.ogg", "audio/ogg", b"OggS\0\x02voice")
    };
    let voice = anna.send_file(&c1, voice).await.expect("send");
    let replies = anna.replies_to(&c1, &voice).await.expect("a reply");
    assert!(
        replies[0].body.contains("не умеет слушать"),
        "{}",
        replies[0].body
    );
    assert!(fake.requests().is_empty() && fake.transcriptions().is_empty());
    bot.stop().await;
}
