//! The bot's encryption identity: cross-signing, secret storage and server-side key backup, and
//! recovery with `MATRIX_RECOVERY_KEY` after the SDK store is lost.
//!
//! - First start (no secret storage on the account): cross-signing is already bootstrapped
//!   (`session::connect`); a recovery key is made and written to a private file beside the
//!   cache (never to the logs) **before** anything uses it: written, flushed to disk, its folder
//!   flushed, mode 0600. Only then are the key backup and secret storage set up with it. A start
//!   that stops in between (crash point `after-key-file-before-recovery`) finds the key in the
//!   file and uses that same key, so a key the operator already copied stays the key.
//! - A new device (store lost) with `MATRIX_RECOVERY_KEY`, or else with the key still in the
//!   key file: the secrets are imported, the device is signed by the same identity, and room
//!   keys come back from the backup.
//! - A new device without any key: the identity is reset (people's clients will warn that the
//!   bot's identity changed) and secret storage set up again as on a first start.

use crate::config::{vars, Settings};
use anyhow::{bail, Context};
use matrix_sdk::encryption::recovery::RecoveryState;
use matrix_sdk::encryption::CrossSigningResetAuthType;
use matrix_sdk::ruma::api::client::uiaa::{
    AuthData, MatrixUserIdentifier, Password, UserIdentifier,
};
use matrix_sdk::ruma::events::secret_storage::default_key::SecretStorageDefaultKeyEventContent;
use matrix_sdk::ruma::events::secret_storage::key::SecretStorageKeyEventContent;
use matrix_sdk::ruma::events::EventContentFromType;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::Client;
use matrix_sdk_crypto::secret_storage::SecretStorageKey;
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What happened to the identity at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// This device already had the identity's secrets.
    Intact,
    /// First start: a new identity, its recovery key written to the key file.
    Created,
    /// A new device recovered the identity with `MATRIX_RECOVERY_KEY` or the key file.
    Recovered,
    /// A new device without a key: the identity was replaced.
    Replaced,
}

/// The file the recovery key is written to: beside the cache, private.
pub fn key_file(settings: &Settings) -> PathBuf {
    let mut name = settings
        .files
        .db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".recovery-key");
    settings.files.db_path.with_file_name(name)
}

/// Makes sure the bot has a recoverable identity. Call after the initial sync.
pub async fn ensure(client: &Client, settings: &Settings) -> anyhow::Result<Identity> {
    let encryption = client.encryption();
    encryption.wait_for_e2ee_initialization_tasks().await;
    let recovery = encryption.recovery();
    match (recovery.state(), &settings.identity.recovery_key) {
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
            if recover_with_key_file(client, settings).await {
                return Ok(Identity::Recovered);
            }
            tracing::warn!(
                "the bot's encryption identity cannot be recovered: this is a new device and {} is not set. \
                 Replacing the identity: people's clients will show that the bot's identity changed, and \
                 messages sent before now cannot be read by the bot",
                vars::RECOVERY_KEY
            );
            reset_identity(client, settings).await?;
            new_recovery(client, settings).await?;
            Ok(Identity::Replaced)
        }
        (RecoveryState::Disabled, configured) => {
            if configured.is_some() {
                tracing::warn!(
                    "{} is set but the account has no secret storage yet; creating a new one",
                    vars::RECOVERY_KEY
                );
            }
            new_recovery(client, settings).await?;
            Ok(Identity::Created)
        }
        (state, _) => bail!(
            "cannot tell whether the account's secret storage is set up (state {state:?}); left as it is"
        ),
    }
}

