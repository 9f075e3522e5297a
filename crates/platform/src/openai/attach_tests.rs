//! Attachments through the OpenAI platform against the fake server: the image arrives as an
//! `image_url` part with the same bytes, a voice message is transcribed and its transcript
//! quoted above the answer (streamed or not), a text file's text is in the message.

use super::*;
use crate::fake_openai::{expected_answer, expected_transcript, FakeOpenAi, FakeOptions};
use lambda_matrix_core::ChatId;
use std::sync::Arc;
use std::time::Duration;

fn with(text: &str, attachment: Attachment) -> Request {
    Request {
        user_id: "@anna:x".into(),
        chat_id: ChatId::new(1).expect("id"),
        text: text.into(),
        attachments: vec![attachment],
        context: Vec::new(),
        replied_to: None,
        model: None,
        instructions: None,
    }
}

fn file(kind: AttachmentKind, name: &str, mime: &str, bytes: &[u8]) -> Attachment {
    Attachment {
        kind,
        mime: mime.into(),
        name: name.into(),
        bytes: Arc::from(bytes),
    }
}

async fn platform(fake: &FakeOpenAi, stream: bool) -> OpenAiPlatform {
    OpenAiPlatform::connect(OpenAiConfig {
        stream,
        timeout: Duration::from_secs(10),
        ..OpenAiConfig::new(fake.url())
    })
    .await
    .expect("connect")
}

#[tokio::test]
async fn an_image_is_an_image_url_part_with_the_same_bytes() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let platform = platform(&fake, false).await;
    let png = b"\x89PNG\r\n\x1a\n\0\x01\x02\xff";
    let image = file(AttachmentKind::Image, "cat.png", "image/png", png);
    let answer = (platform.answer(with("what is it?", image), &Progress::new(String::new())))
        .await
        .expect("answer");
    assert_eq!(
        answer.text,
        format!("{} (images: 1)", expected_answer("what is it?", 0))
    );
    let received = fake.requests();
    assert_eq!(
        received[0].images(),
        [("image/png".to_owned(), png.to_vec())]
    );
    assert!(fake.transcriptions().is_empty());
}

#[tokio::test]
async fn a_voice_message_is_transcribed_quoted_and_answered() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let ogg = b"OggS\0\x02voice";
    for stream in [false, true] {
        let platform = platform(&fake, stream).await;
        let voice = file(AttachmentKind::Voice, "voice.ogg", "audio/ogg", ogg);
        let progress = Progress::new(String::new());
        let answer = platform
            .answer(with("", voice), &progress)
            .await
            .expect("answer");
        let heard = expected_transcript(ogg);
        let expected = format!("> 🎤\n> {heard}\n\n{}", expected_answer(&heard, 0));
        assert_eq!(answer.text, expected, "stream: {stream}");
        if stream {
            assert_eq!(
                *progress.borrow(),
                expected,
                "the quote shows while it streams"
            );
        }
    }
    let heard = fake.transcriptions();
    assert_eq!(heard.len(), 2);
    assert_eq!(
        (heard[0].model.as_str(), heard[0].mime.as_str()),
        ("whisper-1", "audio/ogg")
    );
    assert_eq!(
        (heard[0].file_name.as_str(), heard[0].bytes.as_slice()),
        ("voice.ogg", &ogg[..])
    );
}

#[tokio::test]
async fn a_text_file_is_added_as_text_and_refusals_follow_the_settings() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let platform = platform(&fake, false).await;
    let csv = file(AttachmentKind::File, "t.csv", "text/csv", b"a,b\n1,2\n");
    platform
        .answer(with("sum it", csv), &Progress::new(String::new()))
        .await
        .expect("answer");
    assert_eq!(
        fake.requests()[0].last_user_text().as_deref(),
        Some("sum it\n\n<file name=\"t.csv\" type=\"text/csv\">\na,b\n1,2\n\n</file>")
    );
    assert_eq!(
        platform.accepts(AttachmentKind::File, "application/pdf"),
        Err(Refusal::FileType)
    );
    let blind = OpenAiPlatform::connect(OpenAiConfig {
        vision: false,
        transcription_model: None,
        ..OpenAiConfig::new(fake.url())
    })
    .await
    .expect("connect");
    assert_eq!(
        blind.accepts(AttachmentKind::Image, "image/png"),
        Err(Refusal::Images)
    );
    assert_eq!(
        blind.accepts(AttachmentKind::Voice, "audio/ogg"),
        Err(Refusal::Audio)
    );
}
