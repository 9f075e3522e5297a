//! A server-sent-events parser: bytes in, the `data` of complete events out.
//!
//! Pure (no I/O), so the awkward cases — a line, or a UTF-8 character, split across two network
//! chunks, CRLF line ends, comments — are unit-tested here. Only the `data` field matters to
//! chat completions; `event`, `id` and `retry` are ignored.

use crate::PlatformError;

/// The most bytes one line, and the data of one event, may have; more is an error, so a server
/// cannot make the parser grow without bound.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Collects bytes of an event stream and yields each event's data once the event is complete
/// (a blank line ends an event; several `data:` lines of one event are joined with `\n`).
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, incomplete line (at most [`MAX_EVENT_BYTES`]).
    line: Vec<u8>,
    /// The previous byte was a `\r` ending a line, so a `\n` right after it belongs to it.
    after_cr: bool,
    /// The data lines of the current event, joined (at most [`MAX_EVENT_BYTES`]).
    data: Option<String>,
}

impl SseParser {
    /// Feeds the next bytes of the stream; returns the data of every event they complete, or an
    /// error when a line or an event's data is larger than [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, PlatformError> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    if let Some(event) = self.end_line()? {
                        events.push(event);
                    }
                }
                _ if self.line.len() >= MAX_EVENT_BYTES => return Err(too_large()),
                _ => self.line.push(byte),
            }
        }
        Ok(events)
    }

    /// The stream ended: returns the data of an event that was not closed by a blank line (a
    /// lenient reading — some servers omit the final blank line).
    pub fn finish(&mut self) -> Result<Option<String>, PlatformError> {
        if !self.line.is_empty() {
            if let Some(event) = self.end_line()? {
                return Ok(Some(event));
            }
        }
        Ok(self.data.take())
    }

    /// Handles the line in `self.line`; returns an event's data when the line was blank.
    fn end_line(&mut self) -> Result<Option<String>, PlatformError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            return Ok(self.data.take());
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return Ok(None); // a comment (often a keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        if field == "data" {
            self.add_data(value)?;
        }
        Ok(None)
    }

    /// Appends one `data` line's value to the current event's data.
    fn add_data(&mut self, value: &str) -> Result<(), PlatformError> {
        match &mut self.data {
            Some(data) => {
                if data.len() + 1 + value.len() > MAX_EVENT_BYTES {
                    return Err(too_large());
                }
                data.push('\n');
                data.push_str(value);
            }
            // A line is at most MAX_EVENT_BYTES, so its value is too.
            None => self.data = Some(value.to_owned()),
        }
        Ok(())
    }
}

/// The error for a line or an event larger than [`MAX_EVENT_BYTES`].
fn too_large() -> PlatformError {
    PlatformError::Malformed("a stream event is larger than 1 MiB".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(pieces: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(parser.push(piece).expect("small events"));
        }
        events.extend(parser.finish().expect("small events"));
        events
    }

    #[test]
    fn events_end_at_blank_lines() {
        let events = parse_in_pieces(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(events, ["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let events = parse_in_pieces(&[b"data: one\r\n\r\ndata: two\r\rdata: three\n\n"]);
        assert_eq!(events, ["one", "two", "three"]);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let events = parse_in_pieces(&[b"data: one\r", b"\n", b"\r", b"\ndata: two\r\n\r\n"]);
        assert_eq!(events, ["one", "two"]);
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let events = parse_in_pieces(&[b"da", b"ta: hel", b"lo\n", b"\n"]);
        assert_eq!(events, ["hello"]);
    }

    #[test]
    fn utf8_characters_split_across_chunks_survive() {
        let text = "data: grüß dich 👋\n\n".as_bytes();
        let split = text.len() - 5; // inside the four bytes of the emoji
        let events = parse_in_pieces(&[&text[..8], &text[8..split], &text[split..]]);
        assert_eq!(events, ["grüß dich 👋"]);
        let byte_by_byte: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_in_pieces(&byte_by_byte), ["grüß dich 👋"]);
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        let events =
            parse_in_pieces(&[b": keep-alive\n\nevent: message\nid: 7\nretry: 100\ndata: x\n\n"]);
        assert_eq!(events, ["x"]);
    }

    #[test]
    fn several_data_lines_join_with_newlines() {
        let events = parse_in_pieces(&[b"data: a\ndata:b\ndata:  c\n\n"]);
        assert_eq!(events, ["a\nb\n c"]);
    }

    #[test]
    fn an_unclosed_last_event_is_returned_at_the_end() {
        assert_eq!(parse_in_pieces(&[b"data: [DONE]"]), ["[DONE]"]);
        assert_eq!(parse_in_pieces(&[b"data: [DONE]\n"]), ["[DONE]"]);
        assert!(parse_in_pieces(&[b": only a comment\n"]).is_empty());
        assert!(parse_in_pieces(&[b""]).is_empty());
    }

    #[test]
    fn an_empty_data_field_is_an_event() {
        assert_eq!(parse_in_pieces(&[b"data\n\n"]), [""]);
    }

    #[test]
    fn a_line_over_the_limit_is_an_error() {
        let mut parser = SseParser::default();
        let mut line = b"data: ".to_vec();
        line.resize(MAX_EVENT_BYTES, b'x');
        assert!(parser.push(&line).expect("at the limit").is_empty());
        let error = parser.push(b"x").expect_err("over the limit");
        assert_eq!(error.kind(), "malformed");
        assert!(error.to_string().contains("larger than 1 MiB"), "{error}");

        let mut parser = SseParser::default();
        let mut comment = b": ".to_vec();
        comment.resize(MAX_EVENT_BYTES + 1, b'x');
        assert!(parser.push(&comment).is_err(), "comments are lines too");
    }

    #[test]
    fn a_line_at_the_limit_is_still_an_event() {
        let mut parser = SseParser::default();
        let mut line = b"data: ".to_vec();
        line.resize(MAX_EVENT_BYTES, b'x');
        line.extend_from_slice(b"\n\n");
        let events = parser.push(&line).expect("at the limit");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].len(), MAX_EVENT_BYTES - "data: ".len());
    }

    #[test]
    fn event_data_over_the_limit_is_an_error() {
        let mut parser = SseParser::default();
        let half = format!("data: {}\n", "y".repeat(MAX_EVENT_BYTES / 2));
        assert!(parser.push(half.as_bytes()).expect("half").is_empty());
        let error = parser
            .push(half.as_bytes())
            .expect_err("two halves and a newline are over the limit");
        assert_eq!(error.kind(), "malformed");

        let mut parser = SseParser::default();
        let mut many = Vec::new();
        for _ in 0..MAX_EVENT_BYTES / 8 {
            many.extend_from_slice(b"data: 123456789\n"); // 16 bytes in, 10 of data
        }
        assert!(parser.push(&many).is_err(), "many short data lines add up");
    }
}
