//! Images, voice messages and files against a real Synapse, sent by a real client (uploaded to
//! the media repository, encrypted in encrypted rooms): the mock answers each with its kind,
//! sniffed type, size and SHA-256 prefix, so the bytes are proven to arrive intact; what cannot
//! be answered (too big, a video, a broken link) gets a clear reply; a caption edited after the
//! answer gets a fresh answer; files sent while the bot was down are answered once.

mod common;

use common::World;
use lambda_matrix_platform::{Attachment, AttachmentKind};
use lambda_matrix_testkit::{Fault, Person, Upload};
use matrix_sdk::ruma::OwnedEventId;
use std::sync::Arc;

/// The attachment limit in these tests (bytes).
const MAX: usize = 4096;

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..200u32).map(|n| (n * 7 % 251) as u8));
    bytes
}

fn ogg_opus() -> Vec<u8> {
    let mut bytes = b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\x02\x03\x04\0\0\0\0OpusHead".to_vec();
    bytes.extend((0..300u32).map(|n| (n * 13 % 256) as u8));
    bytes
}

const NOTES: &str = "# Notes\n\n- grüße\n- two, three\n";

/// The mock's answer to `bytes` of `kind` and `mime`, with `caption`.
fn got(kind: AttachmentKind, mime: &str, bytes: &[u8], caption: Option<&str>) -> String {
    let hash = Attachment {
        kind,
        mime: mime.into(),
        name: String::new(),
        bytes: Arc::from(bytes),
    }
    .sha256_prefix();
    let mut text = format!(
        "[C1] got {kind} {mime}, {} bytes, sha256 {hash}",
        bytes.len()
    );
    if let Some(caption) = caption {
        text.push_str(&format!("\necho: {caption}"));
    }
    text
}

/// The body of the bot's one reply to `event`.
async fn only_reply(person: &Person, room: &str, event: &OwnedEventId) -> String {
    let replies = person.answer(room, event).await.expect("a reply");
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies[0].body.clone()
}

async fn send(person: &Person, room: &str, upload: Upload<'_>) -> OwnedEventId {
    person.send_file(room, upload).await.expect("send a file")
}

/// Sends the Markdown notes as a file to `room`; the answer shows the same bytes.
async fn notes_arrive_intact(person: &Person, room: &str) {
    let notes = send(
        person,
        room,
        Upload::new("notes.md", "text/markdown", NOTES.as_bytes()),
    )
    .await;
    assert_eq!(
        only_reply(person, room, &notes).await,
        got(
            AttachmentKind::File,
            "text/markdown",
            NOTES.as_bytes(),
            None
        )
    );
}

/// What is refused gets a reply saying why: over the limit (by the event's info, and with a
/// lying info by the bytes), a video.
async fn refused_files(anna: &Person, c1: &str) {
    // Over the limit, by the event's info and (with a lying info) by the bytes.
    let big = vec![b'x'; MAX + 1];
    let honest = send(anna, c1, Upload::new("big.txt", "text/plain", &big)).await;
    let reply = only_reply(anna, c1, &honest).await;
    assert!(
        reply.contains("too big") && reply.contains("4 KB"),
        "{reply}"
    );
    let lying = Upload {
        declared_size: Some(10),
        ..Upload::new("small.txt", "text/plain", &big)
    };
    let lying = send(anna, c1, lying).await;
    assert!(only_reply(anna, c1, &lying).await.contains("too big"));

    let video = send(
        anna,
        c1,
        Upload::new("v.mp4", "video/mp4", b"\0\0\0\x20ftypisom\0\0\0\0"),
    )
    .await;
    assert!(only_reply(anna, c1, &video)
        .await
        .contains("can't watch videos"));
}

