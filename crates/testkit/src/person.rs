//! A person in a test: a real matrix-sdk client with its own store, logged in with a password.

use crate::synapse::Registered;
use anyhow::Context;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::Client;
use std::time::Duration;

/// A logged-in person with their own device and store.
#[derive(Debug)]
pub struct Person {
    /// The client.
    pub client: Client,
    /// Who they are.
    pub account: Registered,
    _store: tempfile::TempDir,
}

impl Person {
    /// Logs `account` in against `homeserver` with a fresh store (encryption on).
    pub async fn login(homeserver: &str, account: &Registered) -> anyhow::Result<Person> {
        let store = tempfile::Builder::new().prefix("lm-person-").tempdir()?;
        let client = Client::builder()
            .homeserver_url(homeserver)
            .sqlite_store(store.path(), None)
            .build()
            .await?;
        client
            .matrix_auth()
            .login_username(&account.localpart, &account.password)
            .initial_device_display_name("test person")
            .send()
            .await
            .with_context(|| format!("login as {}", account.user_id))?;
        client
            .sync_once(SyncSettings::default().timeout(Duration::ZERO))
            .await?;
        Ok(Person {
            client,
            account: account.clone(),
            _store: store,
        })
    }

    /// One short sync, to see what changed.
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.client
            .sync_once(SyncSettings::default().timeout(Duration::from_millis(500)))
            .await?;
        Ok(())
    }
}
