//! What answers a person's message.
//!
//! [`Platform`] is the one seam between the chat front door and whatever produces answers.
//! [`mock::MockPlatform`] is the default: deterministic, with a configurable delay and failure
//! injection, so tests and demos need nothing outside this machine.
//! [`openai::OpenAiPlatform`] answers through any OpenAI-compatible chat-completions server
//! (OpenAI, Ollama, vLLM, llama.cpp server, LocalAI). With the `fake-server` feature,
//! `fake_openai::FakeOpenAi` is a local stand-in for such a server, for tests.
//! [`attachment`] holds what a person sends besides text (images, voice messages, files).

pub mod attachment;
#[cfg(any(test, feature = "fake-server"))]
pub mod fake_openai;
pub mod mock;
pub mod openai;

use async_trait::async_trait;
use lambda_matrix_core::ChatId;
use std::time::Duration;

pub use attachment::{Attachment, AttachmentKind, AttachmentNote, Refusal};
pub use mock::{MockConfig, MockPlatform};
pub use openai::{OpenAiConfig, OpenAiPlatform};

/// Who said an earlier message of the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The person.
    User,
    /// The bot (an earlier answer).
    Assistant,
}

/// One earlier message of the chat, oldest first in [`Request::context`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// Who said it.
    pub role: Role,
    /// What was said (plain text).
    pub text: String,
    /// What it came with, described (never the bytes of earlier messages).
    pub attachments: Vec<AttachmentNote>,
}

/// One message to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The person who wrote it (opaque user id).
    pub user_id: String,
    /// Which of their chats it belongs to.
    pub chat_id: ChatId,
    /// The message text (a file's caption; may be empty when attachments came without one).
    pub text: String,
    /// Files sent with the message, in memory (checked against [`Platform::accepts`] first).
    pub attachments: Vec<Attachment>,
    /// Earlier messages of this chat, oldest first, at most [`Platform::context_messages`]; read
    /// from the chat room itself, never from a local copy.
    pub context: Vec<Turn>,
    /// The text of the message the person replied to, if they replied to one (read from the
    /// room by its id, its own reply quote removed): what "this" means in "explain this".
    pub replied_to: Option<String>,
    /// The model this chat asked for (`!model`), if it chose one: a platform that does not
    /// offer it answers with its own model instead.
    pub model: Option<String>,
    /// The chat's own instructions (`!instructions`), given to the model after the operator's
    /// system prompt.
    pub instructions: Option<String>,
}

/// How many characters an answer may have by default; a longer one is cut there.
pub const DEFAULT_MAX_ANSWER_CHARS: usize = 64_000;

/// An answer to show the person (Markdown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The answer text, in Markdown.
    pub text: String,
    /// Whether the text was cut at the platform's answer cap (the model said more).
    pub cut: bool,
    /// The tokens it cost, one entry per model that worked on it (a transcription model, then
    /// the chat model).
    pub usage: Vec<Usage>,
}

impl Answer {
    /// `text` cut after `max_chars` characters (0: [`DEFAULT_MAX_ANSWER_CHARS`]), with
    /// [`Answer::cut`] telling whether it was; no usage yet.
    pub(crate) fn capped(mut text: String, max_chars: usize) -> Answer {
        let cut = cut_after_chars(&mut text, answer_cap(max_chars));
        Answer {
            text,
            cut,
            usage: Vec::new(),
        }
    }
}

/// The tokens one model used for an answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The model, by the platform's name for it.
    pub model: String,
    /// Tokens of what was sent to it.
    pub prompt: u64,
    /// Tokens of what it produced.
    pub completion: u64,
    /// Counted from the text ([`estimate_tokens`]) because the server did not say.
    pub estimated: bool,
}

/// About how many tokens `text` is when a server does not say: one per 4 characters, rounded
/// up (the rule of thumb for English with OpenAI's tokenizers; other languages cost more).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The cap for a configured `max_answer_chars`: 0 is not a cap, it means the default.
pub(crate) fn answer_cap(max_answer_chars: usize) -> usize {
    if max_answer_chars == 0 {
        DEFAULT_MAX_ANSWER_CHARS
    } else {
        max_answer_chars
    }
}

