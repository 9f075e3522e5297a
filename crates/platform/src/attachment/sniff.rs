//! What a file really is, from its first bytes: the sender's MIME type is a hint, never trusted
//! on its own (a wrong or missing type is common, a lying one possible).

/// Types recognised by their magic bytes.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"%PDF-", "application/pdf"),
    (b"fLaC", "audio/flac"),
    (b"PK\x03\x04", "application/zip"),
];

/// The type the bytes announce, if they carry a known signature.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if let Some((_, mime)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(mime);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") {
        return match &bytes[8..12] {
            b"WEBP" => Some("image/webp"),
            b"WAVE" => Some("audio/wav"),
            _ => None,
        };
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some(match &bytes[8..12] {
            b"M4A " | b"M4B " => "audio/mp4",
            _ => "video/mp4",
        });
    }
    // An MPEG audio frame without an ID3 tag: 11 sync bits (JPEG's FF D8 is caught above).
    if bytes.len() >= 2 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0 {
        return Some("audio/mpeg");
    }
    None
}

/// Whether a file of type `mime` is text a model can read as it is (plain text, Markdown, CSV,
/// JSON, source code, …). PDF and other documents are not.
pub fn is_text_like(mime: &str) -> bool {
    let essence = essence(mime);
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/javascript"
                | "application/x-javascript"
                | "application/typescript"
                | "application/x-sh"
                | "application/x-python"
                | "application/sql"
                | "application/csv"
        )
}

/// `type/subtype` in lower case, without parameters.
fn essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The MIME type to go by: the signature in the bytes if they have one; text (the declared
/// type if it is a text type, else `text/plain`) if they are UTF-8 without NUL bytes; else
/// `application/octet-stream`. The declared type alone never decides.
pub fn resolve_mime(declared: Option<&str>, bytes: &[u8]) -> String {
    if let Some(mime) = sniff(bytes) {
        return mime.to_owned();
    }
    if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        return match declared.map(essence) {
            Some(declared) if is_text_like(&declared) => declared,
            _ => "text/plain".to_owned(),
        };
    }
    "application/octet-stream".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_recognised() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
            (b"GIF89a\x01\0", "image/gif"),
            (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
            (b"RIFF\x24\0\0\0WAVEfmt ", "audio/wav"),
            (b"OggS\0\x02\0\0\0\0\0\0\0\0OpusHead", "audio/ogg"),
            (b"ID3\x04\0\0\0\0\0\0", "audio/mpeg"),
            (b"\xff\xfb\x90\x64\0\0", "audio/mpeg"),
            (b"\0\0\0\x20ftypM4A \0\0\0\0", "audio/mp4"),
            (b"\0\0\0\x20ftypisom\0\0\0\0", "video/mp4"),
            (b"%PDF-1.7\n", "application/pdf"),
        ];
        for (bytes, mime) in cases {
            assert_eq!(sniff(bytes), Some(*mime), "{mime}");
        }
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF"), None);
        assert_eq!(sniff(b"hello"), None);
    }

    #[test]
    fn the_declared_type_is_never_trusted_alone() {
        let png = b"\x89PNG\r\n\x1a\n\0\0";
        assert_eq!(resolve_mime(Some("text/plain"), png), "image/png");
        assert_eq!(resolve_mime(None, png), "image/png");
        assert_eq!(
            resolve_mime(Some("image/png"), b"\0\x01\x02 not an image"),
            "application/octet-stream"
        );
        assert_eq!(resolve_mime(Some("image/png"), b"just text"), "text/plain");
        assert_eq!(
            resolve_mime(Some("text/markdown; charset=utf-8"), "# Grüße".as_bytes()),
            "text/markdown"
        );
        assert_eq!(
            resolve_mime(Some("application/json"), b"{}"),
            "application/json"
        );
        assert_eq!(resolve_mime(None, b"a,b\n1,2\n"), "text/plain");
        assert_eq!(resolve_mime(None, b"\xc3\x28"), "application/octet-stream");
    }

    #[test]
    fn text_like_types() {
        for yes in [
            "text/plain",
            "text/markdown",
            "text/csv",
            "text/x-rust",
            "application/json",
            "application/ld+json",
            "TEXT/PLAIN; charset=utf-8",
        ] {
            assert!(is_text_like(yes), "{yes}");
        }
        for no in [
            "application/pdf",
            "image/png",
            "application/octet-stream",
            "",
        ] {
            assert!(!is_text_like(no), "{no}");
        }
    }
}
