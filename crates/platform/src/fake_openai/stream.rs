//! The fake server's streamed answers (server-sent events).

use super::body::{self, Reply};
use super::{has_word, reply, State};
use hyper::body::Bytes;
use hyper::header::{HeaderName, CACHE_CONTROL, CONTENT_TYPE};
use std::time::Duration;

/// How many body bytes a streamed `flood` answer sends at most (200 MB) before its end.
const FLOOD_BYTES: usize = 200_000_000;

/// How many lines of 100 `x` one `flood` piece has (8,181 bytes, about 8 KiB).
const FLOOD_PIECE_LINES: usize = 81;

/// The headers of an event stream.
const EVENT_STREAM: [(HeaderName, &str); 2] = [
    (CONTENT_TYPE, "text/event-stream"),
    (CACHE_CONTROL, "no-cache"),
];

/// Streams `pieces` of the answer to `text`, [`super::FakeOptions::chunk_delay`] apart (1 s
/// for `slowstream`), then the last chunk, the usage chunk (when `usage` is given) and
/// `[DONE]`; `cut` and `streamerror` break it off,
/// and so does `cut_after` (the chaos): the body ends after that many pieces.
pub fn answer(
    state: &State,
    model: &str,
    text: &str,
    pieces: &[&str],
    cut_after: Option<usize>,
    usage: Option<serde_json::Value>,
) -> Reply {
    let has = |trigger: &str| has_word(text, trigger);
    let delay = if has("slowstream") {
        Duration::from_secs(1)
    } else {
        state.options.chunk_delay
    };
    let last = if let Some(n) = cut_after {
        n
    } else if has("cut") {
        2
    } else if has("streamerror") {
        1
    } else {
        pieces.len()
    };
    let events: Vec<Bytes> = (pieces.iter().take(last).enumerate())
        .map(|(index, piece)| event(&reply::chunk(model, Some(piece), index == 0)))
        .collect();
    let end = if cut_after.is_some() || has("cut") {
        None // the body ends without [DONE]
    } else if has("streamerror") {
        Some(end_stream(&reply::error(
            "The model crashed",
            "server_error",
        )))
    } else {
        let last = event(&reply::chunk(model, None, false));
        let usage = usage.map(|usage| event(&reply::usage_chunk(model, usage)));
        let done = Bytes::from("data: [DONE]\n\n");
        Some(Bytes::from(
            [Some(last), usage, Some(done)]
                .into_iter()
                .flatten()
                .flat_map(|bytes| bytes.to_vec())
                .collect::<Vec<u8>>(),
        ))
    };
    body::streamed(&EVENT_STREAM, move |body| async move {
        body.send(": keep-alive\n\n").await?;
        for (index, event) in events.into_iter().enumerate() {
            if index > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            body.send(event).await?;
        }
        match end {
            Some(end) => body.send(end).await,
            None => Ok(()),
        }
    })
}

/// Streams `flood`: the same piece of many lines of `x` as fast as the connection takes it, up
/// to [`FLOOD_BYTES`], then the end; stops at the first failed send (the client went away).
pub fn flood(model: &str) -> Reply {
    let piece = reply::flood_text(FLOOD_PIECE_LINES);
    let first = event(&reply::chunk(model, Some(&piece), true));
    let next = event(&reply::chunk(model, Some(&piece), false));
    let end = end_stream(&reply::chunk(model, None, false));
    body::streamed(&EVENT_STREAM, move |body| async move {
        let mut written = first.len();
        body.send(first).await?;
        while written < FLOOD_BYTES {
            body.send(next.clone()).await?;
            written += next.len();
        }
        body.send(end).await
    })
}

/// `data: <value>` and the blank line ending the event.
fn event(value: &serde_json::Value) -> Bytes {
    format!("data: {value}\n\n").into()
}

/// The `last` event and `[DONE]`.
fn end_stream(last: &serde_json::Value) -> Bytes {
    format!("data: {last}\n\ndata: [DONE]\n\n").into()
}
