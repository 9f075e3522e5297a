//! The JSON of the chat-completions API: what is sent and the parts of the replies that are read.
//!
//! Replies are read leniently — unknown fields are ignored and most fields are optional — since
//! every compatible server adds or leaves out something.

use super::attach::Prepared;
use crate::{Request, Role};
use serde::{Deserialize, Serialize};

/// The body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    /// Which model answers.
    pub model: &'a str,
    /// System prompt, earlier turns, then the new message.
    pub messages: Vec<Message>,
    /// Whether to stream the answer as server-sent events.
    pub stream: bool,
    /// When streaming: ask for the token usage in a last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// [`ChatRequest::stream_options`].
#[derive(Debug, Serialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    pub include_usage: bool,
}

/// The token usage a server reports.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct WireUsage {
    /// Tokens of the request.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// One message of [`ChatRequest::messages`].
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text, or text and images.
    pub content: Content,
}

/// What a [`Message`] says.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Content {
    /// Just text.
    Text(String),
    /// Text and images (only for a new message with images, for vision models).
    Parts(Vec<Part>),
}

/// One part of [`Content::Parts`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    ImageUrl {
        /// Where it is: a data URL.
        image_url: ImageUrl,
    },
}

/// The image of a [`Part::ImageUrl`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ImageUrl {
    /// `data:<type>;base64,…`.
    pub url: String,
}

