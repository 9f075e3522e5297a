//! Attachments a person sends (`m.image`, `m.audio` with or without the voice mark, `m.file`):
//! what the event says, the size bound checked from the event before fetching and again while
//! the bytes come in (the fetch stops past it: [`super::media`]; decrypted in encrypted rooms,
//! nothing written to disk), the type sniffed from the bytes, and
//! whether the platform takes it. Whatever stops an attachment gets a reply saying why.

use super::media::Fetched;
use crate::bot::Bot;
use lambda_matrix_core::Chat;
use lambda_matrix_platform::attachment::sniff::resolve_mime;
use lambda_matrix_platform::{Attachment, AttachmentKind, Refusal};
use matrix_sdk::ruma::events::room::message::{MessageType, OriginalSyncRoomMessageEvent};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId};
use matrix_sdk::Room;
use std::sync::Arc;

/// What a message says, for the conversation.
#[derive(Clone, Debug)]
pub(crate) enum Said {
    /// Text (or an emote).
    Text(String),
    /// A file, with its caption.
    Media(Media),
}

/// How the sender labelled a file (`msgtype`); the bytes decide what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    Image,
    Audio,
    Voice,
    File,
}

/// An attachment as its event describes it, before fetching.
#[derive(Clone, Debug)]
pub(crate) struct Media {
    pub(crate) declared: Declared,
    pub(crate) source: MediaSource,
    pub(crate) name: String,
    pub(crate) mime: Option<String>,
    pub(crate) size: Option<u64>,
    /// The caption ("" when there is none).
    pub(crate) caption: String,
}

/// Why an attachment is not answered (each gets a reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Over `MATRIX_MAX_ATTACHMENT_BYTES` (by the event's `info`, or by the bytes).
    TooBig { size: Option<u64>, max: u64 },
    /// The event names no usable media URL.
    Missing,
    /// The media repository (or the server it points to) did not deliver it.
    Unreachable,
    /// A video: not taken.
    Video,
    /// The platform does not take it.
    Refused(Refusal),
    /// Not text and not a file (a location, a poll, …).
    NotSupported,
}

/// What `msgtype` says: text, an attachment, or why it cannot be answered.
pub(crate) fn said_in(msgtype: &MessageType) -> Result<Said, Unusable> {
    let caption = |body: &str, filename: &Option<String>| match filename {
        Some(name) if name != body => body.to_owned(),
        _ => String::new(),
    };
    let media = |declared, source: &MediaSource, body: &str, filename: &Option<String>| Media {
        declared,
        source: source.clone(),
        name: filename.clone().unwrap_or_else(|| body.to_owned()),
        mime: None,
        size: None,
        caption: caption(body, filename),
    };
    let with_info = |mut m: Media, mime: Option<&String>, size: Option<u64>| {
        m.mime = mime.cloned();
        m.size = size;
        m
    };
    let said = match msgtype {
        MessageType::Text(text) => return Ok(Said::Text(text.body.clone())),
        MessageType::Emote(emote) => return Ok(Said::Text(emote.body.clone())),
        MessageType::Image(c) => {
            let info = c.info.as_deref();
            with_info(
                media(Declared::Image, &c.source, &c.body, &c.filename),
                info.and_then(|i| i.mimetype.as_ref()),
                info.and_then(|i| i.size).map(u64::from),
            )
        }
        MessageType::Audio(c) => {
            let declared = if c.voice.is_some() {
                Declared::Voice
            } else {
                Declared::Audio
            };
            let info = c.info.as_deref();
            with_info(
                media(declared, &c.source, &c.body, &c.filename),
                info.and_then(|i| i.mimetype.as_ref()),
                info.and_then(|i| i.size).map(u64::from),
            )
        }
        MessageType::File(c) => {
            let info = c.info.as_deref();
            with_info(
                media(Declared::File, &c.source, &c.body, &c.filename),
                info.and_then(|i| i.mimetype.as_ref()),
                info.and_then(|i| i.size).map(u64::from),
            )
        }
        MessageType::Video(_) => return Err(Unusable::Video),
        // A file event the SDK could not read (no `url` nor `file`, or a malformed one).
        other if matches!(other.msgtype(), "m.image" | "m.audio" | "m.file") => {
            return Err(Unusable::Missing)
        }
        other if other.msgtype() == "m.video" => return Err(Unusable::Video),
        _ => return Err(Unusable::NotSupported),
    };
    Ok(Said::Media(said))
}

