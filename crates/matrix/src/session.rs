//! Login and session persistence.
//!
//! The saved session (`session.json` in `MATRIX_STORE_PATH`, 0600) and the SDK store are one
//! unit: a session restored into an empty crypto store would make a second Olm account for the
//! same device, which the homeserver rejects ("One time key already exists"). So the session is
//! restored only when its store is there, for the same user and homeserver; otherwise the old
//! SDK files are cleared and the bot logs in again with the password (a new device).

use crate::config::{vars, Settings};
use anyhow::{bail, Context};
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::encryption::{BackupDownloadStrategy, EncryptionSettings};
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::Client;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name the bot's devices carry in people's clients.
pub const DEVICE_NAME: &str = "lambda-matrix";

const SESSION_FILE: &str = "session.json";
const CRYPTO_DB: &str = "matrix-sdk-crypto.sqlite3";

/// What is saved beside the store.
#[derive(Serialize, Deserialize)]
struct SavedSession {
    homeserver: String,
    user_id: String,
    session: MatrixSession,
}

/// How the client got its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// The saved session was restored (same device as before).
    Restored,
    /// A password login made a new device.
    New,
}

/// The session file inside `store`.
pub fn session_path(store: &Path) -> PathBuf {
    store.join(SESSION_FILE)
}

/// Builds a client on the store and restores the saved session or logs in.
///
/// Checks everything it can before the first request: a missing password when a login is
/// needed is reported without touching the network.
pub async fn connect(settings: &Settings) -> anyhow::Result<(Client, Login)> {
    let store = &settings.store_path;
    let saved = usable_saved_session(settings);
    if saved.is_none() && settings.password.is_none() {
        bail!(
            "{} is required for the first login (no usable saved session in {})",
            vars::PASSWORD,
            store.display()
        );
    }
    if saved.is_none() {
        clear_sdk_files(store)?;
    }
    fs::create_dir_all(store)
        .with_context(|| format!("cannot create the store folder {}", store.display()))?;
    let client = build_client(settings).await?;
    match saved {
        Some(saved) => {
            let device = saved.session.meta.device_id.clone();
            client
                .matrix_auth()
                .restore_session(saved.session, RoomLoadSettings::default())
                .await
                .context("cannot restore the saved session")?;
            tracing::info!(user_id = %settings.user_id, device_id = %device, "session restored");
            Ok((client, Login::Restored))
        }
        None => {
            login(&client, settings).await?;
            Ok((client, Login::New))
        }
    }
}

/// Logs in with the password and saves the session.
async fn login(client: &Client, settings: &Settings) -> anyhow::Result<()> {
    let Some(password) = settings.password.as_ref() else {
        bail!("{} is required to log in", vars::PASSWORD);
    };
    client
        .matrix_auth()
        .login_username(settings.user_id.as_str(), password.expose())
        .initial_device_display_name(DEVICE_NAME)
        .send()
        .await
        .with_context(|| format!("login as {} failed", settings.user_id))?;
    let session = client
        .matrix_auth()
        .session()
        .context("the homeserver accepted the login but returned no session")?;
    tracing::info!(user_id = %settings.user_id, device_id = %session.meta.device_id, "logged in (new device)");
    save(settings, session)
}

async fn build_client(settings: &Settings) -> anyhow::Result<Client> {
    let requests = RequestConfig::new()
        .timeout(Duration::from_secs(60))
        .retry_limit(5)
        .max_retry_time(Duration::from_secs(30));
    let encryption = EncryptionSettings {
        auto_enable_cross_signing: true,
        // Not automatic: `identity::ensure` enables secret storage and the backup together. An
        // automatic backup created first would make that fail ("a backup already exists").
        auto_enable_backups: false,
        backup_download_strategy: BackupDownloadStrategy::AfterDecryptionFailure,
    };
    Client::builder()
        .homeserver_url(settings.homeserver.as_str())
        .with_encryption_settings(encryption)
        .sqlite_store(&settings.store_path, None)
        .request_config(requests)
        .build()
        .await
        .with_context(|| {
            format!(
                "cannot open the SDK store in {}",
                settings.store_path.display()
            )
        })
}

/// The saved session if it can be used with the store as it is, with a log line saying why not.
fn usable_saved_session(settings: &Settings) -> Option<SavedSession> {
    let path = session_path(&settings.store_path);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the saved session; logging in again");
            return None;
        }
    };
    let saved: SavedSession = match serde_json::from_str(&text) {
        Ok(saved) => saved,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "saved session is unreadable; logging in again");
            return None;
        }
    };
    let device = saved.session.meta.device_id.to_string();
    if saved.user_id != settings.user_id.as_str()
        || saved.homeserver != settings.homeserver.as_str()
    {
        tracing::warn!(
            saved_user = %saved.user_id,
            saved_homeserver = %saved.homeserver,
            "saved session is for another account or homeserver; logging in again"
        );
        return None;
    }
    if !settings.store_path.join(CRYPTO_DB).exists() {
        tracing::warn!(
            old_device_id = %device,
            "the SDK store is gone but a session was saved; logging in again as a new device \
             (the old device stays listed on the homeserver until removed)"
        );
        return None;
    }
    Some(saved)
}

/// Writes the session file, private to the user, atomically.
fn save(settings: &Settings, session: MatrixSession) -> anyhow::Result<()> {
    let path = session_path(&settings.store_path);
    let saved = SavedSession {
        homeserver: settings.homeserver.to_string(),
        user_id: settings.user_id.to_string(),
        session,
    };
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(&saved)?)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().with_context(|| format!("cannot save the session to {}", path.display()))
}

/// Removes the SDK's databases and the session from `store`, and nothing else, so a store
/// folder pointed at the wrong place never loses unrelated files.
pub fn clear_sdk_files(store: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(store) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", store.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", store.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = (name.starts_with("matrix-sdk-") && name.contains(".sqlite3"))
            || name == SESSION_FILE
            || name == "session.json.tmp";
        if ours {
            let path = entry.path();
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        tracing::info!(store = %store.display(), files = removed.len(), "cleared the old SDK store");
    }
    Ok(removed)
}

/// Logs the device out on the server and removes its local session and SDK files (a one-shot
/// that logged in leaves no stray device). Failures are logged, not returned.
pub async fn log_out(client: &Client, settings: &Settings) {
    match client.matrix_auth().logout().await {
        Ok(_) => tracing::info!("logged out the one-shot device"),
        Err(error) => {
            tracing::warn!(%error, "cannot log out the one-shot device; it stays listed on the homeserver")
        }
    }
    if let Err(error) = clear_sdk_files(&settings.store_path) {
        tracing::warn!(
            error = format!("{error:#}"),
            "cannot remove the one-shot's local session"
        );
    }
}
