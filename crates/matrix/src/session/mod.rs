//! Login and session persistence.
//!
//! The saved session (`session.json` in `MATRIX_STORE_PATH`, 0600) and the SDK store are one
//! unit: a session restored into an empty crypto store would make a second Olm account for the
//! same device, which the homeserver rejects ("One time key already exists"). So the session is
//! restored only when its store is there, for the same user and homeserver; otherwise the old
//! SDK files are cleared and the bot logs in again with the password (a new device).
//!
//! After login or restore the homeserver is asked who the session belongs to
//! (`/account/whoami`); if that is not `MATRIX_USER` exactly (Synapse matches the localpart of a
//! login without regard to case, `@Bot:example.org` logs in as `@bot:example.org`), the bot stops
//! before it reads a room, and a device it just logged in is logged out again. Cross-signing is
//! bootstrapped only after that check, so a mistyped id never gives the account an identity.

mod files;
mod lost;
mod probe;
mod token;

pub use files::{clear_sdk_files, store_files};
pub use probe::{probe, Source};

pub use lost::{lost, lost_in, SessionLost, EXIT_SESSION_LOST};

use crate::config::{vars, Settings};
use anyhow::{bail, Context};
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::encryption::{BackupDownloadStrategy, EncryptionSettings};
use matrix_sdk::ruma::api::client::uiaa::{
    AuthData, MatrixUserIdentifier, Password, UserIdentifier,
};
use matrix_sdk::ruma::api::error::ErrorKind;
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
    /// The digest of the `MATRIX_ACCESS_TOKEN` given when this was saved (see `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    given_token: Option<String>,
}

/// How the client got its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// The saved session was restored (same device as before).
    Restored,
    /// A password login made a new device, saved in the store.
    New,
    /// The operator's token (`MATRIX_ACCESS_TOKEN`) was used: only `reset` logs it out.
    Given,
    /// A password login made a new device kept only in memory ([`connect_untouched`]): nothing
    /// was written to the store; log it out with [`log_out`] when done.
    InMemory,
}

/// Where a client keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    /// The SDK store in `MATRIX_STORE_PATH`.
    Store,
    /// Memory only: nothing on disk.
    Memory,
}

/// The session file inside `store`.
pub fn session_path(store: &Path) -> PathBuf {
    store.join(SESSION_FILE)
}

/// Builds a client on the store and restores the saved session or logs in, then makes sure the
/// homeserver knows the session as `MATRIX_USER` ([`confirm_identity`]) before anything else.
///
/// Checks everything it can before the first request: a missing password when a login is
/// needed is reported without touching the network.
pub async fn connect(settings: &Settings) -> anyhow::Result<(Client, Login)> {
    let store = &settings.files.store_path;
    refuse_other_case(settings)?;
    let saved = usable_saved_session(settings);
    if let Some(given) = token::newly_given(settings, saved.as_ref()) {
        return token::restore(settings, given, saved).await;
    }
    if saved.is_none() && settings.identity.password.is_none() {
        bail!(
            "{} (or {} with {}) is required for the first login (no usable saved session in {})",
            vars::PASSWORD,
            vars::ACCESS_TOKEN,
            vars::DEVICE_ID,
            store.display()
        );
    }
    if saved.is_none() {
        clear_sdk_files(store)?;
    }
    fs::create_dir_all(store)
        .with_context(|| format!("cannot create the store folder {}", store.display()))?;
    let client = build_client(settings, Storage::Store).await?;
    match saved {
        Some(saved) => {
            let device = saved.session.meta.device_id.clone();
            forget_sdk_sync_token(&client).await;
            client
                .matrix_auth()
                .restore_session(saved.session, RoomLoadSettings::default())
                .await
                .context("cannot restore the saved session")?;
            // The saved device stays: it is the account's, only the settings are wrong.
            if let Err(error) = confirm_identity(&client, settings).await {
                return match lost_in(&error) {
                    Some(lost) => relogin(client, settings, lost, &device).await,
                    None => Err(error),
                };
            }
            tracing::info!(user_id = %settings.identity.user_id, device_id = %device, "session restored");
            bootstrap_cross_signing(&client, None).await;
            Ok((client, Login::Restored))
        }
        None => log_in(client, settings, None).await,
    }
}