/// The text of a conversation message for the bookkeeping of edits: a text's body, a file's
/// caption ("" without one); `None` for anything else.
pub(crate) fn conversation_text(msgtype: &MessageType) -> Option<String> {
    match said_in(msgtype) {
        Ok(Said::Text(text)) => Some(text),
        Ok(Said::Media(media)) => Some(media.caption),
        Err(_) => None,
    }
}

impl Bot {
    /// A file message without a usable link, from the owner of a chat room or direct chat:
    /// told so (the reply is its record of "handled").
    pub(crate) async fn handle_unreadable_file(
        &self,
        room: Room,
        event_id: OwnedEventId,
        sender: OwnedUserId,
    ) {
        use crate::bot::outbox::Kind;
        use matrix_sdk::ruma::events::room::message::ReplyMetadata;
        let room_id = room.room_id().as_str();
        if sender.as_str() == self.bot_id() {
            return;
        }
        if self.serving(room_id, sender.as_str()).await.is_none() {
            tracing::info!(room_id, %sender, %event_id, "unreadable file message from someone the bot does not serve here; ignored");
            return;
        }
        tracing::info!(room_id, %event_id, "a file message without a usable link; telling the person");
        let to = ReplyMetadata::new(&event_id, &sender, None);
        let text = self.texts().attachment_missing();
        if let Err(error) = self.outbox().reply(&room, to, &text, Kind::Notice).await {
            tracing::warn!(room_id, %event_id, error = format!("{error:#}"), "cannot send a reply");
        }
    }

    /// Answers what was said: text as it is, an attachment once fetched and checked (or a reply
    /// saying why not). `fresh` marks an answer to a message edited after its first answer.
    pub(crate) async fn answer_said(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        chat: Chat,
        said: Said,
        fresh: bool,
    ) {
        let media = match said {
            Said::Text(text) => {
                return self
                    .answer(room, event, chat, text, Vec::new(), fresh)
                    .await
            }
            Said::Media(media) => media,
        };
        // Held until the answer is done: the body stays in memory until then.
        let _held = self.runtime().downloads().acquire(&chat.owner).await;
        match self.fetch_attachment(&media).await {
            Ok(attachment) => {
                tracing::info!(kind = %attachment.kind, mime = %attachment.mime, size = attachment.size(), "attachment fetched");
                crate::crash_point!("after-download-before-answer");
                let caption = media.caption;
                self.answer(room, event, chat, caption, vec![attachment], fresh)
                    .await
            }
            Err(unusable) => self.refuse(room, event, &unusable).await,
        }
    }

    /// Tells the person why their message is not answered.
    pub(crate) async fn refuse(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        unusable: &Unusable,
    ) {
        tracing::info!(?unusable, "attachment not answered; telling the person why");
        let texts = self.texts();
        let text = match unusable {
            Unusable::TooBig { size, max } => texts.attachment_too_big(*size, *max),
            Unusable::Missing => texts.attachment_missing(),
            Unusable::Unreachable => texts.attachment_unreachable(),
            Unusable::Video => texts.cannot_watch_videos(),
            Unusable::Refused(Refusal::Images) => texts.cannot_see_images(),
            Unusable::Refused(Refusal::Audio) => texts.cannot_hear_audio(),
            Unusable::Refused(Refusal::FileType) => texts.cannot_read_file_type(),
            Unusable::NotSupported => texts.text_only(),
        };
        self.outbox().reply_notice(room, event, &text).await;
    }

