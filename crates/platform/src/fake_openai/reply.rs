//! What the fake server says: the deterministic answer and the JSON around it.

use serde_json::{json, Value};

/// The conversation of a chat-completions request, as the fake reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The content of the last `user` message.
    pub last_user_message: String,
    /// How many messages come before it, not counting `system` ones.
    pub context: usize,
}

impl Conversation {
    /// Reads `body.messages`; `None` when there is no user message.
    pub fn of(body: &Value) -> Option<Conversation> {
        let messages = body.get("messages")?.as_array()?;
        let last = messages
            .iter()
            .rposition(|message| role(message) == Some("user"))?;
        let last_user_message = messages[last].get("content")?.as_str()?.to_owned();
        let context = messages[..last]
            .iter()
            .filter(|message| role(message) != Some("system"))
            .count();
        Some(Conversation {
            last_user_message,
            context,
        })
    }

    /// `openai: <last user message> (context: <n>)`.
    pub fn answer(&self) -> String {
        expected_answer(&self.last_user_message, self.context)
    }
}

/// The fake's answer to `last_user_message` after `context` earlier messages.
pub fn expected_answer(last_user_message: &str, context: usize) -> String {
    format!("openai: {last_user_message} (context: {context})")
}

/// A whole chat completion.
pub fn completion(model: &str, answer: &str) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })
}

/// One streamed chunk: a piece of the answer, or (`piece: None`) the last, empty one.
pub fn chunk(model: &str, piece: Option<&str>, first: bool) -> Value {
    let delta = match (piece, first) {
        (Some(text), true) => json!({"role": "assistant", "content": text}),
        (Some(text), false) => json!({"content": text}),
        (None, _) => json!({}),
    };
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "delta": delta,
            "finish_reason": if piece.is_some() { Value::Null } else { json!("stop") },
        }],
    })
}

/// An OpenAI-style error body.
pub fn error(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind}})
}

/// The answer cut into streamed pieces (word by word, spaces kept).
pub fn pieces(answer: &str) -> Vec<&str> {
    answer.split_inclusive(' ').collect()
}

/// The `role` of a message.
fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_counts_messages_before_the_last_user_one_without_system() {
        let body = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "and now?"},
        ]});
        let conversation = Conversation::of(&body).expect("conversation");
        assert_eq!(conversation.answer(), "openai: and now? (context: 2)");
        assert!(Conversation::of(&json!({"messages": []})).is_none());
    }

    #[test]
    fn pieces_rebuild_the_answer() {
        let answer = "openai: a b (context: 0)";
        assert_eq!(pieces(answer).len(), 5);
        assert_eq!(pieces(answer).concat(), answer);
    }
}