/// Logs in with the password (as `device` after a soft logout, else as a new device), makes
/// sure the homeserver knows the session as `MATRIX_USER` (else the device just logged in is
/// logged out again), saves the session and sets up cross-signing.
async fn log_in(
    client: Client,
    settings: &Settings,
    device: Option<&matrix_sdk::ruma::DeviceId>,
) -> anyhow::Result<(Client, Login)> {
    let session = login_as(&client, settings, device).await?;
    if let Err(error) = confirm_identity(&client, settings).await {
        log_out(&client, settings, Login::New).await;
        return Err(error);
    }
    save(settings, session)?;
    bootstrap_cross_signing(&client, password_auth(settings)).await;
    Ok((client, Login::New))
}

/// The saved session was refused ([`SessionLost`]): logs in again with the password, as the
/// same device after a soft logout (its store stays), else as a new device (the old SDK files
/// go; the encryption identity is recovered with the recovery key). Without a password the
/// session stays lost.
async fn relogin(
    client: Client,
    settings: &Settings,
    lost: SessionLost,
    device: &matrix_sdk::ruma::DeviceId,
) -> anyhow::Result<(Client, Login)> {
    if settings.identity.password.is_none() {
        return Err(lost.into());
    }
    tracing::warn!(device_id = %device, soft_logout = lost.soft_logout, "the homeserver no longer accepts the bot's session (its device was logged out, or its token expired); logging in again");
    let (client, same_device) = if lost.soft_logout {
        (client, Some(device))
    } else {
        drop(client);
        clear_sdk_files(&settings.files.store_path)?;
        (build_client(settings, Storage::Store).await?, None)
    };
    log_in(client, settings, same_device).await
}

/// Removes the SDK's own copy of the `/sync` v2 position before the session is restored (which
/// loads it). The bot syncs from its own position (`sync::v2`), saved only after a response was
/// handled; the SDK's copy is saved before the handlers run, and the SDK skips a response whose
/// `next_batch` equals its copy ("the same sync response twice"). After a crash between the two
/// saves, the bot asks again from its older position, the server answers with that same
/// `next_batch`, and the SDK would drop the response the bot never handled.
async fn forget_sdk_sync_token(client: &Client) {
    use matrix_sdk::store::StateStoreDataKey;
    if let Err(error) = client
        .state_store()
        .remove_kv_data(StateStoreDataKey::SyncToken)
        .await
    {
        tracing::warn!(%error, "cannot clear the SDK's copy of the sync position");
    }
}

/// Like [`connect`], but never changes the store: the saved session is restored if it is
/// usable; otherwise the bot logs in with the password as a device kept only in memory
/// ([`Login::InMemory`]), which the caller logs out when done. For one-shots that must leave
/// everything as it was (`reset --dry-run`, or `reset` before it is confirmed).
pub async fn connect_untouched(settings: &Settings) -> anyhow::Result<(Client, Login)> {
    let saved = usable_saved_session(settings);
    if let Some(given) = token::newly_given(settings, saved.as_ref()) {
        return Ok((token::in_memory(settings, given).await?, Login::Given));
    }
    if saved.is_some() {
        return connect(settings).await;
    }
    if settings.identity.password.is_none() {
        bail!(
            "{} is required to log in (no usable saved session in {})",
            vars::PASSWORD,
            settings.files.store_path.display()
        );
    }
    let client = build_client(settings, Storage::Memory).await?;
    login(&client, settings).await?;
    if let Err(error) = confirm_identity(&client, settings).await {
        log_out(&client, settings, Login::InMemory).await;
        return Err(error);
    }
    Ok((client, Login::InMemory))
}

/// Stops, before the saved session is thrown away, when it is for the configured id written
/// with other upper and lower case: the id the homeserver confirmed when it was saved, so the
/// setting is what is wrong (a login would be refused by [`confirm_identity`] anyway).
fn refuse_other_case(settings: &Settings) -> anyhow::Result<()> {
    let saved = fs::read_to_string(session_path(&settings.files.store_path))
        .ok()
        .and_then(|text| serde_json::from_str::<SavedSession>(&text).ok());
    match saved {
        Some(saved)
            if saved.homeserver == settings.identity.homeserver.as_str()
                && saved.user_id != settings.identity.user_id.as_str()
                && saved
                    .user_id
                    .eq_ignore_ascii_case(settings.identity.user_id.as_str()) =>
        {
            check_identity(settings.identity.user_id.as_str(), &saved.user_id)
        }
        _ => Ok(()),
    }
}

/// Asks the homeserver who the session belongs to and stops unless it is `MATRIX_USER`
/// exactly: the bot's records are trusted by their sender, so a bot that is not who its
/// settings say would read its own records as someone else's.
pub async fn confirm_identity(client: &Client, settings: &Settings) -> anyhow::Result<()> {
    let whoami = client
        .whoami()
        .await
        .context("the homeserver did not say who the bot is (/account/whoami)")?;
    check_identity(settings.identity.user_id.as_str(), whoami.user_id.as_str())
}

