//! A server-sent-events parser: bytes in, the `data` of complete events out.
//!
//! Pure (no I/O), so the awkward cases — a line, or a UTF-8 character, split across two network
//! chunks, CRLF line ends, comments — are unit-tested here. Only the `data` field matters to
//! chat completions; `event`, `id` and `retry` are ignored.

/// Collects bytes of an event stream and yields each event's data once the event is complete
/// (a blank line ends an event; several `data:` lines of one event are joined with `\n`).
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, incomplete line.
    line: Vec<u8>,
    /// The previous byte was a `\r` ending a line, so a `\n` right after it belongs to it.
    after_cr: bool,
    /// The data lines of the current event, joined.
    data: Option<String>,
}

impl SseParser {
    /// Feeds the next bytes of the stream; returns the data of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    if let Some(event) = self.end_line() {
                        events.push(event);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    /// The stream ended: returns the data of an event that was not closed by a blank line (a
    /// lenient reading — some servers omit the final blank line).
    pub fn finish(&mut self) -> Option<String> {
        if !self.line.is_empty() {
            if let Some(event) = self.end_line() {
                return Some(event);
            }
        }
        self.data.take()
    }

    /// Handles the line in `self.line`; returns an event's data when the line was blank.
    fn end_line(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            return self.data.take();
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return None; // a comment (often a keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(pieces: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(parser.push(piece));
        }
        events.extend(parser.finish());
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
}