/// A new device without `MATRIX_RECOVERY_KEY`: tries the key in the key file, if there is one.
async fn recover_with_key_file(client: &Client, settings: &Settings) -> bool {
    let path = key_file(settings);
    let Some(key) = read_key_file(&path, settings) else {
        return false;
    };
    match client
        .encryption()
        .recovery()
        .recover(&key.to_base58())
        .await
    {
        Ok(()) => {
            tracing::info!(file = %path.display(), "encryption identity recovered with the key in the key file");
            true
        }
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "the key file does not open this account's secret storage");
            false
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
                .identity
                .password
                .as_ref()
                .with_context(|| format!("replacing the identity needs {}", vars::PASSWORD))?;
            let mut auth = Password::new(
                UserIdentifier::Matrix(MatrixUserIdentifier::new(
                    settings.identity.user_id.to_string(),
                )),
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

/// Sets up secret storage and the key backup with a recovery key that is on disk first: the
/// key left in the key file by a start that stopped before using it, or a new one.
async fn new_recovery(client: &Client, settings: &Settings) -> anyhow::Result<()> {
    let path = key_file(settings);
    let key = match read_key_file(&path, settings) {
        Some(key) => {
            tracing::info!(file = %path.display(), "using the recovery key already in the key file");
            key
        }
        None => SecretStorageKey::new(),
    };
    write_private(&path, key_file_text(settings, &key)?.as_bytes())
        .with_context(|| format!("cannot write the recovery key to {}", path.display()))?;
    crate::crash_point!("after-key-file-before-recovery");
    enable_recovery(client, &key).await?;
    tracing::warn!(
        file = %path.display(),
        "a new recovery key was written (not logged): store it safely and set {} from it",
        vars::RECOVERY_KEY
    );
    Ok(())
}

/// What `Recovery::enable` does, with a given key: the key backup (unless this device has one),
/// the key's description, the default key, then the identity's and the backup's keys into
/// secret storage.
async fn enable_recovery(client: &Client, key: &SecretStorageKey) -> anyhow::Result<()> {
    let encryption = client.encryption();
    let backups = encryption.backups();
    if !backups.are_enabled().await {
        if backups
            .fetch_exists_on_server()
            .await
            .context("cannot check for a key backup")?
        {
            bail!("a key backup exists on the server but this device does not have its key; not replacing it");
        }
        encryption
            .recovery()
            .enable_backup()
            .await
            .context("cannot create the key backup")?;
    }
    let account = client.account();
    account
        .set_account_data(key.event_content().clone())
        .await
        .context("cannot store the recovery key's description")?;
    account
        .set_account_data(SecretStorageDefaultKeyEventContent::new(
            key.key_id().to_owned(),
        ))
        .await
        .context("cannot make the recovery key the default")?;
    encryption
        .secret_storage()
        .open_secret_store(&key.to_base58())
        .await
        .context("cannot open the new secret storage")?
        .export_secrets()
        .await
        .context("cannot put the identity's keys into secret storage")?;
    Ok(())
}

/// The line of the key file that describes the key (not secret: the key's id and the check
/// value secret storage publishes), so a start that stopped before using the key can use it.
const KEY_INFO: &str = "# key-info: ";

/// The key file's text: what it is for, the key's description, and the key on the last line.
fn key_file_text(settings: &Settings, key: &SecretStorageKey) -> anyhow::Result<String> {
    let info = serde_json::json!({
        "user_id": settings.identity.user_id.as_str(),
        "key_id": key.key_id(),
        "description": key.event_content(),
    });
    Ok(format!(
        "# lambda-matrix recovery key for {user}. Keep it safe and private (a password manager).\n\
         # Put it in {var} so the bot keeps its encryption identity and can read old messages\n\
         # after losing {store}. Then you may delete this file.\n\
         {KEY_INFO}{info}\n{key}\n",
        user = settings.identity.user_id,
        var = vars::RECOVERY_KEY,
        store = settings.files.store_path.display(),
        info = serde_json::to_string(&info)?,
        key = key.to_base58(),
    ))
}

/// The key in the key file, if the file is there, is for this account, and its key matches
/// its description.
fn read_key_file(path: &Path, settings: &Settings) -> Option<SecretStorageKey> {
    let text = std::fs::read_to_string(path).ok()?;
    let info = text.lines().find_map(|l| l.strip_prefix(KEY_INFO))?;
    let info: serde_json::Value = serde_json::from_str(info).ok()?;
    if info["user_id"].as_str() != Some(settings.identity.user_id.as_str()) {
        return None;
    }
    let key_id = info["key_id"].as_str()?;
    let description = Raw::new(&info["description"]).ok()?;
    let description = SecretStorageKeyEventContent::from_parts(
        &format!("m.secret_storage.key.{key_id}"),
        description.json(),
    )
    .ok()?;
    let key = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))?;
    SecretStorageKey::from_account_data(key.trim(), description).ok()
}

/// Writes `contents` to `path` so that it is on disk when this returns, private to the user
/// (0600, also when the file was there before with other permissions): a new file beside it is
/// written and flushed, renamed over `path`, and the folder flushed.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawSettings;

    fn settings(dir: &Path, user: &str) -> Settings {
        Settings::from_raw(RawSettings {
            homeserver: Some("http://127.0.0.1:1".into()),
            user: Some(user.into()),
            db_path: Some(dir.join("lambda_matrix.db").display().to_string()),
            store_path: Some(dir.join("matrix_store").display().to_string()),
            ..RawSettings::default()
        })
        .expect("valid settings")
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn an_existing_looser_key_file_ends_private_with_the_new_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lambda_matrix.db.recovery-key");
        std::fs::write(&path, b"old").expect("write");
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(mode(&path), 0o644);
        write_private(&path, b"new key").expect("written");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"new key");
        assert!(!dir
            .path()
            .join("lambda_matrix.db.recovery-key.tmp")
            .exists());
    }

    #[test]
    fn the_key_file_gives_back_the_same_key_for_the_same_account_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bot = settings(dir.path(), "@bot:example.org");
        let key = SecretStorageKey::new();
        let path = key_file(&bot);
        write_private(&path, key_file_text(&bot, &key).expect("text").as_bytes()).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().last(), Some(key.to_base58().as_str()));
        let back = read_key_file(&path, &bot).expect("the same key back");
        assert_eq!(back.to_base58(), key.to_base58());
        assert_eq!(back.key_id(), key.key_id());
        let other = settings(dir.path(), "@other:example.org");
        assert!(
            read_key_file(&path, &other).is_none(),
            "another account's key"
        );
        // A key that does not match its description is not used.
        let other_key = SecretStorageKey::new().to_base58();
        std::fs::write(&path, text.replace(&key.to_base58(), &other_key)).expect("write");
        assert!(read_key_file(&path, &bot).is_none());
    }
}