/// The identity check itself: `configured` (`MATRIX_USER`) must be exactly `confirmed` (the
/// homeserver's answer).
fn check_identity(configured: &str, confirmed: &str) -> anyhow::Result<()> {
    if configured == confirmed {
        return Ok(());
    }
    bail!(
        "{var} is {configured} but the homeserver knows this account as {confirmed}; \
         set {var}={confirmed} (user ids must match exactly). Stopped before reading any room",
        var = vars::USER,
    )
}

/// Logs in with the password as a new device and returns the session (not saved yet).
async fn login(client: &Client, settings: &Settings) -> anyhow::Result<MatrixSession> {
    login_as(client, settings, None).await
}

/// Logs in with the password, as `device` if given (after a soft logout), else as a new device.
async fn login_as(
    client: &Client,
    settings: &Settings,
    device: Option<&matrix_sdk::ruma::DeviceId>,
) -> anyhow::Result<MatrixSession> {
    let Some(password) = settings.identity.password.as_ref() else {
        bail!("{} is required to log in", vars::PASSWORD);
    };
    let mut login = client
        .matrix_auth()
        .login_username(settings.identity.user_id.as_str(), password.expose())
        .initial_device_display_name(DEVICE_NAME);
    if let Some(device) = device {
        login = login.device_id(device.as_str());
    }
    login
        .send()
        .await
        .with_context(|| format!("login as {} failed", settings.identity.user_id))?;
    let session = client
        .matrix_auth()
        .session()
        .context("the homeserver accepted the login but returned no session")?;
    let device = if device.is_some() {
        "the same device"
    } else {
        "a new device"
    };
    tracing::info!(user_id = %session.meta.user_id, device_id = %session.meta.device_id, "logged in ({device})");
    Ok(session)
}

/// The password as user-interactive authentication, for a first cross-signing upload on
/// servers that ask for it.
fn password_auth(settings: &Settings) -> Option<AuthData> {
    let password = settings.identity.password.as_ref()?;
    Some(AuthData::Password(Password::new(
        UserIdentifier::Matrix(MatrixUserIdentifier::new(
            settings.identity.user_id.to_string(),
        )),
        password.expose().to_owned(),
    )))
}

/// Gives the account a cross-signing identity if it has none (what the SDK's automatic
/// bootstrap does, but only after [`confirm_identity`]). Failures are logged:
/// `identity::ensure` reports what is missing.
async fn bootstrap_cross_signing(client: &Client, auth: Option<AuthData>) {
    let encryption = client.encryption();
    encryption.wait_for_e2ee_initialization_tasks().await;
    if let Err(error) = encryption.bootstrap_cross_signing_if_needed(auth).await {
        tracing::error!(%error, "cannot set up cross-signing");
    }
}

/// A client on `storage`. Cross-signing is not bootstrapped automatically: [`connect`] does it
/// after [`confirm_identity`].
async fn build_client(settings: &Settings, storage: Storage) -> anyhow::Result<Client> {
    let requests = RequestConfig::new()
        .timeout(Duration::from_secs(60))
        .retry_limit(5)
        .max_retry_time(Duration::from_secs(30));
    let encryption = EncryptionSettings {
        auto_enable_cross_signing: false,
        // Not automatic: `identity::ensure` enables secret storage and the backup together. An
        // automatic backup created first would make that fail ("a backup already exists").
        auto_enable_backups: false,
        backup_download_strategy: BackupDownloadStrategy::AfterDecryptionFailure,
    };
    let builder = Client::builder()
        .homeserver_url(settings.identity.homeserver.as_str())
        .with_encryption_settings(encryption)
        .request_config(requests);
    let builder = match storage {
        Storage::Store => builder.sqlite_store(&settings.files.store_path, None),
        Storage::Memory => builder,
    };
    builder.build().await.with_context(|| {
        format!(
            "cannot open the SDK store in {}",
            settings.files.store_path.display()
        )
    })
}

