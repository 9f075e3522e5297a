//! Files a person sends with a message: images, audio and voice messages, other files.
//!
//! An [`Attachment`] carries the bytes themselves (downloaded into memory, decrypted) with what
//! the adapter learned about them: the [`AttachmentKind`], the MIME type as sniffed from the
//! bytes ([`sniff::resolve_mime`], never the sender's word alone), the file name and the size.
//! A platform says which it can take ([`crate::Platform::accepts`]); what it cannot take is
//! refused with a [`Refusal`], which the adapter turns into a reply in the person's language.

pub mod sniff;

use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// What an attachment is, as far as answering it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentKind {
    /// A picture (`image/*`).
    Image,
    /// An audio clip (`audio/*`).
    Audio,
    /// A voice message: audio the person recorded (`org.matrix.msc3245.voice`).
    Voice,
    /// Any other file.
    File,
}

impl AttachmentKind {
    /// The kind of a file of (sniffed) type `mime`; audio recorded as a voice message is
    /// [`AttachmentKind::Voice`]. A text-based image (SVG) is a file: it is read as text.
    pub fn of(mime: &str, voice: bool) -> AttachmentKind {
        match mime.split('/').next().unwrap_or_default() {
            "image" if !sniff::is_text_like(mime) => AttachmentKind::Image,
            "audio" if voice => AttachmentKind::Voice,
            "audio" => AttachmentKind::Audio,
            _ => AttachmentKind::File,
        }
    }

    /// A stable lower-case name (`image`, `audio`, `voice`, `file`).
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Audio => "audio",
            AttachmentKind::Voice => "voice",
            AttachmentKind::File => "file",
        }
    }
}

impl fmt::Display for AttachmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file sent with a message, in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// What it is.
    pub kind: AttachmentKind,
    /// Its MIME type, sniffed from the bytes where they tell (see [`sniff::resolve_mime`]).
    pub mime: String,
    /// The file name the sender gave (may be empty; never a path to open).
    pub name: String,
    /// The content, decrypted.
    pub bytes: Arc<[u8]>,
}

impl Attachment {
    /// Its size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The first 16 hex digits of the SHA-256 of the bytes (enough to tell files apart in logs
    /// and tests).
    pub fn sha256_prefix(&self) -> String {
        let digest = Sha256::digest(&self.bytes);
        digest
            .iter()
            .take(8)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Whether the bytes are text a model can read as such (see [`sniff::is_text_like`]).
    pub fn is_text(&self) -> bool {
        sniff::is_text_like(&self.mime) && std::str::from_utf8(&self.bytes).is_ok()
    }
}

impl fmt::Debug for Attachment {
    /// Never the bytes: only what they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("kind", &self.kind)
            .field("mime", &self.mime)
            .field("name", &self.name)
            .field("size", &self.size())
            .finish()
    }
}

/// An attachment of an earlier message, for context: what it was, never its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentNote {
    /// What it was (by the sender's `msgtype`: its bytes were never fetched for context).
    pub kind: AttachmentKind,
    /// The MIME type the sender gave, if any.
    pub mime: Option<String>,
    /// The file name.
    pub name: String,
    /// The size the sender gave, if any.
    pub size: Option<u64>,
}

impl AttachmentNote {
    /// A short description for a model: `[image "cat.png", image/png, 1234 bytes]`.
    pub fn describe(&self) -> String {
        let mut text = format!("[{} {:?}", self.kind, self.name);
        if let Some(mime) = &self.mime {
            text.push_str(&format!(", {mime}"));
        }
        if let Some(size) = self.size {
            text.push_str(&format!(", {size} bytes"));
        }
        text.push(']');
        text
    }
}

/// Why a platform does not take an attachment (the adapter tells the person in their language).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The model cannot see images.
    Images,
    /// The platform cannot listen to audio or voice messages.
    Audio,
    /// The platform cannot read files of this type (PDF, archives, binaries, …).
    FileType,
}

impl Refusal {
    /// What a platform that takes text only says to an attachment of `kind`.
    pub fn text_only(kind: AttachmentKind) -> Refusal {
        match kind {
            AttachmentKind::Image => Refusal::Images,
            AttachmentKind::Audio | AttachmentKind::Voice => Refusal::Audio,
            AttachmentKind::File => Refusal::FileType,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_sniffed_type() {
        assert_eq!(
            AttachmentKind::of("image/png", false),
            AttachmentKind::Image
        );
        assert_eq!(AttachmentKind::of("audio/ogg", true), AttachmentKind::Voice);
        assert_eq!(
            AttachmentKind::of("audio/ogg", false),
            AttachmentKind::Audio
        );
        assert_eq!(AttachmentKind::of("text/plain", true), AttachmentKind::File);
        assert_eq!(AttachmentKind::of("", false), AttachmentKind::File);
        assert_eq!(
            AttachmentKind::of("image/svg+xml", false),
            AttachmentKind::File
        );
    }

    #[test]
    fn the_hash_prefix_is_sha256() {
        let empty = Attachment {
            kind: AttachmentKind::File,
            mime: "text/plain".into(),
            name: "e.txt".into(),
            bytes: Arc::from(&b""[..]),
        };
        assert_eq!(empty.sha256_prefix(), "e3b0c44298fc1c14");
        assert!(!format!("{empty:?}").contains("bytes"));
        let abc = Attachment {
            bytes: Arc::from(&b"abc"[..]),
            ..empty
        };
        assert_eq!(abc.sha256_prefix(), "ba7816bf8f01cfea");
        assert!(abc.is_text());
    }

    #[test]
    fn notes_describe_without_bytes() {
        let note = AttachmentNote {
            kind: AttachmentKind::Image,
            mime: Some("image/png".into()),
            name: "cat.png".into(),
            size: Some(1234),
        };
        assert_eq!(
            note.describe(),
            "[image \"cat.png\", image/png, 1234 bytes]"
        );
        let bare = AttachmentNote {
            mime: None,
            size: None,
            ..note
        };
        assert_eq!(bare.describe(), "[image \"cat.png\"]");
    }
}
