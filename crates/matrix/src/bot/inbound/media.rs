//! Fetching an attachment into memory, never more than `max` bytes of it. The SDK's media API
//! reads a whole body before it returns, so a file whose event understates its size (or gives
//! none) would be held in full, bounded only by the homeserver's upload limit. Here the
//! homeserver's `Content-Length` is checked before any of the body is read, and the body is read
//! chunk by chunk and dropped as soon as it passes `max`. The authenticated media endpoint when
//! the homeserver offers it (as the SDK chooses), else the legacy one; an encrypted file is
//! decrypted once its ciphertext (the plaintext's size) is in. A failure the homeserver may not
//! repeat (5xx, 429, a broken connection) is tried again, up to three tries within the
//! caller's `MATRIX_MEDIA_TIMEOUT`. Nothing is written to disk.

use crate::retry::Policy;
use anyhow::Context;
use matrix_sdk::ruma::api::client::authenticated_media::get_content;
use matrix_sdk::ruma::api::Metadata;
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::Client;
use std::io::Read;
use std::time::Duration;

/// What a fetch brought.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// The file, decrypted.
    Bytes(Vec<u8>),
    /// More than the bound: of the size the homeserver gave, if it gave one (a body read in
    /// chunks is dropped at the bound, its size unknown).
    TooBig(Option<u64>),
}

/// A body read up to a bound.
#[derive(Debug)]
struct Bounded {
    bytes: Vec<u8>,
    max: u64,
}

impl Bounded {
    fn new(max: u64) -> Bounded {
        Bounded {
            bytes: Vec::new(),
            max,
        }
    }

    /// Adds `chunk`, or returns the size it would make when that is over the bound (keeping
    /// nothing more).
    fn push(&mut self, chunk: &[u8]) -> Result<(), u64> {
        let size = self.bytes.len() as u64 + chunk.len() as u64;
        if size > self.max {
            self.bytes = Vec::new();
            return Err(size);
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
}

/// Tries per fetch: a failure the homeserver may not repeat (a 5xx, a 429, a broken
/// connection) is tried again after a pause (0.5 s, then 1 s), three tries in all.
const FETCH: Policy = Policy::doubling(Duration::from_millis(500), Duration::from_secs(1)).tries(3);

/// Why one try failed, and whether another may succeed.
enum Failure {
    Transient(anyhow::Error),
    Final(anyhow::Error),
}

/// Fetches `source`, at most `max` bytes of it; the caller bounds the whole fetch by `timeout`
/// (each try gets that much too, instead of the SDK client's 30 s default for a request).
pub(crate) async fn fetch(
    client: &Client,
    source: &MediaSource,
    max: u64,
    timeout: Duration,
) -> anyhow::Result<Fetched> {
    let uri = match source {
        MediaSource::Plain(uri) => uri,
        MediaSource::Encrypted(file) => &file.url,
    };
    let (server, media_id) = uri.parts().context("not a media URL")?;
    let versions = client
        .supported_versions()
        .await
        .context("cannot ask the homeserver's versions")?;
    let authenticated = get_content::v1::Request::PATH_BUILDER.is_supported(&versions);
    let mut url = client.homeserver();
    {
        let Ok(mut segments) = url.path_segments_mut() else {
            anyhow::bail!("the homeserver URL cannot take a path");
        };
        segments.pop_if_empty();
        if authenticated {
            segments.extend(["_matrix", "client", "v1", "media", "download"]);
        } else {
            segments.extend(["_matrix", "media", "v3", "download"]);
        }
        segments.push(server.as_str()).push(media_id);
    }
    let mut tries = FETCH.start();
    let fetched = loop {
        let error = match download(client, url.as_str(), max, timeout).await {
            Ok(fetched) => break fetched,
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient(error)) => error,
        };
        let Some(pause) = tries.failed() else {
            return Err(error);
        };
        tracing::debug!(
            error = format!("{error:#}"),
            attempt = tries.failures(),
            "fetching an attachment failed; trying again"
        );
        tokio::time::sleep(pause).await;
    };
    match (fetched, source) {
        (Fetched::Bytes(bytes), MediaSource::Encrypted(file)) => {
            let mut cursor = std::io::Cursor::new(bytes);
            let mut reader =
                matrix_sdk_crypto::AttachmentDecryptor::new(&mut cursor, (**file).clone().into())
                    .context("cannot decrypt the file")?;
            let mut plain = Vec::new();
            reader
                .read_to_end(&mut plain)
                .context("cannot decrypt the file")?;
            Ok(Fetched::Bytes(plain))
        }
        (fetched, _) => Ok(fetched),
    }
}

/// One try at the body of `url`.
async fn download(
    client: &Client,
    url: &str,
    max: u64,
    timeout: Duration,
) -> Result<Fetched, Failure> {
    let mut request = client.http_client().get(url).timeout(timeout);
    if let Some(token) = client.access_token() {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(|error| {
        Failure::Transient(anyhow::Error::new(error).context("the media request failed"))
    })?;
    let status = response.status();
    if !status.is_success() {
        let error = anyhow::anyhow!("the media repository answered {status}");
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            Failure::Transient(error)
        } else {
            Failure::Final(error)
        });
    }
    if let Some(length) = response.content_length().filter(|length| *length > max) {
        return Ok(Fetched::TooBig(Some(length)));
    }
    let mut body = Bounded::new(max);
    loop {
        let chunk = response.chunk().await.map_err(|error| {
            Failure::Transient(anyhow::Error::new(error).context("the download broke off"))
        })?;
        let Some(chunk) = chunk else {
            return Ok(Fetched::Bytes(body.bytes));
        };
        if body.push(&chunk).is_err() {
            return Ok(Fetched::TooBig(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_kept_up_to_the_bound_and_dropped_past_it() {
        let mut body = Bounded::new(10);
        assert_eq!(body.push(b"12345"), Ok(()));
        assert_eq!(body.push(b"67890"), Ok(()), "exactly the bound is taken");
        assert_eq!(body.bytes, b"1234567890");
        assert_eq!(body.push(b"x"), Err(11), "one byte more is not");
        assert!(body.bytes.is_empty(), "what was read is let go");

        let mut body = Bounded::new(4);
        assert_eq!(
            body.push(&[0; 1 << 20]),
            Err(1 << 20),
            "a large chunk is refused whole"
        );
        assert!(body.bytes.capacity() < 1 << 20);
    }
}