/// The saved session if it can be used with the store as it is, with a log line saying why not.
fn usable_saved_session(settings: &Settings) -> Option<SavedSession> {
    let path = session_path(&settings.files.store_path);
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
    if saved.user_id != settings.identity.user_id.as_str()
        || saved.homeserver != settings.identity.homeserver.as_str()
    {
        tracing::warn!(
            saved_user = %saved.user_id,
            saved_homeserver = %saved.homeserver,
            "saved session is for another account or homeserver; logging in again"
        );
        return None;
    }
    if !settings.files.store_path.join(CRYPTO_DB).exists() {
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
    let path = session_path(&settings.files.store_path);
    let saved = SavedSession {
        homeserver: settings.identity.homeserver.to_string(),
        user_id: settings.identity.user_id.to_string(),
        session,
        given_token: settings
            .identity
            .token
            .as_ref()
            .map(|given| token::digest(&given.access_token)),
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

/// Logs the device out on the server; after a [`Login::New`] also removes its local session and
/// SDK files (a one-shot that logged in leaves no stray device). Failures are logged, not
/// returned.
pub async fn log_out(client: &Client, settings: &Settings, login: Login) {
    match client.matrix_auth().logout().await {
        Ok(_) => tracing::info!("logged out the one-shot device"),
        Err(error) => {
            tracing::warn!(%error, "cannot log out the one-shot device; it stays listed on the homeserver")
        }
    }
    if login != Login::New {
        return;
    }
    if let Err(error) = clear_sdk_files(&settings.files.store_path) {
        tracing::warn!(
            error = format!("{error:#}"),
            "cannot remove the one-shot's local session"
        );
    }
}

/// The session saved in the store for this account and homeserver, whether or not its SDK
/// files are there.
fn saved_session(settings: &Settings) -> Option<SavedSession> {
    let text = fs::read_to_string(session_path(&settings.files.store_path)).ok()?;
    let saved: SavedSession = serde_json::from_str(&text).ok()?;
    (saved.user_id == settings.identity.user_id.as_str()
        && saved.homeserver == settings.identity.homeserver.as_str())
    .then_some(saved)
}

/// A client in memory holding the saved session (its own token: no new device, nothing
/// written); `None` without a saved session for this account.
pub async fn saved_in_memory(settings: &Settings) -> anyhow::Result<Option<Client>> {
    match saved_session(settings) {
        Some(saved) => Ok(Some(
            in_memory(settings, saved.session, "the saved session").await?,
        )),
        None => Ok(None),
    }
}

/// The device of the session saved for this account ([`saved_session`]), if any.
pub fn saved_device(settings: &Settings) -> Option<String> {
    saved_session(settings).map(|saved| saved.session.meta.device_id.to_string())
}

/// What [`log_out_saved`] did to the saved session's device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SavedLogout {
    /// The device was logged out: it is gone from the account.
    Removed(String),
    /// The homeserver no longer knows the session's token: the device was removed before.
    AlreadyGone(String),
}

/// A client kept in memory holding `session` (`what` names it in an error): nothing written.
async fn in_memory(
    settings: &Settings,
    session: MatrixSession,
    what: &str,
) -> anyhow::Result<Client> {
    let client = build_client(settings, Storage::Memory).await?;
    client
        .matrix_auth()
        .restore_session(session, RoomLoadSettings::default())
        .await
        .with_context(|| format!("cannot use {what}"))?;
    Ok(client)
}

/// Logs out the device of the saved session with its own token, from a client kept in memory:
/// no new device, no SDK store needed (it may be gone), nothing written. `None` without a
/// saved session for this account.
pub async fn log_out_saved(settings: &Settings) -> anyhow::Result<Option<SavedLogout>> {
    let Some(saved) = saved_session(settings) else {
        return Ok(None);
    };
    let device = saved.session.meta.device_id.to_string();
    let client = in_memory(settings, saved.session, "the saved session").await?;
    // Let the SDK's start-up reads finish, so none of them runs after the logout.
    client
        .encryption()
        .wait_for_e2ee_initialization_tasks()
        .await;
    match client.matrix_auth().logout().await {
        Ok(_) => Ok(Some(SavedLogout::Removed(device))),
        Err(error)
            if matches!(
                error.client_api_error_kind(),
                Some(ErrorKind::UnknownToken(_))
            ) =>
        {
            Ok(Some(SavedLogout::AlreadyGone(device)))
        }
        Err(error) => {
            Err(error).with_context(|| format!("cannot log out the saved device {device}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_must_match_exactly() {
        check_identity("@bot:example.org", "@bot:example.org").expect("same id");
        let error = check_identity("@Bot:example.org", "@bot:example.org")
            .expect_err("a different case is another id");
        let line = format!("{error:#}");
        assert!(
            line.contains("@Bot:example.org") && line.contains("@bot:example.org"),
            "{line}"
        );
        assert!(line.contains(vars::USER), "{line}");
        assert_eq!(line.lines().count(), 1, "one line: {line}");
    }
}
