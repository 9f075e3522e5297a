//! The settings of an OpenAI-compatible server.

use crate::DEFAULT_MAX_ANSWER_CHARS;
use std::fmt;
use std::time::Duration;

/// How long one answer may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many characters of one text file are sent by default.
pub const DEFAULT_MAX_FILE_CHARS: usize = 32_000;

/// The transcription model asked by default.
pub const DEFAULT_TRANSCRIPTION_MODEL: &str = "whisper-1";

/// How many earlier messages of a chat are sent along by default.
pub const DEFAULT_CONTEXT_MESSAGES: usize = 20;

/// Where and how to reach an OpenAI-compatible chat-completions server (OpenAI, Ollama, vLLM,
/// llama.cpp server, LocalAI, …).
///
/// Its `Debug` output never shows the API key (nor a password inside the base URL).
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The API root, e.g. `http://127.0.0.1:11434/v1`; requests go to `{base_url}/chat/completions`
    /// and `{base_url}/models` (a trailing slash does not matter).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set; local servers usually need none.
    pub api_key: Option<String>,
    /// The model to ask; when `None`, [`OpenAiPlatform::connect`](super::OpenAiPlatform::connect)
    /// uses the server's only model.
    pub model: Option<String>,
    /// A system prompt sent before the conversation, when set.
    pub system_prompt: Option<String>,
    /// The models a chat may choose (`LAMBDA_OPENAI_MODELS`), of those the server lists; empty:
    /// every one it lists.
    pub allowed_models: Vec<String>,
    /// How long one whole answer may take (request, and streaming until the end).
    pub timeout: Duration,
    /// How many earlier messages of the chat to send along (0: only the new message).
    pub context_messages: usize,
    /// Whether to ask for a streamed answer (published on the progress channel as it grows).
    pub stream: bool,
    /// An answer longer than this many characters is cut there ([`Answer::cut`](crate::Answer::cut)
    /// set; a streamed answer stops being read at that point). 0 is not a cap and means
    /// [`DEFAULT_MAX_ANSWER_CHARS`].
    pub max_answer_chars: usize,
    /// Whether the model sees images (sent as `image_url` parts); when not, images are refused.
    pub vision: bool,
    /// The model for `/audio/transcriptions`; `None`: audio and voice messages are refused.
    pub transcription_model: Option<String>,
    /// How many characters of one text file go into the message (the rest is cut, with a note).
    pub max_file_chars: usize,
}

impl OpenAiConfig {
    /// Settings for the server at `base_url`, with no key, model discovery, no system prompt,
    /// [`DEFAULT_TIMEOUT`], [`DEFAULT_CONTEXT_MESSAGES`], streaming on and
    /// [`DEFAULT_MAX_ANSWER_CHARS`], images on, [`DEFAULT_TRANSCRIPTION_MODEL`] and
    /// [`DEFAULT_MAX_FILE_CHARS`].
    pub fn new(base_url: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key: None,
            model: None,
            system_prompt: None,
            allowed_models: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            context_messages: DEFAULT_CONTEXT_MESSAGES,
            stream: true,
            max_answer_chars: DEFAULT_MAX_ANSWER_CHARS,
            vision: true,
            transcription_model: Some(DEFAULT_TRANSCRIPTION_MODEL.to_owned()),
            max_file_chars: DEFAULT_MAX_FILE_CHARS,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("system_prompt", &self.system_prompt)
            .field("allowed_models", &self.allowed_models)
            .field("timeout", &self.timeout)
            .field("context_messages", &self.context_messages)
            .field("stream", &self.stream)
            .field("max_answer_chars", &self.max_answer_chars)
            .field("vision", &self.vision)
            .field("transcription_model", &self.transcription_model)
            .field("max_file_chars", &self.max_file_chars)
            .finish()
    }
}

/// `url` without a password in it (`https://user:redacted@host/…`), for logs and errors.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, and this one has one.
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_api_key_and_url_passwords() {
        let config = OpenAiConfig {
            api_key: Some("sk-very-secret".into()),
            ..OpenAiConfig::new("https://me:hunter2@example.org/v1")
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("example.org"), "{shown}");
        let without_key = format!("{:?}", OpenAiConfig::new("http://127.0.0.1:8080/v1"));
        assert!(without_key.contains("api_key: None"), "{without_key}");
    }
}
