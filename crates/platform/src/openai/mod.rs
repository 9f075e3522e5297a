//! A [`Platform`] for any OpenAI-compatible chat-completions server (OpenAI, Ollama, vLLM,
//! llama.cpp server, LocalAI, …).
//!
//! Each answer is one `POST {base_url}/chat/completions` carrying the optional system prompt,
//! the earlier turns of the chat (read from the room by the adapter) and the new message. With
//! streaming on, the growing answer is published on the [`Progress`] channel. The platform
//! keeps nothing between calls.
//!
//! Attachments are mapped as [`attach`] says: images as `image_url` parts, audio transcribed
//! through `POST {base_url}/audio/transcriptions` (the transcript quoted above the answer),
//! text files as text.
//!
//! Whatever the server sends, what is read stays bounded: an answer is cut at
//! [`OpenAiConfig::max_answer_chars`] (a stream stops being read there), one streamed event may
//! have at most [`MAX_EVENT_BYTES`], a whole reply at most [`MAX_BODY_BYTES`], and at most
//! [`MAX_ERROR_BODY_BYTES`] of an error reply are read.

mod attach;
mod body;
mod config;
mod errors;
mod models;
mod sse;
mod stream;
mod usage;
mod wire;

#[cfg(test)]
mod attach_tests;
#[cfg(test)]
mod tests;

pub use body::{MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES};
pub use config::{
    OpenAiConfig, DEFAULT_CONTEXT_MESSAGES, DEFAULT_MAX_FILE_CHARS, DEFAULT_TIMEOUT,
    DEFAULT_TRANSCRIPTION_MODEL,
};
pub use sse::MAX_EVENT_BYTES;

use crate::{
    Answer, Attachment, AttachmentKind, Platform, PlatformError, Progress, Refusal, Request,
};
use async_trait::async_trait;
use attach::Prepared;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response, Url};
use stream::{AnswerStream, Step};
use wire::{ChatRequest, ChatResponse, ModelList, Transcription};

/// Answers through an OpenAI-compatible chat-completions server. Build it with
/// [`OpenAiPlatform::connect`].
#[derive(Debug)]
pub struct OpenAiPlatform {
    config: OpenAiConfig,
    model: String,
    chat_url: Url,
    transcription_url: Url,
    client: Client,
}

impl OpenAiPlatform {
    /// Prepares the platform. When [`OpenAiConfig::model`] is unset (or empty), asks the server
    /// for its models (`GET {base_url}/models`) and uses the only one — an error names them when
    /// there are several. When a model is set, no request is made here.
    pub async fn connect(config: OpenAiConfig) -> Result<OpenAiPlatform, PlatformError> {
        let key = config.api_key.clone();
        Self::connect_inner(config)
            .await
            .map_err(|error| errors::redact(error, key.as_deref()))
    }