    /// Fetches `media` into memory within `MATRIX_MEDIA_TIMEOUT`, bounded by
    /// `MATRIX_MAX_ATTACHMENT_BYTES` before (the event's `info`) and while reading (the
    /// homeserver's length, then the bytes: [`super::media`]), and checks its sniffed type
    /// against what the platform takes.
    async fn fetch_attachment(&self, media: &Media) -> Result<Attachment, Unusable> {
        let max = self.settings().limits.max_attachment_bytes;
        if let Some(size) = media.size.filter(|size| *size > max) {
            return Err(Unusable::TooBig {
                size: Some(size),
                max,
            });
        }
        let url_ok = match &media.source {
            MediaSource::Plain(uri) => uri.is_valid(),
            MediaSource::Encrypted(file) => file.url.is_valid(),
        };
        if !url_ok {
            return Err(Unusable::Missing);
        }
        let timeout = self.settings().limits.media_timeout;
        let fetch = super::media::fetch(self.client(), &media.source, max, timeout);
        let bytes = match tokio::time::timeout(timeout, fetch).await {
            Ok(Ok(Fetched::Bytes(bytes))) => bytes,
            Ok(Ok(Fetched::TooBig(size))) => return Err(Unusable::TooBig { size, max }),
            Ok(Err(error)) => {
                tracing::warn!(error = format!("{error:#}"), "cannot fetch an attachment");
                return Err(Unusable::Unreachable);
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.settings().limits.media_timeout, "fetching an attachment took too long");
                return Err(Unusable::Unreachable);
            }
        };
        let mime = resolve_mime(media.mime.as_deref(), &bytes);
        if mime.starts_with("video/") {
            return Err(Unusable::Video);
        }
        let kind = AttachmentKind::of(&mime, media.declared == Declared::Voice);
        self.platform()
            .accepts(kind, &mime)
            .map_err(Unusable::Refused)?;
        Ok(Attachment {
            kind,
            mime,
            name: media.name.clone(),
            bytes: Arc::from(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgtype(content: serde_json::Value) -> MessageType {
        serde_json::from_value::<matrix_sdk::ruma::events::room::message::RoomMessageEventContent>(
            content,
        )
        .expect("content")
        .msgtype
    }

    #[test]
    fn files_are_read_from_their_events() {
        let Ok(Said::Media(image)) = said_in(&msgtype(json!({
            "msgtype": "m.image", "body": "a cat", "filename": "cat.png",
            "url": "mxc://x/abc", "info": {"mimetype": "image/png", "size": 42}
        }))) else {
            panic!("an image")
        };
        assert_eq!(image.declared, Declared::Image);
        assert_eq!(
            (image.name.as_str(), image.caption.as_str()),
            ("cat.png", "a cat")
        );
        assert_eq!(
            (image.mime.as_deref(), image.size),
            (Some("image/png"), Some(42))
        );

        let Ok(Said::Media(voice)) = said_in(&msgtype(json!({
            "msgtype": "m.audio", "body": "voice.ogg", "url": "mxc://x/v",
            "org.matrix.msc3245.voice": {}
        }))) else {
            panic!("a voice message")
        };
        assert_eq!(voice.declared, Declared::Voice);
        assert_eq!(
            (voice.name.as_str(), voice.caption.as_str()),
            ("voice.ogg", "")
        );
        assert_eq!((voice.mime, voice.size), (None, None));

        let Ok(Said::Media(file)) = said_in(&msgtype(json!({
            "msgtype": "m.file", "body": "notes.md", "filename": "notes.md", "url": "mxc://x/f"
        }))) else {
            panic!("a file")
        };
        assert_eq!((file.declared, file.caption.as_str()), (Declared::File, ""));
    }

    #[test]
    fn what_cannot_be_answered_says_why() {
        // No usable URL: read, then refused as missing before any request (see fetch).
        let Ok(Said::Media(no_url)) = said_in(&msgtype(
            json!({"msgtype": "m.image", "body": "x.png", "url": ""}),
        )) else {
            panic!("an image")
        };
        assert!(matches!(no_url.source, MediaSource::Plain(ref uri) if !uri.is_valid()));
        let video = msgtype(json!({"msgtype": "m.video", "body": "v.mp4", "url": "mxc://x/v"}));
        assert_eq!(said_in(&video).err(), Some(Unusable::Video));
        let location =
            msgtype(json!({"msgtype": "m.location", "body": "here", "geo_uri": "geo:1,2"}));
        assert_eq!(said_in(&location).err(), Some(Unusable::NotSupported));
        let text = msgtype(json!({"msgtype": "m.text", "body": "hi"}));
        assert_eq!(conversation_text(&text).as_deref(), Some("hi"));
    }
}
