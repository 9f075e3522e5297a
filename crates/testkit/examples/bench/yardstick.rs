//! The yardstick: a plain bot on the SDK's `/sync` v2, logged in as the bot's account (so it is
//! in the same rooms), replying "echo: <text>" to every text and doing nothing else. A plain v2
//! bot's whole start is one initial sync; its handler is added after it, so old messages are
//! not echoed.

use crate::roundtrip::{echo_texts, keep_syncing};
use lambda_matrix_testkit::Registered;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::Client;
use std::time::{Duration, Instant};

/// A running yardstick.
pub struct Yardstick {
    client: Client,
    syncing: tokio::task::JoinHandle<()>,
    _store: tempfile::TempDir,
}

impl Yardstick {
    /// Logs in as `account` (a new device), syncs every room once, starts echoing. Returns it and
    /// the seconds from start until it was ready.
    pub async fn start(url: &str, account: &Registered) -> anyhow::Result<(Yardstick, f64)> {
        let started = Instant::now();
        let store = tempfile::Builder::new().prefix("lm-yardstick-").tempdir()?;
        // A plain bot's initial sync of every room takes minutes at 5,000 rooms.
        let client = Client::builder()
            .homeserver_url(url)
            .request_config(RequestConfig::new().timeout(Duration::from_secs(900)))
            .sqlite_store(store.path(), None)
            .build()
            .await?;
        client
            .matrix_auth()
            .login_username(&account.localpart, &account.password)
            .initial_device_display_name("yardstick")
            .send()
            .await?;
        let first = client
            .sync_once(SyncSettings::default().timeout(Duration::ZERO))
            .await?;
        let ready = started.elapsed().as_secs_f64();
        echo_texts(&client, account.user_id.clone());
        let syncing = keep_syncing(&client, Some(first.next_batch), None);
        Ok((
            Yardstick {
                client,
                syncing,
                _store: store,
            },
            ready,
        ))
    }

    /// Stops syncing and logs the device out (people stop encrypting for it).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.syncing.abort();
        self.client.matrix_auth().logout().await?;
        Ok(())
    }
}