impl<'a> ChatRequest<'a> {
    /// The request for `request`: the optional system prompt and the chat's instructions (one
    /// system message), then the earlier turns oldest
    /// first (their attachments described, never sent again), then the new message as the
    /// user's, `prepared` (its text with transcripts and files, and its images).
    pub fn new(
        model: &'a str,
        system_prompt: Option<&'a str>,
        request: &'a Request,
        prepared: &Prepared,
        stream: bool,
    ) -> Self {
        // One system message (some servers' templates take only one): the operator's prompt,
        // then the chat's own instructions.
        let system = [system_prompt, request.instructions.as_deref()]
            .into_iter()
            .flatten()
            .filter(|part| !part.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        let system = (!system.is_empty()).then_some(Message {
            role: "system",
            content: Content::Text(system),
        });
        let turns = request.context.iter().map(|turn| {
            let mut lines: Vec<String> = turn.attachments.iter().map(|a| a.describe()).collect();
            if !turn.text.is_empty() {
                lines.push(turn.text.clone());
            }
            Message {
                role: match turn.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                },
                content: Content::Text(lines.join("\n")),
            }
        });
        let text = match &request.replied_to {
            Some(replied) => format!("{}{}", quote_of(replied), prepared.text),
            None => prepared.text.clone(),
        };
        let content = if prepared.images.is_empty() {
            Content::Text(text)
        } else {
            let text = (!text.is_empty()).then_some(Part::Text { text });
            let images = prepared.images.iter().map(|url| Part::ImageUrl {
                image_url: ImageUrl { url: url.clone() },
            });
            Content::Parts(text.into_iter().chain(images).collect())
        };
        let new = Message {
            role: "user",
            content,
        };
        ChatRequest {
            model,
            messages: system.into_iter().chain(turns).chain([new]).collect(),
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    /// The characters of every message's text, for an estimate of the prompt's tokens.
    pub fn text_chars(&self) -> String {
        self.messages
            .iter()
            .map(|message| match &message.content {
                Content::Text(text) => text.as_str(),
                Content::Parts(parts) => parts
                    .iter()
                    .find_map(|part| match part {
                        Part::Text { text } => Some(text.as_str()),
                        Part::ImageUrl { .. } => None,
                    })
                    .unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The message replied to, as the model sees it before the person's words: a Markdown quote.
fn quote_of(replied: &str) -> String {
    let quoted: Vec<String> = replied.lines().map(|line| format!("> {line}")).collect();
    format!("In reply to:\n{}\n\n", quoted.join("\n"))
}

/// A whole (non-streamed) answer.
#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    /// The alternatives; only the first is used.
    pub choices: Vec<Choice>,
    /// The tokens used, when the server says.
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// One alternative of a [`ChatResponse`].
#[derive(Debug, Deserialize)]
pub struct Choice {
    /// The answer.
    pub message: ResponseMessage,
}

/// The assistant's message in a [`Choice`].
#[derive(Debug, Deserialize)]
pub struct ResponseMessage {
    /// The text; `null` when the model produced none.
    #[serde(default)]
    pub content: Option<String>,
}

/// One event of a streamed answer.
#[derive(Debug, Deserialize)]
pub struct ChatChunk {
    /// The alternatives; only the first is used (may be empty, e.g. in a usage-only chunk).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Set when the server failed in the middle of the stream.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
    /// The tokens used: in the last chunk, when asked for ([`StreamOptions`]).
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// One alternative of a [`ChatChunk`].
#[derive(Debug, Deserialize)]
pub struct ChunkChoice {
    /// The new piece of the answer.
    #[serde(default)]
    pub delta: Option<Delta>,
    /// Why the answer ended (`stop`, `length`, …); set in its last chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The new piece of a streamed answer.
#[derive(Debug, Deserialize)]
pub struct Delta {
    /// The text to append, if any.
    #[serde(default)]
    pub content: Option<String>,
}

/// The reply of `POST /audio/transcriptions`.
#[derive(Debug, Deserialize)]
pub struct Transcription {
    /// What was said.
    pub text: String,
}

/// The reply of `GET /models`.
#[derive(Debug, Deserialize)]
pub struct ModelList {
    /// The served models.
    pub data: Vec<Model>,
}

/// One entry of a [`ModelList`].
#[derive(Debug, Deserialize)]
pub struct Model {
    /// The name to put in [`ChatRequest::model`].
    pub id: String,
}

/// An error reply: `{"error": {"message": …}}` (OpenAI, vLLM, llama.cpp) or `{"error": "…"}`
/// (Ollama).
#[derive(Debug, Deserialize)]
pub struct ErrorReply {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` of an [`ErrorReply`] or a [`ChatChunk`].
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ErrorDetail {
    /// `{"message": …, "type": …, …}`.
    Object {
        /// What went wrong.
        message: String,
    },
    /// Just the text.
    Text(String),
}

impl ErrorDetail {
    /// What went wrong.
    pub fn message(&self) -> &str {
        match self {
            ErrorDetail::Object { message } | ErrorDetail::Text(message) => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Turn;
    use lambda_matrix_core::ChatId;
    use serde_json::json;

    #[test]
    fn messages_are_system_then_context_then_the_new_message() {
        let request = Request {
            user_id: "@anna:x".into(),
            chat_id: ChatId::new(1).expect("id"),
            text: "and now?".into(),
            attachments: Vec::new(),
            context: vec![
                Turn {
                    role: Role::User,
                    text: "hi".into(),
                    attachments: Vec::new(),
                },
                Turn {
                    role: Role::Assistant,
                    text: "hello".into(),
                    attachments: Vec::new(),
                },
            ],
            replied_to: None,
            model: None,
            instructions: None,
        };
        let prepared = Prepared::new(&request.text, &[], Vec::new(), 100);
        let body = serde_json::to_value(ChatRequest::new(
            "m",
            Some("be brief"),
            &request,
            &prepared,
            true,
        ))
        .expect("json");
        assert_eq!(
            body,
            json!({
                "model": "m",
                "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "and now?"},
                ],
            })
        );
        let plain = ChatRequest::new("m", None, &request, &prepared, false);
        assert_eq!(plain.messages.len(), 3);
        assert_eq!(plain.messages[0].role, "user");
    }

    #[test]
    fn a_chats_instructions_follow_the_operators_prompt_in_one_system_message() {
        let mut request = Request {
            user_id: "@anna:x".into(),
            chat_id: ChatId::new(1).expect("id"),
            text: "hi".into(),
            attachments: Vec::new(),
            context: Vec::new(),
            replied_to: None,
            model: None,
            instructions: Some("answer in French".into()),
        };
        let prepared = Prepared::new(&request.text, &[], Vec::new(), 100);
        let system = |prompt: Option<&str>, request: &Request| {
            let body = ChatRequest::new("m", prompt, request, &prepared, false);
            let first = &body.messages[0];
            (first.role == "system").then(|| first.content.clone())
        };
        assert_eq!(
            system(Some("be brief"), &request),
            Some(Content::Text("be brief\n\nanswer in French".into()))
        );
        assert_eq!(
            system(None, &request),
            Some(Content::Text("answer in French".into()))
        );
        request.instructions = None;
        assert_eq!(system(None, &request), None);
    }

    #[test]
    fn a_reply_quotes_the_message_replied_to_before_the_persons_words() {
        let request = Request {
            user_id: "@anna:x".into(),
            chat_id: ChatId::new(1).expect("id"),
            text: "why?".into(),
            attachments: Vec::new(),
            context: Vec::new(),
            replied_to: Some("Paris is the capital.\nIt is big.".into()),
            model: None,
            instructions: None,
        };
        let prepared = Prepared::new(&request.text, &[], Vec::new(), 100);
        let body = serde_json::to_value(ChatRequest::new("m", None, &request, &prepared, false))
            .expect("json");
        assert_eq!(
            body["messages"][0]["content"],
            "In reply to:\n> Paris is the capital.\n> It is big.\n\nwhy?"
        );
    }

    #[test]
    fn images_are_parts_and_earlier_files_are_described() {
        let mut request = Request {
            user_id: "@anna:x".into(),
            chat_id: ChatId::new(1).expect("id"),
            text: "what is it?".into(),
            attachments: Vec::new(),
            context: vec![Turn {
                role: Role::User,
                text: "my notes".into(),
                attachments: vec![crate::AttachmentNote {
                    kind: crate::AttachmentKind::File,
                    mime: Some("text/plain".into()),
                    name: "n.txt".into(),
                    size: Some(3),
                }],
            }],
            replied_to: None,
            model: None,
            instructions: None,
        };
        request.attachments.clear();
        let prepared = Prepared {
            text: "what is it?".into(),
            images: vec!["data:image/png;base64,AAAA".into()],
            transcripts: Vec::new(),
        };
        let body = serde_json::to_value(ChatRequest::new("m", None, &request, &prepared, false))
            .expect("json");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "[file \"n.txt\", text/plain, 3 bytes]\nmy notes"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is it?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ]},
            ])
        );
    }

    #[test]
    fn both_error_shapes_are_understood() {
        let openai: ErrorReply =
            serde_json::from_str(r#"{"error":{"message":"bad key","type":"x","code":null}}"#)
                .expect("openai shape");
        assert_eq!(openai.error.message(), "bad key");
        let ollama: ErrorReply =
            serde_json::from_str(r#"{"error":"model not found"}"#).expect("ollama shape");
        assert_eq!(ollama.error.message(), "model not found");
    }

    #[test]
    fn chunks_without_choices_or_content_parse() {
        let usage: ChatChunk =
            serde_json::from_str(r#"{"choices":[],"usage":{"total_tokens":3}}"#).expect("usage");
        assert!(usage.choices.is_empty());
        let last: ChatChunk =
            serde_json::from_str(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#)
                .expect("last");
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("stop"));
        let role: ChatChunk = serde_json::from_str(
            r#"{"choices":[{"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#,
        )
        .expect("role only");
        assert!(role.choices[0]
            .delta
            .as_ref()
            .is_some_and(|d| d.content.is_none()));
    }
}
