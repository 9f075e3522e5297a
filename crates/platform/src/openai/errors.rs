//! Turning HTTP failures into [`PlatformError`]s.

use super::wire::ErrorReply;
use crate::PlatformError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::Duration;

/// How much of a server's error text is kept.
const MAX_MESSAGE_CHARS: usize = 200;

/// The error for a reply with a non-success `status`: 429 → rate limited, other 4xx →
/// rejected, 5xx → unavailable. The message comes from the body's `error.message` when the body
/// is an error JSON, else from the (shortened) body itself.
pub fn from_status(status: StatusCode, headers: &HeaderMap, body: &str) -> PlatformError {
    let message = message_of(status, body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        PlatformError::RateLimited {
            retry_after: retry_after(headers),
        }
    } else if status.is_client_error() {
        PlatformError::Rejected {
            status: status.as_u16(),
            message,
        }
    } else if status.is_server_error() {
        PlatformError::Unavailable(format!("HTTP {}: {message}", status.as_u16()))
    } else {
        PlatformError::Failed(format!("unexpected HTTP {}: {message}", status.as_u16()))
    }
}

/// The error for a request that got no reply (cannot connect, connection dropped, …).
pub fn from_transport(what: &str, error: reqwest::Error) -> PlatformError {
    PlatformError::Unavailable(format!("{what}: {}", describe(error)))
}

/// `error` with its causes (`error sending request: … : Connection refused`), without the URL.
pub fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What the server said went wrong.
fn message_of(status: StatusCode, body: &str) -> String {
    let said = match serde_json::from_str::<ErrorReply>(body) {
        Ok(reply) => reply.error.message().trim().to_owned(),
        Err(_) => body.trim().to_owned(),
    };
    if said.is_empty() {
        status.canonical_reason().unwrap_or("no details").to_owned()
    } else {
        shorten(&said, MAX_MESSAGE_CHARS)
    }
}

/// The `Retry-After` header, when it gives seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let seconds = value.parse::<f64>().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// `text` cut to at most `max` characters (an ellipsis marks the cut).
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if text[end..].chars().nth(1).is_some() => format!("{}…", &text[..end]),
        _ => text.to_owned(),
    }
}

/// `error` with every occurrence of `secret` replaced, in case a server echoed the API key.
pub fn redact(error: PlatformError, secret: Option<&str>) -> PlatformError {
    let Some(secret) = secret.filter(|secret| !secret.is_empty()) else {
        return error;
    };
    let clean = |text: String| text.replace(secret, "[redacted]");
    match error {
        PlatformError::Rejected { status, message } => PlatformError::Rejected {
            status,
            message: clean(message),
        },
        PlatformError::Unavailable(message) => PlatformError::Unavailable(clean(message)),
        PlatformError::Malformed(message) => PlatformError::Malformed(clean(message)),
        PlatformError::Failed(message) => PlatformError::Failed(clean(message)),
        other @ (PlatformError::Timeout(_) | PlatformError::RateLimited { .. }) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_map_to_kinds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let limited = from_status(StatusCode::TOO_MANY_REQUESTS, &headers, "");
        assert!(matches!(
            limited,
            PlatformError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
        ));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        let limited = from_status(StatusCode::TOO_MANY_REQUESTS, &headers, "");
        assert!(matches!(
            limited,
            PlatformError::RateLimited { retry_after: Some(d) } if d == Duration::from_millis(1500)
        ));
        let no_header = from_status(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), "");
        assert!(matches!(
            no_header,
            PlatformError::RateLimited { retry_after: None }
        ));
        let rejected = from_status(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            r#"{"error":{"message":"Incorrect API key provided"}}"#,
        );
        assert!(matches!(
            &rejected,
            PlatformError::Rejected { status: 401, message } if message == "Incorrect API key provided"
        ));
        let down = from_status(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            "<html>oops</html>",
        );
        assert_eq!(down.kind(), "unavailable");
        assert!(down.to_string().contains("502"), "{down}");
        assert!(down.to_string().contains("oops"), "{down}");
    }

    #[test]
    fn long_bodies_are_shortened_and_empty_ones_named() {
        let body = "é".repeat(500);
        let PlatformError::Rejected { message, .. } =
            from_status(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body)
        else {
            panic!("not rejected");
        };
        assert_eq!(message.chars().count(), 200);
        assert!(message.ends_with('…'));
        let PlatformError::Rejected { message, .. } =
            from_status(StatusCode::NOT_FOUND, &HeaderMap::new(), "  ")
        else {
            panic!("not rejected");
        };
        assert_eq!(message, "Not Found");
    }

    #[test]
    fn shorten_keeps_short_text() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("", 3), "");
    }

    #[test]
    fn redact_removes_the_secret_everywhere() {
        let error = PlatformError::Rejected {
            status: 401,
            message: "Incorrect API key provided: sk-123".into(),
        };
        let shown = redact(error, Some("sk-123")).to_string();
        assert!(!shown.contains("sk-123"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let untouched = redact(PlatformError::Failed("sk-123".into()), None).to_string();
        assert!(untouched.contains("sk-123"));
    }
}
