//! The yardstick: a plain bot on the SDK's `/sync` v2, logged in as the bot's account (so it is
//! in the same rooms), replying "echo: <text>" to every text and doing nothing else. A plain v2
//! bot's first start is one initial sync; later rounds restart it as a plain bot restarts, from
//! its saved position (one request). It echoes only what arrives after a (re)start's first
//! sync, so old messages — the other bot's turn included — are not echoed.

use crate::roundtrip::{echo_texts, keep_syncing};
use lambda_matrix_testkit::Registered;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The yardstick, running or paused.
pub struct Yardstick {
    client: Client,
    syncing: Option<tokio::task::JoinHandle<()>>,
    echoing: Arc<AtomicBool>,
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
        let echoing = Arc::new(AtomicBool::new(false));
        echo_texts(&client, account.user_id.clone(), echoing.clone());
        let mut yardstick = Yardstick {
            client,
            syncing: None,
            echoing,
            _store: store,
        };
        yardstick.first_sync_then_echo().await?;
        Ok((yardstick, started.elapsed().as_secs_f64()))
    }

    /// One sync from the saved position (none at first: every room), not echoed; then echoes.
    async fn first_sync_then_echo(&mut self) -> anyhow::Result<()> {
        let first = self
            .client
            .sync_once(SyncSettings::default().timeout(Duration::ZERO))
            .await?;
        self.echoing.store(true, Ordering::SeqCst);
        self.syncing = Some(keep_syncing(&self.client, Some(first.next_batch), None));
        Ok(())
    }

    /// Stops echoing and syncing (the other bot's turn).
    pub fn pause(&mut self) {
        self.echoing.store(false, Ordering::SeqCst);
        if let Some(syncing) = self.syncing.take() {
            syncing.abort();
        }
    }

    /// Starts again from its saved position, as a plain bot restarts; returns the seconds until
    /// it was ready.
    pub async fn resume(&mut self) -> anyhow::Result<f64> {
        let started = Instant::now();
        self.first_sync_then_echo().await?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// Stops syncing and logs the device out (people stop encrypting for it).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.pause();
        self.client.matrix_auth().logout().await?;
        Ok(())
    }
}
