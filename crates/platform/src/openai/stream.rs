//! Reading a streamed answer: server-sent events of chat-completion chunks, published on the
//! progress channel as the answer grows, up to the answer cap.

use super::errors;
use super::sse::SseParser;
use super::wire::{ChatChunk, WireUsage};
use crate::{answer_cap, Answer, PlatformError, Progress, Usage, DEFAULT_MAX_ANSWER_CHARS};

/// Whether the answer is complete.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More is to come.
    More,
    /// The answer is complete: the server said so (`[DONE]` or a `finish_reason`), or it reached
    /// the cap and was cut (then the rest of the body must not be read).
    Done,
}

/// The state of one streamed answer; pure, fed with the body's bytes.
///
/// The answer text is kept once, in the progress channel, and grows there in place; the stream
/// only counts its characters.
#[derive(Debug)]
pub struct AnswerStream {
    parser: SseParser,
    /// The most characters the answer may have.
    max_chars: usize,
    /// How many characters the answer has so far.
    chars: usize,
    /// Whether the answer was cut at `max_chars`.
    cut: bool,
    /// Shown before the answer (e.g. a quoted transcript); not counted against the cap.
    prefix: String,
    /// The server said the answer is complete (a `finish_reason`); the usage may follow.
    finished: bool,
    /// The tokens used, when the server said (its last chunk).
    usage: Option<WireUsage>,
}

impl Default for AnswerStream {
    /// A stream with the default cap, [`DEFAULT_MAX_ANSWER_CHARS`].
    fn default() -> Self {
        AnswerStream::new(DEFAULT_MAX_ANSWER_CHARS)
    }
}

impl AnswerStream {
    /// A stream whose answer is cut after `max_chars` characters (0: the default cap).
    pub fn new(max_chars: usize) -> Self {
        AnswerStream {
            parser: SseParser::default(),
            max_chars: answer_cap(max_chars),
            chars: 0,
            cut: false,
            prefix: String::new(),
            finished: false,
            usage: None,
        }
    }

    /// The same stream, showing `prefix` before the answer.
    pub fn with_prefix(self, prefix: String) -> Self {
        AnswerStream { prefix, ..self }
    }

    /// Feeds the next bytes of the body; appends each new piece of the answer to `progress`
    /// (whose value is the whole answer so far). [`Step::Done`] once the answer is complete or
    /// cut at the cap.
    pub fn push(&mut self, bytes: &[u8], progress: &Progress) -> Result<Step, PlatformError> {
        for data in self.parser.push(bytes)? {
            if self.event(&data, progress)? == Step::Done {
                return Ok(Step::Done);
            }
        }
        Ok(Step::More)
    }

    /// The body ended: the whole answer if the server had said it was complete (a last event
    /// without its blank line counts), else an error.
    pub fn finish(mut self, progress: &Progress) -> Result<Answer, PlatformError> {
        let done = match self.parser.finish()? {
            Some(data) => self.event(&data, progress)? == Step::Done,
            None => false,
        } || self.finished;
        if !done {
            return Err(PlatformError::Malformed(
                "the stream ended early (no [DONE] or finish_reason)".into(),
            ));
        }
        self.into_answer(progress)
    }

    /// The complete answer (read from `progress`, where it grew), once [`Step::Done`] was
    /// reached.
    pub fn into_answer(self, progress: &Progress) -> Result<Answer, PlatformError> {
        let text = progress.borrow();
        if self.chars == 0 || text.trim().is_empty() {
            return Err(PlatformError::Malformed("the answer is empty".into()));
        }
        // The model is the caller's to name.
        let usage = self.usage.map(|usage| Usage {
            model: String::new(),
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            estimated: false,
        });
        Ok(Answer {
            text: text.clone(),
            cut: self.cut,
            usage: usage.into_iter().collect(),
        })
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
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            // A usage-only chunk ends an answer the server said was complete.
            return Ok(if self.finished && self.usage.is_some() {
                Step::Done
            } else {
                Step::More
            });
        };
        if let Some(piece) = choice.delta.and_then(|delta| delta.content) {
            if self.append(&piece, progress) == Step::Done {
                return Ok(Step::Done);
            }
        }
        if choice.finish_reason.is_some() {
            // Complete; the usage comes in a chunk of its own, then `[DONE]` (or the end).
            self.finished = true;
            if self.usage.is_some() {
                return Ok(Step::Done);
            }
        }
        Ok(Step::More)
    }

    /// Appends `piece` to the answer on `progress`, as much of it as the cap leaves room for;
    /// [`Step::Done`] when it did not all fit (the answer is cut).
    fn append(&mut self, piece: &str, progress: &Progress) -> Step {
        let (kept, count, cut) = first_chars(piece, self.max_chars - self.chars);
        if !kept.is_empty() {
            let fresh = self.chars == 0;
            // Nobody listening is fine: the value is kept and read back at the end.
            progress.send_modify(|text| {
                if fresh {
                    text.clear(); // whatever was there before this answer
                    text.push_str(&self.prefix);
                }
                text.push_str(kept);
            });
            self.chars += count;
        }
        if cut {
            self.cut = true;
            Step::Done
        } else {
            Step::More
        }
    }
}

