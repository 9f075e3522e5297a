//! Attachments for an OpenAI-compatible server: images as `image_url` content parts (data
//! URLs) when the model sees images ([`OpenAiConfig::vision`]); audio and voice messages
//! transcribed through `POST {base_url}/audio/transcriptions` (multipart, like OpenAI's
//! Whisper endpoint) when [`OpenAiConfig::transcription_model`] is set, the transcript then
//! answered as the person's message and quoted back above the answer; text-like files added to
//! the message as text, at most [`OpenAiConfig::max_file_chars`] each. Anything else (PDF, other
//! documents, binaries) is refused before it is sent.

use super::OpenAiConfig;
use crate::attachment::sniff::is_text_like;
use crate::{Attachment, AttachmentKind, Refusal};
use base64::Engine as _;

/// Whether a server with `config` takes an attachment of `kind` and type `mime`.
pub(super) fn accepts(
    config: &OpenAiConfig,
    kind: AttachmentKind,
    mime: &str,
) -> Result<(), Refusal> {
    let ok = match kind {
        AttachmentKind::Image => config.vision,
        AttachmentKind::Audio | AttachmentKind::Voice => config.transcription_model.is_some(),
        AttachmentKind::File => is_text_like(mime),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::text_only(kind))
    }
}

/// The new message as sent: its text (caption, transcripts, files' text) and its images.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Prepared {
    /// The text of the user message.
    pub(super) text: String,
    /// Data URLs of the images, in order.
    pub(super) images: Vec<String>,
    /// The transcripts of audio attachments, to quote back to the person.
    pub(super) transcripts: Vec<String>,
}

impl Prepared {
    /// `caption` with the text of every text file, the images as data URLs, and `transcripts`
    /// (one per audio attachment, in order) first.
    pub(super) fn new(
        caption: &str,
        attachments: &[Attachment],
        transcripts: Vec<String>,
        max_file_chars: usize,
    ) -> Prepared {
        let mut pieces: Vec<String> = transcripts.clone();
        if !caption.trim().is_empty() {
            pieces.push(caption.to_owned());
        }
        let mut images = Vec::new();
        for attachment in attachments {
            match attachment.kind {
                AttachmentKind::Image => images.push(data_url(attachment)),
                AttachmentKind::File => pieces.push(file_text(attachment, max_file_chars)),
                AttachmentKind::Audio | AttachmentKind::Voice => {}
            }
        }
        Prepared {
            text: pieces.join("\n\n"),
            images,
            transcripts,
        }
    }

    /// What goes above the answer: each transcript as a Markdown quote after a microphone.
    pub(super) fn quote(&self) -> String {
        self.transcripts
            .iter()
            .map(|transcript| {
                let quoted: Vec<String> = transcript.lines().map(|l| format!("> {l}")).collect();
                format!("> 🎤\n{}\n\n", quoted.join("\n"))
            })
            .collect()
    }
}

/// `data:<mime>;base64,<bytes>`.
pub(super) fn data_url(attachment: &Attachment) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(&attachment.bytes);
    format!("data:{};base64,{encoded}", attachment.mime)
}

/// A text file for the model: its name and type, then its text, cut after `max_chars`
/// characters (with a line saying so).
pub(super) fn file_text(attachment: &Attachment, max_chars: usize) -> String {
    let text = String::from_utf8_lossy(&attachment.bytes);
    let mut body: String = text.chars().take(max_chars).collect();
    if text.chars().nth(max_chars).is_some() {
        body.push_str(&format!(
            "\n[… the file is cut here, after {max_chars} characters]"
        ));
    }
    format!(
        "<file name={:?} type={:?}>\n{body}\n</file>",
        attachment.name, attachment.mime
    )
}

/// A `multipart/form-data` body for `/audio/transcriptions`: its content type and bytes.
pub(super) fn transcription_form(model: &str, attachment: &Attachment) -> (String, Vec<u8>) {
    let boundary = format!("lambda-matrix-{}", attachment.sha256_prefix());
    let name: String = attachment
        .name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    let name = if name.is_empty() {
        "audio".to_owned()
    } else {
        name
    };
    let mut body = Vec::with_capacity(attachment.size() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: {}\r\n\r\n",
            attachment.mime
        )
        .as_bytes(),
    );
    body.extend_from_slice(&attachment.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn attachment(kind: AttachmentKind, mime: &str, bytes: &[u8]) -> Attachment {
        Attachment {
            kind,
            mime: mime.into(),
            name: "f".into(),
            bytes: Arc::from(bytes),
        }
    }

    #[test]
    fn what_a_server_takes_follows_its_settings() {
        let mut config = OpenAiConfig::new("http://x/v1");
        assert_eq!(accepts(&config, AttachmentKind::Image, "image/png"), Ok(()));
        assert_eq!(accepts(&config, AttachmentKind::Voice, "audio/ogg"), Ok(()));
        assert_eq!(accepts(&config, AttachmentKind::File, "text/csv"), Ok(()));
        assert_eq!(
            accepts(&config, AttachmentKind::File, "application/pdf"),
            Err(Refusal::FileType)
        );
        config.vision = false;
        config.transcription_model = None;
        assert_eq!(
            accepts(&config, AttachmentKind::Image, "image/png"),
            Err(Refusal::Images)
        );
        assert_eq!(
            accepts(&config, AttachmentKind::Audio, "audio/mpeg"),
            Err(Refusal::Audio)
        );
    }

    #[test]
    fn the_message_holds_transcripts_caption_files_and_images() {
        let files = [
            attachment(AttachmentKind::Image, "image/png", b"\x89PNG"),
            attachment(AttachmentKind::File, "text/plain", "grüße, welt".as_bytes()),
        ];
        let prepared = Prepared::new("look", &files, vec!["hello there".into()], 5);
        assert_eq!(
            prepared.text,
            "hello there\n\nlook\n\n<file name=\"f\" type=\"text/plain\">\ngrüße\n[… the file is cut here, after 5 characters]\n</file>"
        );
        assert_eq!(prepared.images, ["data:image/png;base64,iVBORw=="]);
        assert_eq!(prepared.quote(), "> 🎤\n> hello there\n\n");
        assert_eq!(Prepared::new("", &[], Vec::new(), 5).quote(), "");
    }

    #[test]
    fn the_transcription_form_carries_the_model_and_the_file() {
        let voice = attachment(AttachmentKind::Voice, "audio/ogg", b"OggS\0\x01");
        let (content_type, body) = transcription_form("whisper-1", &voice);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"),
            "{text}"
        );
        assert!(
            text.contains("filename=\"f\"\r\nContent-Type: audio/ogg\r\n\r\nOggS"),
            "{text}"
        );
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")), "{text}");
    }
}
