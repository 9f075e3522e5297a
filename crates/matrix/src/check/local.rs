//! The items read from this machine: the settings, the cache, the SDK store and its lock.

use super::Item;
use crate::config::{vars, PlatformKind, Settings};
use crate::lock::StoreLock;
use crate::session;
use lambda_matrix_core::store::sqlite::SCHEMA_VERSION;
use lambda_matrix_core::{SqliteStore, StoreError};

/// The settings were read (else [`super::unreadable_settings`]): who, where, what answers.
pub(super) fn settings(settings: &Settings) -> Item {
    let platform = match settings.platform.kind {
        PlatformKind::OpenAi => "an OpenAI-compatible server",
        PlatformKind::Mock => "the mock platform (echoes, for trying the bot out)",
    };
    let login = match (&settings.identity.token, &settings.identity.password) {
        (Some(_), _) => format!("a token ({})", vars::ACCESS_TOKEN),
        (None, Some(_)) => "a password".to_owned(),
        (None, None) => "the saved session only".to_owned(),
    };
    Item::ok(
        "settings",
        format!(
            "{} on {}, logging in with {login}; answers from {platform}",
            settings.identity.user_id, settings.identity.homeserver
        ),
    )
}

/// The cache: absent (built at the first start), readable (its size), or not.
pub(super) fn cache(settings: &Settings) -> Item {
    let path = &settings.files.db_path;
    if !path.exists() {
        return Item::ok(
            "cache",
            format!(
                "{} is absent: the first start builds it from the homeserver",
                path.display()
            ),
        );
    }
    match SqliteStore::read_only_check(path) {
        Ok((dump, version)) => Item::ok(
            "cache",
            format!(
                "{}: {} people, {} rooms, {} chats; schema {version}{}",
                path.display(),
                dump.users.len(),
                dump.rooms.len(),
                dump.chats.len(),
                if version < SCHEMA_VERSION {
                    format!(" (a start migrates it to {SCHEMA_VERSION})")
                } else {
                    String::new()
                }
            ),
        ),
        Err(error @ StoreError::SchemaTooNew { .. }) => Item::fail(
            "cache",
            error.to_string(),
            "run the newer lambda-matrix that wrote it, or move the file away (the cache is rebuilt from the homeserver)",
        ),
        Err(error) => Item::warn(
            "cache",
            format!("{}: unreadable ({error})", path.display()),
            "nothing to do: a start moves it aside and rebuilds it from the homeserver",
        ),
    }
}

/// The SDK store, the saved session and the store lock.
pub(super) fn store(settings: &Settings) -> Item {
    let store = &settings.files.store_path;
    match StoreLock::holder(store) {
        Ok(None) => {}
        Ok(Some(pid)) => {
            return Item::fail(
                "store",
                format!(
                    "another lambda-matrix process (pid {pid}) is using {}",
                    store.display()
                ),
                "a second start is refused; stop the running one first, or check from a copy",
            )
        }
        Err(error) => {
            return Item::fail(
                "store",
                error.to_string(),
                "give the bot's user read and write access to the store's folder",
            )
        }
    }
    let device = session::saved_device(settings);
    let crypto = store.join("matrix-sdk-crypto.sqlite3").exists();
    match (device, crypto) {
        (Some(device), true) => Item::ok(
            "store",
            format!(
                "{}: the session of device {device}, with its SDK store; the lock is free",
                store.display()
            ),
        ),
        (Some(device), false) => Item::warn(
            "store",
            format!(
                "{}: a session of device {device} is saved but its SDK store is gone",
                store.display()
            ),
            "the next start logs in as a new device (with a password; a token must be for a new device) and recovers the encryption identity with the recovery key",
        ),
        (None, _) => Item::ok(
            "store",
            format!(
                "{}: no saved session yet; the lock is free",
                store.display()
            ),
        ),
    }
}
