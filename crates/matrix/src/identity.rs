//! The bot's encryption identity: cross-signing, secret storage and server-side key backup, and
//! recovery with `MATRIX_RECOVERY_KEY` after the SDK store is lost.
//!
//! - First start (no secret storage on the account): cross-signing is bootstrapped (the SDK
//!   signs this device), secret storage and key backup are enabled, and the recovery key is
//!   written once to a private file beside the cache, never to the logs.
//! - A new device (store lost) with `MATRIX_RECOVERY_KEY`: the secrets are imported, the device
//!   is signed by the same identity, and room keys come back from the backup.
//! - A new device without the key: the identity is reset (people's clients will warn that the
//!   bot's identity changed) and a new recovery key is written; the bot keeps working.

use crate::config::{vars, Settings};
use anyhow::Context;
use matrix_sdk::encryption::recovery::RecoveryState;
use matrix_sdk::encryption::CrossSigningResetAuthType;
use matrix_sdk::ruma::api::client::uiaa::{
    AuthData, MatrixUserIdentifier, Password, UserIdentifier,
};
use matrix_sdk::Client;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// What happened to the identity at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// This device already had the identity's secrets.
    Intact,
    /// First start: a new identity, its recovery key written to the key file.
    Created,
    /// A new device recovered the identity with `MATRIX_RECOVERY_KEY`.
    Recovered,
    /// A new device without the key: the identity was replaced.
    Replaced,
}

/// The file the recovery key is written to: beside the cache, private.
pub fn key_file(settings: &Settings) -> PathBuf {
    let mut name = settings
        .db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".recovery-key");
    settings.db_path.with_file_name(name)
}

/// Makes sure the bot has a recoverable identity. Call after the initial sync.
pub async fn ensure(client: &Client, settings: &Settings) -> anyhow::Result<Identity> {
    let encryption = client.encryption();
    encryption.wait_for_e2ee_initialization_tasks().await;
    let recovery = encryption.recovery();
    match (recovery.state(), &settings.recovery_key) {
        (RecoveryState::Enabled, _) => Ok(Identity::Intact),
        (RecoveryState::Incomplete, Some(key)) => {
            recovery.recover(key.expose()).await.with_context(|| {
                format!(
                    "{} does not open this account's secret storage",
                    vars::RECOVERY_KEY
                )
            })?;
            tracing::info!(
                "encryption identity recovered with the recovery key; this device is signed by it"
            );
            Ok(Identity::Recovered)
        }
        (RecoveryState::Incomplete, None) => {
            tracing::warn!(
                "the bot's encryption identity cannot be recovered: this is a new device and {} is not set. \
                 Replacing the identity: people's clients will show that the bot's identity changed, and \
                 messages sent before now cannot be read by the bot",
                vars::RECOVERY_KEY
            );
            reset_identity(client, settings).await?;
            write_new_key(client, settings).await?;
            Ok(Identity::Replaced)
        }
        (state, configured) => {
            if configured.is_some() {
                tracing::warn!(
                    ?state,
                    "{} is set but the account has no secret storage yet; creating a new one",
                    vars::RECOVERY_KEY
                );
            }
            write_new_key(client, settings).await?;
            Ok(Identity::Created)
        }
    }
}

async fn reset_identity(client: &Client, settings: &Settings) -> anyhow::Result<()> {
    let Some(handle) = client.encryption().recovery().reset_identity().await? else {
        return Ok(());
    };
    let auth = match handle.auth_type() {
        CrossSigningResetAuthType::Uiaa(uiaa) => {
            let password = settings
                .password
                .as_ref()
                .with_context(|| format!("replacing the identity needs {}", vars::PASSWORD))?;
            let mut auth = Password::new(
                UserIdentifier::Matrix(MatrixUserIdentifier::new(settings.user_id.to_string())),
                password.expose().to_owned(),
            );
            auth.session = uiaa.session.clone();
            Some(AuthData::Password(auth))
        }
        CrossSigningResetAuthType::OAuth(_) => None,
    };
    handle
        .reset(auth)
        .await
        .context("cannot replace the encryption identity")?;
    Ok(())
}

/// Enables secret storage and backup, and writes the new recovery key to the key file.
async fn write_new_key(client: &Client, settings: &Settings) -> anyhow::Result<()> {
    let recovery = client.encryption().recovery();
    let key = if recovery.state() == RecoveryState::Enabled {
        recovery
            .reset_key()
            .await
            .context("cannot make a new recovery key")?
    } else {
        recovery
            .enable()
            .await
            .context("cannot enable secret storage and key backup")?
    };
    let path = key_file(settings);
    let text = format!(
        "# lambda-matrix recovery key for {user}. Keep it safe and private (a password manager).\n\
         # Put it in {var} so the bot keeps its encryption identity and can read old messages\n\
         # after losing {store}. Then you may delete this file.\n{key}\n",
        user = settings.user_id,
        var = vars::RECOVERY_KEY,
        store = settings.store_path.display(),
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write the recovery key to {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    tracing::warn!(
        file = %path.display(),
        "a new recovery key was written (not logged): store it safely and set {} from it",
        vars::RECOVERY_KEY
    );
    Ok(())
}
