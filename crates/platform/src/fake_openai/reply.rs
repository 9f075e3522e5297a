//! What the fake server says: the deterministic answer and the JSON around it.

use serde_json::{json, Value};
use std::fmt::Write as _;

/// About how many bytes [`code40k_answer`] has.
const CODE40K_BYTES: usize = 40 * 1024;

/// The conversation of a chat-completions request, as the fake reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The content of the last `user` message.
    pub last_user_message: String,
    /// How many messages come before it, not counting `system` ones.
    pub context: usize,
    /// The images of the last user message, in order.
    pub images: Vec<Image>,
}

impl Conversation {
    /// Reads `body.messages`; `None` when there is no user message.
    pub fn of(body: &Value) -> Option<Conversation> {
        let messages = body.get("messages")?.as_array()?;
        let last = messages
            .iter()
            .rposition(|message| role(message) == Some("user"))?;
        let (last_user_message, images) = read_content(messages[last].get("content")?)?;
        let context = messages[..last]
            .iter()
            .filter(|message| role(message) != Some("system"))
            .count();
        Some(Conversation {
            last_user_message,
            context,
            images,
        })
    }

    /// `openai: <last user message> (context: <n>)`, then ` (images: <n>)` when it had any.
    pub fn answer(&self) -> String {
        let answer = expected_answer(&self.last_user_message, self.context);
        match self.images.len() {
            0 => answer,
            n => format!("{answer} (images: {n})"),
        }
    }
}

/// An image of a message: its MIME type and decoded bytes.
pub type Image = (String, Vec<u8>);

/// A message's content: a string, or parts (`text`, `image_url` with a base64 data URL of an
/// image); `None` when it is neither or an image part is not such a data URL.
fn read_content(content: &Value) -> Option<(String, Vec<Image>)> {
    use base64::Engine as _;
    if let Some(text) = content.as_str() {
        return Some((text.to_owned(), Vec::new()));
    }
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for part in content.as_array()? {
        match part.get("type")?.as_str()? {
            "text" => texts.push(part.get("text")?.as_str()?.to_owned()),
            "image_url" => {
                let url = part.get("image_url")?.get("url")?.as_str()?;
                let (mime, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
                if !mime.starts_with("image/") {
                    return None;
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?;
                images.push((mime.to_owned(), bytes));
            }
            _ => return None,
        }
    }
    Some((texts.join("\n"), images))
}

/// The fake's answer to `last_user_message` after `context` earlier messages.
pub fn expected_answer(last_user_message: &str, context: usize) -> String {
    format!("openai: {last_user_message} (context: {context})")
}

/// The usage the fake reports: prompt tokens are the words (runs of non-space) of every
/// message's text in `body`, completion tokens the words of `answer`.
pub fn usage(body: &Value, answer: &str) -> Value {
    let words = |text: &str| text.split_whitespace().count();
    let prompt: usize = (body["messages"].as_array().into_iter().flatten())
        .map(|message| match &message["content"] {
            Value::String(text) => words(text),
            Value::Array(parts) => (parts.iter())
                .filter_map(|part| part["text"].as_str())
                .map(words)
                .sum(),
            _ => 0,
        })
        .sum();
    let completion = words(answer);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// A whole chat completion with `usage` (or none).
pub fn completion_with(model: &str, answer: &str, usage: Option<Value>) -> Value {
    let mut reply = completion(model, answer);
    match usage {
        Some(usage) => reply["usage"] = usage,
        None => {
            if let Some(object) = reply.as_object_mut() {
                object.remove("usage");
            }
        }
    }
    reply
}

/// The last chunk of a stream asked to include the usage: no choices, the usage.
pub fn usage_chunk(model: &str, usage: Value) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": usage,
    })
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

/// The answer to `code40k`: a fenced Rust code block of about 40 KiB whose lines are full of
/// Markdown/HTML-sensitive characters (`<`, `>`, `&`, `"`). It starts with "```rust\n" and ends
/// with "\n```".
pub fn code40k_answer() -> String {
    let mut text = String::from("```rust\n");
    let mut line = 0;
    while text.len() < CODE40K_BYTES {
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "let x{line} = a < b && c > d; // <tag attr=\"v\"> & more {line}"
        );
        line += 1;
    }
    text.push_str("```");
    text
}

/// `lines` lines of 100 `x` each, every one ending with a newline (the `flood` content).
pub fn flood_text(lines: usize) -> String {
    format!("{}\n", "x".repeat(100)).repeat(lines)
}

/// `text` cut into pieces of about `size` bytes (at character boundaries).
pub fn pieces_of(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = size.clamp(1, rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
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

    #[test]
    fn code40k_is_a_fenced_block_of_about_40_kib() {
        let code = code40k_answer();
        assert!(code.starts_with("```rust\n"), "{}", &code[..20]);
        assert!(code.ends_with("\n```"));
        assert!(
            (40 * 1024..41 * 1024).contains(&code.len()),
            "{}",
            code.len()
        );
        assert!(code.contains("let x7 = a < b && c > d; // <tag attr=\"v\"> & more 7\n"));
    }

    #[test]
    fn fixed_size_pieces_rebuild_the_text_at_character_boundaries() {
        let text = "ab👋cdé".repeat(100);
        let pieces = pieces_of(&text, 7);
        assert_eq!(pieces.concat(), text);
        let (last, others) = pieces.split_last().expect("pieces");
        assert!(
            others.iter().all(|piece| (7..=10).contains(&piece.len())),
            "{pieces:?}"
        );
        assert!((1..=10).contains(&last.len()), "{last:?}");
        assert_eq!(pieces_of("abc", 0), ["a", "b", "c"]);
    }

    #[test]
    fn flood_text_is_lines_of_a_hundred_x() {
        let text = flood_text(3);
        assert_eq!(text.len(), 303);
        assert!(text.lines().all(|line| line == "x".repeat(100)));
    }
}