    async fn connect_inner(config: OpenAiConfig) -> Result<OpenAiPlatform, PlatformError> {
        let base = parse_base(&config.base_url)?;
        let client = Client::builder()
            .user_agent(concat!("lambda-matrix/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                PlatformError::Failed(format!(
                    "cannot set up the HTTP client: {}",
                    errors::describe(error)
                ))
            })?;
        let mut platform = OpenAiPlatform {
            model: String::new(),
            chat_url: endpoint(&base, &["chat", "completions"]),
            transcription_url: endpoint(&base, &["audio", "transcriptions"]),
            client,
            config,
        };
        platform.model = match platform.config.model.as_deref().map(str::trim) {
            Some(model) if !model.is_empty() => model.to_owned(),
            _ => {
                let list = platform.list_models(endpoint(&base, &["models"]));
                tokio::time::timeout(platform.config.timeout, list)
                    .await
                    .map_err(|_| PlatformError::Timeout(platform.config.timeout))?
                    .map_err(models::explain)
                    .and_then(models::only_model)?
            }
        };
        Ok(platform)
    }

    /// The model that answers (configured or discovered).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether a chat may choose `model` (`LAMBDA_OPENAI_MODELS`; empty: any the server lists).
    fn allows(&self, model: &str) -> bool {
        let allowed = &self.config.allowed_models;
        allowed.is_empty() || allowed.iter().any(|name| name == model)
    }

    /// The model that answers `request`: the chat's own while it is allowed, else the default
    /// (an allowlist that changed since the chat chose one).
    fn model_for<'a>(&'a self, request: &'a Request) -> &'a str {
        match request.model.as_deref() {
            Some(chosen) if self.allows(chosen) => chosen,
            _ => &self.model,
        }
    }

    /// The settings it was built with.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    async fn list_models(&self, url: Url) -> Result<ModelList, PlatformError> {
        let mut response = self.send(self.client.get(url)).await?;
        let body = body::read_whole(&mut response, "reading the model list failed").await?;
        serde_json::from_slice(&body)
            .map_err(|error| PlatformError::Malformed(format!("not a model list: {error}")))
    }

    /// Sends `request` (with the API key, when set); a non-success reply becomes an error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, PlatformError> {
        let request = match &self.config.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let mut response = request
            .send()
            .await
            .map_err(|error| errors::from_transport("cannot reach the server", error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = body::read_error(&mut response).await;
        Err(errors::from_status(status, &headers, &body))
    }

    /// The transcript of an audio attachment (`POST {base_url}/audio/transcriptions`).
    async fn transcribe(&self, model: &str, audio: &Attachment) -> Result<String, PlatformError> {
        let (content_type, form) = attach::transcription_form(model, audio);
        let request = (self.client.post(self.transcription_url.clone()))
            .header(CONTENT_TYPE, content_type)
            .body(form);
        let mut response = self.send(request).await?;
        let body = body::read_whole(&mut response, "reading the transcript failed").await?;
        let reply: Transcription = serde_json::from_slice(&body)
            .map_err(|error| PlatformError::Malformed(format!("not a transcription: {error}")))?;
        let text = reply.text.trim().to_owned();
        if text.is_empty() {
            return Err(PlatformError::Malformed("the transcript is empty".into()));
        }
        Ok(text)
    }

    /// The new message as it is sent: audio transcribed, files as text, images as data URLs.
    async fn prepare(&self, request: &Request) -> Result<Prepared, PlatformError> {
        let mut transcripts = Vec::new();
        for audio in (request.attachments.iter())
            .filter(|a| matches!(a.kind, AttachmentKind::Audio | AttachmentKind::Voice))
        {
            let Some(model) = self.config.transcription_model.as_deref() else {
                return Err(PlatformError::Failed(
                    "no transcription model is set".into(),
                ));
            };
            transcripts.push(self.transcribe(model, audio).await?);
        }
        Ok(Prepared::new(
            &request.text,
            &request.attachments,
            transcripts,
            self.config.max_file_chars,
        ))
    }

    async fn ask(&self, request: &Request, progress: &Progress) -> Result<Answer, PlatformError> {
        let prepared = self.prepare(request).await?;
        let body = ChatRequest::new(
            self.model_for(request),
            self.config.system_prompt.as_deref(),
            request,
            &prepared,
            self.config.stream,
        );
        let mut response = self
            .send(self.client.post(self.chat_url.clone()).json(&body))
            .await?;
        let quote = prepared.quote();
        let mut answer = if self.config.stream && is_event_stream(&response) {
            self.read_stream(&mut response, progress, quote).await?
        } else {
            self.read_whole(&mut response, quote).await?
        };
        usage::complete(&mut answer, body.model, &body.text_chars());
        let transcription = self.config.transcription_model.as_deref();
        if let (Some(model), false) = (transcription, prepared.transcripts.is_empty()) {
            answer
                .usage
                .insert(0, usage::transcribed(model, &prepared.transcripts));
        }
        Ok(answer)
    }

    /// Reads a whole (not streamed) answer; `quote` is shown before it.
    async fn read_whole(
        &self,
        response: &mut Response,
        quote: String,
    ) -> Result<Answer, PlatformError> {
        // Not streaming (or a server that ignored `stream` and sent the whole answer).
        let bytes = body::read_whole(response, "reading the answer failed").await?;
        let reply: ChatResponse = serde_json::from_slice(&bytes)
            .map_err(|error| PlatformError::Malformed(format!("not a chat completion: {error}")))?;
        let reported = reply.usage;
        let content = reply
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| PlatformError::Malformed("the reply has no choices".into()))?
            .message
            .content
            .unwrap_or_default();
        if content.trim().is_empty() {
            return Err(PlatformError::Malformed("the answer is empty".into()));
        }
        let mut answer = Answer::capped(content, self.config.max_answer_chars);
        answer.text.insert_str(0, &quote);
        answer.usage = usage::reported(reported).into_iter().collect();
        Ok(answer)
    }

    /// Reads a streamed answer, publishing it on `progress`, until the server says it is
    /// complete or it reaches the cap (then the rest is not read: the caller drops `response`,
    /// which closes the connection).
    async fn read_stream(
        &self,
        response: &mut Response,
        progress: &Progress,
        quote: String,
    ) -> Result<Answer, PlatformError> {
        let mut stream = AnswerStream::new(self.config.max_answer_chars).with_prefix(quote);
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|error| errors::from_transport("the answer stream broke off", error))?;
            match chunk {
                Some(bytes) => {
                    if stream.push(&bytes, progress)? == Step::Done {
                        return stream.into_answer(progress);
                    }
                }
                None => return stream.finish(progress),
            }
        }
    }
}

#[async_trait]
impl Platform for OpenAiPlatform {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn context_messages(&self) -> usize {
        self.config.context_messages
    }

    fn accepts(&self, kind: AttachmentKind, mime: &str) -> Result<(), Refusal> {
        attach::accepts(&self.config, kind, mime)
    }

    async fn answer(&self, request: Request, progress: &Progress) -> Result<Answer, PlatformError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.ask(&request, progress)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(errors::redact(error, self.config.api_key.as_deref())),
            Err(_) => Err(PlatformError::Timeout(timeout)),
        }
    }

    /// Nothing to erase: this platform keeps nothing about anyone — the conversation is read
    /// from the chat room for each answer and sent along with it.
    fn model(&self) -> &str {
        &self.model
    }

    async fn models(&self) -> Result<Vec<String>, PlatformError> {
        let base = parse_base(&self.config.base_url)?;
        let list = self.list_models(endpoint(&base, &["models"]));
        let list = tokio::time::timeout(self.config.timeout, list)
            .await
            .map_err(|_| PlatformError::Timeout(self.config.timeout))?
            .map_err(|error| errors::redact(error, self.config.api_key.as_deref()))?;
        Ok(list
            .data
            .into_iter()
            .map(|model| model.id)
            .filter(|id| self.allows(id))
            .collect())
    }

    async fn forget_person(&self, _user_id: &str) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// The configured base URL, checked.
fn parse_base(base_url: &str) -> Result<Url, PlatformError> {
    let invalid = |why: String| {
        PlatformError::Failed(format!(
            "the base URL {:?} is not usable: {why}",
            config::redact_url(base_url)
        ))
    };
    let url = Url::parse(base_url.trim()).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("it must start with http:// or https://".into()));
    }
    Ok(url)
}

/// `base` with `segments` appended to its path (`…/v1` or `…/v1/` + `models` → `…/v1/models`).
fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Whether the reply is a server-sent-event stream.
fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("text/event-stream"))
}
