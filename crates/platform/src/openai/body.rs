//! Reading a reply's body with a bound, chunk by chunk, so a server cannot make the client hold
//! more than it should.

use super::errors;
use crate::PlatformError;
use reqwest::Response;

/// The most bytes a whole (non-streamed) reply may have; a larger one is malformed.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The most bytes read of an error reply (the rest is not read; the message is shortened
/// anyway).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The whole body of a successful reply, at most [`MAX_BODY_BYTES`] (a larger one is
/// malformed, and is not read further); `what` names the reading in a transport error.
pub async fn read_whole(response: &mut Response, what: &str) -> Result<Vec<u8>, PlatformError> {
    let too_large = || PlatformError::Malformed("the response is larger than 8 MiB".into());
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let (body, complete) = read_at_most(response, MAX_BODY_BYTES)
        .await
        .map_err(|error| errors::from_transport(what, error))?;
    if complete {
        Ok(body)
    } else {
        Err(too_large())
    }
}

/// The text of an error reply: its first [`MAX_ERROR_BODY_BYTES`] (nothing when reading
/// fails).
pub async fn read_error(response: &mut Response) -> String {
    match read_at_most(response, MAX_ERROR_BODY_BYTES).await {
        Ok((body, _)) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => String::new(),
    }
}

/// Reads the body chunk by chunk, at most `limit` bytes: the bytes, and whether that was the
/// whole body (false: it is longer, and the rest was not read).
async fn read_at_most(
    response: &mut Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}
