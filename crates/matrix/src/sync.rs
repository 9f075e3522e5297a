//! Syncing with the homeserver: one initial sync, then a loop that survives errors.

use matrix_sdk::config::SyncSettings;
use matrix_sdk::Client;
use std::future::Future;
use std::time::Duration;

/// How long one long-poll waits for news.
const POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait after a failed sync; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between failed syncs.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The first sync after start: full state, no long-poll. Returns the token to continue from.
pub async fn initial(client: &Client) -> Result<String, matrix_sdk::Error> {
    let settings = SyncSettings::default()
        .full_state(true)
        .timeout(Duration::ZERO);
    let response = client.sync_once(settings).await?;
    Ok(response.next_batch)
}

/// Syncs from `token` until `shutdown` resolves. Errors are logged and retried with capped
/// exponential backoff; the token only moves forward after a sync succeeded, so nothing is skipped.
pub async fn forever(
    client: &Client,
    token: String,
    metrics: &crate::metrics::Metrics,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut settings = SyncSettings::default().token(token).timeout(POLL_TIMEOUT);
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            result = client.sync_once(settings.clone()) => match result {
                Ok(response) => {
                    if backoff != FIRST_BACKOFF {
                        tracing::info!("sync recovered");
                    }
                    backoff = FIRST_BACKOFF;
                    settings = settings.token(response.next_batch);
                }
                Err(error) => {
                    metrics.sync_error();
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "sync failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            },
        }
    }
}
