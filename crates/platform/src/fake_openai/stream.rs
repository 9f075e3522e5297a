//! The fake server's streamed answers (server-sent events).

use super::http::Connection;
use super::{has_word, reply, State};
use std::io;
use std::time::Duration;

/// How many body bytes a streamed `flood` answer sends at most (200 MB) before its end.
const FLOOD_BYTES: usize = 200_000_000;

/// How many lines of 100 `x` one `flood` piece has (8,181 bytes, about 8 KiB).
const FLOOD_PIECE_LINES: usize = 81;

/// The headers of an event stream.
const EVENT_STREAM: [(&str, &str); 2] = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
];

/// Streams `pieces` of the answer to `text`, [`super::FakeOptions::chunk_delay`] apart (1 s
/// for `slowstream`), then the last chunk and `[DONE]`; `cut` and `streamerror` break it off,
/// and so does `cut_after` (the chaos): the connection closes after that many pieces.
pub async fn answer(
    socket: &mut Connection<'_>,
    state: &State,
    model: &str,
    text: &str,
    pieces: &[&str],
    cut_after: Option<usize>,
) -> io::Result<()> {
    let has = |trigger: &str| has_word(text, trigger);
    socket.write_head(200, &EVENT_STREAM).await?;
    socket.write_body(b": keep-alive\n\n").await?;
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
    for (index, piece) in pieces.iter().take(last).enumerate() {
        if index > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let event = reply::chunk(model, Some(piece), index == 0);
        socket
            .write_body(format!("data: {event}\n\n").as_bytes())
            .await?;
    }
    if cut_after.is_some() || has("cut") {
        return Ok(()); // the connection closes without [DONE]
    }
    let end = if has("streamerror") {
        reply::error("The model crashed", "server_error")
    } else {
        reply::chunk(model, None, false)
    };
    end_stream(socket, &end).await
}

/// Streams `flood`: the same piece of many lines of `x` as fast as the socket takes it, up to
/// [`FLOOD_BYTES`], then the end; stops at the first failed write (the client went away).
pub async fn flood(socket: &mut Connection<'_>, model: &str) -> io::Result<()> {
    socket.write_head(200, &EVENT_STREAM).await?;
    let piece = reply::flood_text(FLOOD_PIECE_LINES);
    let first = format!("data: {}\n\n", reply::chunk(model, Some(&piece), true));
    let next = format!("data: {}\n\n", reply::chunk(model, Some(&piece), false));
    socket.write_body(first.as_bytes()).await?;
    let mut written = first.len();
    while written < FLOOD_BYTES {
        socket.write_body(next.as_bytes()).await?;
        written += next.len();
    }
    end_stream(socket, &reply::chunk(model, None, false)).await
}

/// Sends the `last` event and `[DONE]`.
async fn end_stream(socket: &mut Connection<'_>, last: &serde_json::Value) -> io::Result<()> {
    socket
        .write_body(format!("data: {last}\n\ndata: [DONE]\n\n").as_bytes())
        .await
}
