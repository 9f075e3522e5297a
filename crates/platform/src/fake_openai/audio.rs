//! The fake's `POST /v1/audio/transcriptions`: reads the multipart form (`model`, `file`),
//! records it, and answers `{"text": "<expected_transcript>"}`; a form without both gets 400.

/// One transcription request the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedTranscription {
    /// The `model` field.
    pub model: String,
    /// The file part's file name.
    pub file_name: String,
    /// The file part's content type.
    pub mime: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// What the fake "hears" in `bytes`: `transcribed <n> bytes`.
pub fn expected_transcript(bytes: &[u8]) -> String {
    format!("transcribed {} bytes", bytes.len())
}

/// Reads a `multipart/form-data` body with the boundary from `content_type`.
pub fn read_form(content_type: &str, body: &[u8]) -> Option<ReceivedTranscription> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut model = None;
    let mut file = None;
    for part in split(body, delimiter.as_bytes()).into_iter().skip(1) {
        if part.starts_with(b"--") {
            break; // the closing delimiter
        }
        let part = part.strip_prefix(b"\r\n")?;
        let end = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..end]).into_owned();
        let content = part[end + 4..].strip_suffix(b"\r\n")?;
        let field = |key: &str| {
            let start = head.find(&format!("{key}=\""))? + key.len() + 2;
            let len = head[start..].find('"')?;
            Some(head[start..start + len].to_owned())
        };
        match field("name")?.as_str() {
            "model" => model = Some(String::from_utf8_lossy(content).into_owned()),
            "file" => {
                let mime = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Type: "))
                    .unwrap_or_default()
                    .to_owned();
                file = Some((
                    field("filename").unwrap_or_default(),
                    mime,
                    content.to_vec(),
                ));
            }
            _ => {}
        }
    }
    let (file_name, mime, bytes) = file?;
    Some(ReceivedTranscription {
        model: model?,
        file_name,
        mime,
        bytes,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find(body, delimiter) {
        parts.push(&body[..at]);
        body = &body[at + delimiter.len()..];
    }
    parts.push(body);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_read() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.ogg\"\r\nContent-Type: audio/ogg\r\n\r\nOggS\r\n\0\r\n--b--\r\n";
        let form = read_form("multipart/form-data; boundary=b", body).expect("form");
        assert_eq!(form.model, "whisper-1");
        assert_eq!(
            (form.file_name.as_str(), form.mime.as_str()),
            ("v.ogg", "audio/ogg")
        );
        assert_eq!(form.bytes, b"OggS\r\n\0");
        assert!(read_form("multipart/form-data; boundary=b", b"--b--\r\n").is_none());
    }
}
