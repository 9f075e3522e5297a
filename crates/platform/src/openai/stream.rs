//! Reading a streamed answer: server-sent events of chat-completion chunks, published on the
//! progress channel as the answer grows.

use super::errors;
use super::sse::SseParser;
use super::wire::ChatChunk;
use crate::{PlatformError, Progress};

/// Whether the answer is complete.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More is to come.
    More,
    /// The server said the answer is complete (`[DONE]` or a `finish_reason`).
    Done,
}

/// The state of one streamed answer; pure, fed with the body's bytes.
#[derive(Debug, Default)]
pub struct AnswerStream {
    parser: SseParser,
    text: String,
}

impl AnswerStream {
    /// Feeds the next bytes of the body; publishes the whole answer so far on `progress` after
    /// each piece that added text.
    pub fn push(&mut self, bytes: &[u8], progress: &Progress) -> Result<Step, PlatformError> {
        for data in self.parser.push(bytes) {
            if self.event(&data, progress)? == Step::Done {
                return Ok(Step::Done);
            }
        }
        Ok(Step::More)
    }

    /// The body ended: the whole answer if the server had said it was complete (a last event
    /// without its blank line counts), else an error.
    pub fn finish(mut self, progress: &Progress) -> Result<String, PlatformError> {
        let done = match self.parser.finish() {
            Some(data) => self.event(&data, progress)? == Step::Done,
            None => false,
        };
        if !done {
            return Err(PlatformError::Malformed(
                "the stream ended early (no [DONE] or finish_reason)".into(),
            ));
        }
        self.into_answer()
    }

    /// The complete answer, once [`Step::Done`] was reached.
    pub fn into_answer(self) -> Result<String, PlatformError> {
        if self.text.trim().is_empty() {
            return Err(PlatformError::Malformed("the answer is empty".into()));
        }
        Ok(self.text)
    }

    /// Handles the data of one event.
    fn event(&mut self, data: &str, progress: &Progress) -> Result<Step, PlatformError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Step::Done);
        }
        if data.is_empty() {
            return Ok(Step::More);
        }
        let chunk: ChatChunk = serde_json::from_str(data).map_err(|error| {
            PlatformError::Malformed(format!("a stream event is not a chunk: {error}"))
        })?;
        if let Some(error) = chunk.error {
            return Err(PlatformError::Failed(format!(
                "the server failed mid-answer: {}",
                errors::shorten(error.message(), 200)
            )));
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(Step::More);
        };
        if let Some(piece) = choice.delta.and_then(|delta| delta.content) {
            if !piece.is_empty() {
                self.text.push_str(&piece);
                // Nobody listening is fine: the answer is returned at the end anyway.
                progress.send_replace(self.text.clone());
            }
        }
        Ok(if choice.finish_reason.is_some() {
            Step::Done
        } else {
            Step::More
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}}]})
        )
    }

    #[test]
    fn deltas_accumulate_and_are_published_whole() {
        let progress = Progress::new(String::new());
        let mut seen = progress.subscribe();
        let mut stream = AnswerStream::default();
        let first = chunk("Hello");
        assert_eq!(
            stream.push(first.as_bytes(), &progress).expect("ok"),
            Step::More
        );
        assert_eq!(*seen.borrow_and_update(), "Hello");
        let second = chunk(", world");
        let (a, b) = second.as_bytes().split_at(10);
        assert_eq!(stream.push(a, &progress).expect("ok"), Step::More);
        assert_eq!(stream.push(b, &progress).expect("ok"), Step::More);
        assert_eq!(*seen.borrow_and_update(), "Hello, world");
        assert_eq!(
            stream.push(b"data: [DONE]\n\n", &progress).expect("ok"),
            Step::Done
        );
        assert_eq!(stream.into_answer().expect("answer"), "Hello, world");
    }

    #[test]
    fn finish_reason_ends_the_answer() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        let last = r#"data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}"#;
        assert_eq!(
            stream
                .push(format!("{last}\n\n").as_bytes(), &progress)
                .expect("ok"),
            Step::Done
        );
        assert_eq!(stream.into_answer().expect("answer"), "hi");
    }

    #[test]
    fn an_unterminated_done_at_the_end_still_counts() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        stream
            .push(format!("{}data: [DONE]", chunk("x")).as_bytes(), &progress)
            .expect("ok");
        assert_eq!(stream.finish(&progress).expect("answer"), "x");
    }

    #[test]
    fn a_stream_without_an_end_is_malformed() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        stream
            .push(chunk("half").as_bytes(), &progress)
            .expect("ok");
        let error = stream.finish(&progress).expect_err("ended early");
        assert_eq!(error.kind(), "malformed");
        assert!(error.to_string().contains("ended early"), "{error}");
    }

    #[test]
    fn errors_inside_the_stream_fail() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        let error = stream
            .push(
                b"data: {\"error\":{\"message\":\"model crashed\"}}\n\n",
                &progress,
            )
            .expect_err("error");
        assert_eq!(error.kind(), "failed");
        assert!(error.to_string().contains("model crashed"), "{error}");
        let error = AnswerStream::default()
            .push(b"data: {not json\n\n", &progress)
            .expect_err("not json");
        assert_eq!(error.kind(), "malformed");
    }

    #[test]
    fn an_empty_answer_is_malformed() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        assert_eq!(
            stream.push(b"data: [DONE]\n\n", &progress).expect("ok"),
            Step::Done
        );
        assert_eq!(stream.into_answer().expect_err("empty").kind(), "malformed");
    }
}
