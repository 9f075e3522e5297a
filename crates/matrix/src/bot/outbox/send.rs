//! Sending one event so that it arrives once: a failed send is tried again with the same
//! transaction id (the homeserver recognises a repeat and returns the first event instead of
//! making a second), with capped backoff, for `MATRIX_SEND_RETRY_FOR`. A send given up marks
//! its room undelivered: the room then stays in flight, so the next start reads it back and
//! finishes what is missing (see `inflight` and `catchup`).
//!
//! The SDK's own send queue is not used: it keeps unsent events in the SDK store and sends
//! them in the background, which would move the "handled" record (the reply on the server)
//! out of the room's ordered queue and out of reach of catch-up's view of what exists.

use super::{events, Outbox};
use crate::bot::runtime::lock;
use crate::retry::Policy;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::{OwnedEventId, TransactionId};
use matrix_sdk::Room;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Sends: 0.5 s doubling to 15 s between tries, for `MATRIX_SEND_RETRY_FOR`.
pub(crate) const SEND: Policy =
    Policy::doubling(Duration::from_millis(500), Duration::from_secs(15));
/// How long one try may take (this loop does the retrying, not the SDK).
const TRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an event was not sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The homeserver refused it as too large (413 / `M_TOO_LARGE`).
    #[error("the homeserver refused the event as too large")]
    TooLarge,
    /// Anything else, after the retries.
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// Whether trying again can help: not for a request the homeserver refused (4xx other than
/// 429), which would be refused again.
pub(crate) fn worth_retrying(error: &matrix_sdk::Error) -> bool {
    match error.as_client_api_error() {
        Some(api) => !api.status_code.is_client_error() || api.status_code.as_u16() == 429,
        None => true,
    }
}

fn too_large(error: &matrix_sdk::Error) -> bool {
    error.client_api_error_kind() == Some(&ErrorKind::TooLarge)
        || error
            .as_client_api_error()
            .is_some_and(|api| api.status_code.as_u16() == 413)
}

impl Outbox {
    /// Sends `content` as an `m.room.message`, trying again on failure with the same
    /// transaction id until `MATRIX_SEND_RETRY_FOR` has passed.
    pub(crate) async fn send_once(
        &self,
        room: &Room,
        content: &Value,
    ) -> Result<OwnedEventId, SendError> {
        let txn_id = TransactionId::new();
        let mut tries = SEND.within(self.inner.retry_for).start();
        loop {
            let started = Instant::now();
            let sent = room
                .send_raw("m.room.message", content.clone())
                .with_transaction_id(&txn_id)
                .with_request_config(RequestConfig::new().timeout(TRY_TIMEOUT).disable_retry())
                .await;
            let error = match sent {
                Ok(sent) => {
                    tracing::debug!(took_us = started.elapsed().as_micros() as u64, "sent");
                    return Ok(sent.response.event_id);
                }
                Err(error) => error,
            };
            if too_large(&error) {
                return Err(SendError::TooLarge);
            }
            let wait = match tries.failed() {
                Some(wait) if worth_retrying(&error) => wait,
                _ => return Err(SendError::Failed(error.into())),
            };
            self.inner.metrics.send_retry();
            tracing::info!(room_id = %room.room_id(), %txn_id, %error, retry_in_ms = wait.as_millis() as u64, "a send failed; trying again");
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends `content`; if the homeserver still finds it too large, sends it without HTML
    /// (the text alone is always well under the limit). A failure is logged, counted, and
    /// marks the room undelivered.
    pub(crate) async fn send_event(
        &self,
        room: &Room,
        content: Value,
    ) -> anyhow::Result<OwnedEventId> {
        let result = match self.send_once(room, &content).await {
            Err(SendError::TooLarge) => {
                tracing::warn!(room_id = %room.room_id(), size = events::wire_size(&content), "the homeserver refused an event as too large; sending it without formatting");
                self.send_once(room, &events::without_html(content)).await
            }
            other => other,
        };
        if result.is_ok() {
            crate::bot::runtime::stopwatch::acknowledged();
        }
        result.map_err(|error| {
            self.inner.metrics.send_failure();
            self.mark_undelivered(room);
            tracing::warn!(room_id = %room.room_id(), %error, "a send was given up; the answer is finished once the homeserver takes events again");
            anyhow::Error::new(error)
        })
    }

    /// Remembers that the current job of `room` could not send everything.
    fn mark_undelivered(&self, room: &Room) {
        lock(&self.inner.undelivered).insert(room.room_id().to_owned());
    }

    /// Whether the job that just ended in `room` left something unsent (and forgets it).
    pub(crate) fn take_undelivered(&self, room: &matrix_sdk::ruma::RoomId) -> bool {
        lock(&self.inner.undelivered).remove(room)
    }
}