/// Cuts `text` after `max` characters (at a character boundary); true when it was longer.
pub(crate) fn cut_after_chars(text: &mut String, max: usize) -> bool {
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            text.truncate(end);
            true
        }
        None => false,
    }
}

/// Where a streaming platform publishes the answer so far (the whole text, not a delta). The
/// receiver decides how often to show it; platforms that do not stream never touch it.
pub type Progress = tokio::sync::watch::Sender<String>;

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform took longer than allowed.
    #[error("the platform did not answer within {0:?}")]
    Timeout(Duration),
    /// The platform asked to slow down (HTTP 429).
    #[error("the platform is rate limiting (retry after {retry_after:?})")]
    RateLimited {
        /// How long the platform asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The platform refused the request (HTTP 4xx other than 429): a setting is wrong.
    #[error("the platform refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What the platform said, shortened.
        message: String,
    },
    /// The platform could not be reached or failed on its side (connection error, HTTP 5xx).
    #[error("the platform is unavailable: {0}")]
    Unavailable(String),
    /// The platform answered something that is not a valid answer.
    #[error("the platform sent a malformed response: {0}")]
    Malformed(String),
    /// Any other failure.
    #[error("the platform failed: {0}")]
    Failed(String),
}

impl PlatformError {
    /// A stable name for structured logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PlatformError::Timeout(_) => "timeout",
            PlatformError::RateLimited { .. } => "rate_limited",
            PlatformError::Rejected { .. } => "rejected",
            PlatformError::Unavailable(_) => "unavailable",
            PlatformError::Malformed(_) => "malformed",
            PlatformError::Failed(_) => "failed",
        }
    }
}

/// Something that answers messages. Implementations must be safe to call concurrently for
/// different chats.
#[async_trait]
pub trait Platform: Send + Sync + std::fmt::Debug {
    /// A short name for logs (`mock`, `openai`).
    fn name(&self) -> &'static str;

    /// How many earlier messages of the chat the platform wants in [`Request::context`] (0: none,
    /// so the adapter does not read history for it).
    fn context_messages(&self) -> usize {
        0
    }

    /// Whether the platform takes an attachment of `kind` and (sniffed) type `mime`; the
    /// default takes text only. The adapter never sends an attachment refused here.
    fn accepts(&self, kind: AttachmentKind, mime: &str) -> Result<(), Refusal> {
        let _ = mime;
        Err(Refusal::text_only(kind))
    }

    /// Answers one message. A streaming platform publishes the growing answer on `progress`;
    /// the returned [`Answer`] is always the complete text (cut at the platform's answer cap,
    /// when it was longer, with [`Answer::cut`] set).
    async fn answer(&self, request: Request, progress: &Progress) -> Result<Answer, PlatformError>;

    /// Erases everything the platform holds about a person (`!forget-me`). Must succeed when it
    /// holds nothing.
    async fn forget_person(&self, user_id: &str) -> Result<(), PlatformError>;

    /// The model that answers (the mock's is its name).
    fn model(&self) -> &str {
        self.name()
    }

    /// The models the platform offers, as it says now (for a model server: a request to it).
    async fn models(&self) -> Result<Vec<String>, PlatformError> {
        Ok(vec![self.model().to_owned()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_after_the_cap_at_a_character_boundary() {
        let answer = Answer::capped("grüß dich 👋!".into(), 11);
        assert_eq!(answer.text, "grüß dich 👋");
        assert!(answer.cut);
        let exact = Answer::capped("grüß".into(), 4);
        assert_eq!(exact.text, "grüß");
        assert!(!exact.cut);
        let zero_is_the_default = Answer::capped("x".repeat(DEFAULT_MAX_ANSWER_CHARS + 1), 0);
        assert_eq!(
            zero_is_the_default.text.chars().count(),
            DEFAULT_MAX_ANSWER_CHARS
        );
        assert!(zero_is_the_default.cut);
    }
}
