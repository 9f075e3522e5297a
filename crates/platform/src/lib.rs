//! What answers a person's message.
//!
//! [`Platform`] is the one seam between the chat front door and whatever produces answers.
//! [`mock::MockPlatform`] is the default: deterministic, with a configurable delay and failure
//! injection, so tests and demos need nothing outside this machine.

pub mod mock;

use async_trait::async_trait;
use lambda_matrix_core::ChatId;

pub use mock::{MockConfig, MockPlatform};

/// One message to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The person who wrote it (opaque user id).
    pub user_id: String,
    /// Which of their chats it belongs to.
    pub chat_id: ChatId,
    /// The message text.
    pub text: String,
}

/// An answer to show the person (Markdown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The answer text, in Markdown.
    pub text: String,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform took longer than allowed.
    #[error("the platform did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The platform answered with an error.
    #[error("the platform failed: {0}")]
    Failed(String),
}

/// Something that answers messages. Implementations must be safe to call concurrently for
/// different chats.
#[async_trait]
pub trait Platform: Send + Sync + std::fmt::Debug {
    /// A short name for logs (`mock`, `openai`).
    fn name(&self) -> &'static str;

    /// Answers one message.
    async fn answer(&self, request: Request) -> Result<Answer, PlatformError>;
}