async fn files_arrive_intact(encrypted: bool) {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.encrypt_rooms = Some(encrypted.to_string());
        raw.max_attachment_bytes = Some(MAX.to_string());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, encrypted).await.c1;
    assert_eq!(
        anna.room(&c1)
            .expect("c1")
            .encryption_state()
            .is_encrypted(),
        encrypted
    );

    let (png, ogg) = (png(), ogg_opus());
    let image = Upload {
        caption: Some("what is this?"),
        ..Upload::new("cat.png", "image/png", &png)
    };
    let image = send(&anna, &c1, image).await;
    assert_eq!(
        only_reply(&anna, &c1, &image).await,
        got(
            AttachmentKind::Image,
            "image/png",
            &png,
            Some("what is this?")
        )
    );

    let voice = Upload {
        voice: true,
        ..Upload::new("voice.ogg", "audio/ogg", &ogg)
    };
    let voice = send(&anna, &c1, voice).await;
    assert_eq!(
        only_reply(&anna, &c1, &voice).await,
        got(AttachmentKind::Voice, "audio/ogg", &ogg, None)
    );

    notes_arrive_intact(&anna, &c1).await;

    // A wrong type is not trusted: the bytes say PNG.
    let mislabelled = send(
        &anna,
        &c1,
        Upload::new("pic.bin", "application/octet-stream", &png),
    )
    .await;
    assert_eq!(
        only_reply(&anna, &c1, &mislabelled).await,
        got(AttachmentKind::Image, "image/png", &png, None)
    );

    refused_files(&anna, &c1).await;
    if !encrypted {
        // A large file whose event says it is small: the bot stops reading at the bound
        // instead of taking the whole file into memory first.
        let large = vec![b'y'; 32 << 20];
        let lying = Upload {
            declared_size: Some(10),
            ..Upload::new("large.txt", "text/plain", &large)
        };
        world.proxy.clear();
        let lying = send(&anna, &c1, lying).await;
        let reply = only_reply(&anna, &c1, &lying).await;
        assert!(
            reply.contains("too big") && reply.contains("32.0 MB"),
            "the homeserver's length, not the event's: {reply}"
        );
        let downloads = world.proxy.matching("GET", "/download/");
        let taken: u64 = downloads.iter().map(|r| r.sent_bytes).sum();
        assert!(
            !downloads.is_empty() && taken < 16 << 20,
            "the bot took {taken} bytes of a 32 MiB file over a 4 KB bound: {downloads:?}"
        );
    }

    // A caption edited after its answer: a fresh answer to the edit, same bytes.
    let edit = anna
        .edit_caption(&c1, &image, "and now?")
        .await
        .expect("edit");
    let fresh = only_reply(&anna, &c1, &edit).await;
    assert!(
        fresh.starts_with("*Answer to your edited message:*"),
        "{fresh}"
    );
    assert!(
        fresh.ends_with(&got(
            AttachmentKind::Image,
            "image/png",
            &png,
            Some("and now?")
        )),
        "{fresh}"
    );
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("probe"),
        "[C1] echo: probe"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_arrive_intact_in_an_unencrypted_room() {
    files_arrive_intact(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_arrive_intact_in_an_encrypted_room() {
    files_arrive_intact(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_media_links_get_a_clear_reply() {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.encrypt_rooms = Some("false".into());
        raw.media_timeout = Some("5s".into());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    let image = |url: &str| serde_json::json!({"msgtype": "m.image", "body": "x.png", "url": url, "info": {"mimetype": "image/png"}});
    let missing = anna.send_raw(&c1, image("")).await.expect("send");
    let reply = only_reply(&anna, &c1, &missing).await;
    assert!(reply.contains("no file I can fetch"), "{reply}");
    // No link at all: an event the SDK cannot read as a message, answered all the same.
    let no_link = serde_json::json!({"msgtype": "m.file", "body": "x.txt"});
    let no_link = anna.send_raw(&c1, no_link).await.expect("send");
    let reply = only_reply(&anna, &c1, &no_link).await;
    assert!(reply.contains("no file I can fetch"), "{reply}");
    // A failure the homeserver may not repeat is tried again: answered, not refused.
    world
        .proxy
        .inject(Fault::new("GET", "/download/", 502).times(1));
    world.proxy.clear();
    notes_arrive_intact(&anna, &c1).await;
    assert_eq!(world.proxy.matching("GET", "/download/").len(), 2);
    // One that says the file is not there is not.
    world.proxy.clear();
    let server = anna.user_id().server_name().to_owned();
    let gone = anna
        .send_raw(&c1, image(&format!("mxc://{server}/NoSuchMedia")))
        .await
        .expect("send");
    let reply = only_reply(&anna, &c1, &gone).await;
    assert!(reply.contains("could not fetch"), "{reply}");
    assert_eq!(world.proxy.matching("GET", "/download/").len(), 1);
    let elsewhere = anna
        .send_raw(&c1, image("mxc://unreachable.invalid/Media"))
        .await
        .expect("send");
    let reply = only_reply(&anna, &c1, &elsewhere).await;
    assert!(reply.contains("could not fetch"), "{reply}");
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("probe"),
        "[C1] echo: probe"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sent_while_the_bot_was_down_are_answered_once() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;
    bot.stop().await;

    let png = png();
    let image = send(&anna, &c1, Upload::new("cat.png", "image/png", &png)).await;
    let notes = send(
        &anna,
        &c1,
        Upload::new("notes.md", "text/markdown", NOTES.as_bytes()),
    )
    .await;
    let no_link = serde_json::json!({"msgtype": "m.image", "body": "x.png"});
    let no_link = anna.send_raw(&c1, no_link).await.expect("send");
    world.lose_cache();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        only_reply(&anna, &c1, &image).await,
        got(AttachmentKind::Image, "image/png", &png, None)
    );
    assert_eq!(
        only_reply(&anna, &c1, &notes).await,
        got(
            AttachmentKind::File,
            "text/markdown",
            NOTES.as_bytes(),
            None
        )
    );
    let reply = only_reply(&anna, &c1, &no_link).await;
    assert!(reply.contains("no file I can fetch"), "{reply}");
    bot.stop().await;

    // Another restart answers nothing again.
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("probe"),
        "[C1] echo: probe"
    );
    for event in [&image, &notes, &no_link] {
        let replies: Vec<_> = anna
            .messages(&c1)
            .await
            .expect("messages")
            .into_iter()
            .filter(|m| m.in_reply_to.as_deref() == Some(event.as_str()))
            .collect();
        assert_eq!(replies.len(), 1, "answered once: {replies:?}");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caption_edited_before_the_answer_is_answered_once_in_its_edited_form() {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.mock_slow_match = Some("slow".into());
        raw.mock_slow_delay = Some("4s".into());
    });
    let bot = world.start_bot(settings).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, true).await.c1;
    let png = png();
    let image = Upload {
        caption: Some("slow one"),
        ..Upload::new("cat.png", "image/png", &png)
    };
    let image = send(&anna, &c1, image).await;
    let edit = anna
        .edit_caption(&c1, &image, "slow two")
        .await
        .expect("edit");
    assert_eq!(
        only_reply(&anna, &c1, &image).await,
        got(AttachmentKind::Image, "image/png", &png, Some("slow two"))
    );
    assert_eq!(
        anna.ask(&c1, "probe").await.expect("probe"),
        "[C1] echo: probe"
    );
    let to_edit = anna
        .messages(&c1)
        .await
        .expect("messages")
        .into_iter()
        .filter(|m| m.in_reply_to.as_deref() == Some(edit.as_str()))
        .count();
    assert_eq!(to_edit, 0, "the edit has no answer of its own");
    bot.stop().await;
}