/// The first `max` characters of `text`, how many characters that is, and whether `text` was
/// longer.
fn first_chars(text: &str, max: usize) -> (&str, usize, bool) {
    let mut count = 0;
    for (index, _) in text.char_indices() {
        if count == max {
            return (&text[..index], count, true);
        }
        count += 1;
    }
    (text, count, false)
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
        assert_eq!(
            stream.into_answer(&progress).expect("answer").text,
            "Hello, world"
        );
    }

    #[test]
    fn finish_reason_completes_the_answer_and_its_usage_may_follow() {
        let last = r#"data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}"#;
        let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1}}"#;
        // The body ends after the finish: complete, no usage said.
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        let step = stream.push(format!("{last}\n\n").as_bytes(), &progress);
        assert_eq!(step.expect("ok"), Step::More, "the usage may follow");
        let answer = stream.finish(&progress).expect("complete");
        assert_eq!((answer.text.as_str(), answer.usage.len()), ("hi", 0));
        // The usage chunk follows: it ends the answer, and is kept.
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        let body = format!("{last}\n\n{usage}\n\n");
        let step = stream.push(body.as_bytes(), &progress);
        assert_eq!(step.expect("ok"), Step::Done);
        let answer = stream.into_answer(&progress).expect("answer");
        assert_eq!((answer.usage[0].prompt, answer.usage[0].completion), (9, 1));
    }

    #[test]
    fn an_unterminated_done_at_the_end_still_counts() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::default();
        stream
            .push(format!("{}data: [DONE]", chunk("x")).as_bytes(), &progress)
            .expect("ok");
        assert_eq!(stream.finish(&progress).expect("answer").text, "x");
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
        assert_eq!(
            stream.into_answer(&progress).expect_err("empty").kind(),
            "malformed"
        );
    }

    #[test]
    fn the_progress_shows_the_whole_answer_after_each_chunk() {
        let progress = Progress::new("an older answer".into());
        let mut seen = progress.subscribe();
        let mut stream = AnswerStream::default();
        let mut expected = String::new();
        for piece in ["Grüß ", "dich, ", "👋 ", "world"] {
            stream.push(chunk(piece).as_bytes(), &progress).expect("ok");
            expected.push_str(piece);
            assert!(seen.has_changed().expect("sender alive"), "{piece}");
            assert_eq!(*seen.borrow_and_update(), expected);
        }
        stream.push(b"data: [DONE]\n\n", &progress).expect("ok");
        let answer = stream.into_answer(&progress).expect("answer");
        assert_eq!(answer.text, "Grüß dich, 👋 world");
        assert!(!answer.cut);
    }

    #[test]
    fn an_answer_over_the_cap_is_cut_there_and_ends_the_stream() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::new(10);
        assert_eq!(
            stream
                .push(chunk("grüß ").as_bytes(), &progress)
                .expect("ok"),
            Step::More
        );
        assert_eq!(
            stream
                .push(chunk("👋👋").as_bytes(), &progress)
                .expect("ok"),
            Step::More
        );
        let rest = format!("{}{}", chunk("äöü und mehr"), chunk("never read"));
        assert_eq!(
            stream.push(rest.as_bytes(), &progress).expect("ok"),
            Step::Done
        );
        assert_eq!(*progress.borrow(), "grüß 👋👋äöü");
        let answer = stream.into_answer(&progress).expect("answer");
        assert_eq!(answer.text, "grüß 👋👋äöü");
        assert_eq!(answer.text.chars().count(), 10);
        assert!(answer.cut);
    }

    #[test]
    fn an_answer_exactly_at_the_cap_is_not_cut() {
        let progress = Progress::new(String::new());
        let mut stream = AnswerStream::new(5);
        assert_eq!(
            stream
                .push(chunk("grüß!").as_bytes(), &progress)
                .expect("ok"),
            Step::More
        );
        assert_eq!(
            stream.push(b"data: [DONE]\n\n", &progress).expect("ok"),
            Step::Done
        );
        let answer = stream.into_answer(&progress).expect("answer");
        assert_eq!(answer.text, "grüß!");
        assert!(!answer.cut);
    }

    #[test]
    fn an_oversized_event_is_malformed() {
        let progress = Progress::new(String::new());
        let huge = chunk(&"x".repeat(super::super::sse::MAX_EVENT_BYTES));
        let error = AnswerStream::default()
            .push(huge.as_bytes(), &progress)
            .expect_err("too large");
        assert_eq!(error.kind(), "malformed");
    }
}
