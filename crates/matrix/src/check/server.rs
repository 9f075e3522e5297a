//! The items read from the homeserver: what it supports, who the bot's session is, and the
//! encryption identity. Every request reads (`/versions`, `/whoami`, `/keys/query`,
//! `/room_keys/version`); the session is restored in memory only.

use super::Item;
use crate::config::{vars, Settings, SyncMode};
use crate::{identity, session};
use matrix_sdk::ruma::api::client::backup::get_latest_backup_info;
use matrix_sdk::ruma::api::client::discovery::get_supported_versions;
use matrix_sdk::ruma::api::client::keys::get_keys;
use matrix_sdk::Client;
use serde_json::Value;

const SLIDING_SYNC: &str = "org.matrix.simplified_msc3575";
const AUTHENTICATED_MEDIA: &str = "org.matrix.msc3916.stable";

/// The homeserver answers, and what the bot uses of it: sliding sync for the first sync,
/// authenticated media for attachments.
pub(super) async fn homeserver(settings: &Settings) -> Item {
    let url = &settings.identity.homeserver;
    let versions = async {
        let client = Client::builder()
            .homeserver_url(url.as_str())
            .build()
            .await?;
        anyhow::Ok(client.send(get_supported_versions::Request::new()).await?)
    };
    let versions = match versions.await {
        Ok(versions) => versions,
        Err(error) => {
            return Item::fail(
                "homeserver",
                format!("cannot reach {url}: {error:#}"),
                format!("check {} and that the homeserver is up", vars::HOMESERVER),
            )
        }
    };
    let feature = |name: &str| versions.unstable_features.get(name).copied() == Some(true);
    let newest = versions.versions.iter().max_by_key(|v| version_key(v));
    let media =
        feature(AUTHENTICATED_MEDIA) || versions.versions.iter().any(|v| version_key(v) >= (1, 11));
    let sliding = feature(SLIDING_SYNC);
    let detail = format!(
        "{url}: Matrix {}, {}, {}",
        newest.map(String::as_str).unwrap_or("(no versions)"),
        if sliding {
            "sliding sync"
        } else {
            "no sliding sync"
        },
        if media {
            "authenticated media"
        } else {
            "no authenticated media"
        }
    );
    if !sliding && settings.matrix.sync == SyncMode::Sliding {
        return Item::fail(
            "homeserver",
            detail,
            format!(
                "set {}=auto (or v2): this homeserver has no sliding sync",
                vars::SYNC
            ),
        );
    }
    if !media {
        return Item::warn(
            "homeserver",
            detail,
            "attachments are fetched with the older, unauthenticated media API; upgrade the homeserver",
        );
    }
    Item::ok("homeserver", detail)
}

/// `v1.11` as `(1, 11)`; anything else sorts first.
fn version_key(version: &str) -> (u32, u32) {
    let mut parts = version.trim_start_matches(['v', 'r']).split('.');
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// Who the session a start would use belongs to (`/whoami`), with that session's client for
/// the encryption item; with no session, whether a start could log in.
pub(super) async fn identity(settings: &Settings) -> (Item, Option<(Client, String)>) {
    let probed = match session::probe(settings).await {
        Ok(probed) => probed,
        Err(error) => {
            return (
                Item::fail("identity", format!("{error:#}"), "see the line above"),
                None,
            )
        }
    };
    let Some((client, source, device)) = probed else {
        let item = if settings.identity.password.is_some() {
            Item::ok(
                "identity",
                format!(
                    "no saved session: the first start logs in with {} (check does not, it writes nothing)",
                    vars::PASSWORD
                ),
            )
        } else {
            Item::fail(
                "identity",
                "no saved session and nothing to log in with",
                format!(
                    "set {}, or {} with {}",
                    vars::PASSWORD,
                    vars::ACCESS_TOKEN,
                    vars::DEVICE_ID
                ),
            )
        };
        return (item, None);
    };
    let from = match source {
        session::Source::Saved => "the saved session",
        session::Source::Given => vars::ACCESS_TOKEN,
    };
    match session::confirm_identity(&client, settings).await {
        Ok(()) => (
            Item::ok(
                "identity",
                format!(
                    "{} (device {device}, from {from})",
                    settings.identity.user_id
                ),
            ),
            Some((client, device)),
        ),
        Err(error) if session::lost_in(&error).is_some() => {
            let action = if settings.identity.password.is_some() {
                "nothing to do: the next start logs in again with the password".to_owned()
            } else {
                format!(
                    "set {}, or give a new {} with {}",
                    vars::PASSWORD,
                    vars::ACCESS_TOKEN,
                    vars::DEVICE_ID
                )
            };
            let detail = format!("the homeserver no longer accepts {from} (device {device})");
            match settings.identity.password {
                Some(_) => (Item::warn("identity", detail, action), None),
                None => (Item::fail("identity", detail, action), None),
            }
        }
        Err(error) => (
            Item::fail(
                "identity",
                format!("{error:#}"),
                format!("check {}", vars::USER),
            ),
            None,
        ),
    }
}

/// The encryption identity as the homeserver knows it: the account's cross-signing keys, this
/// device signed by them, the key backup; and whether the recovery key is at hand.
pub(super) async fn encryption(settings: &Settings, session: Option<&(Client, String)>) -> Item {
    let recovery = if settings.identity.recovery_key.is_some() {
        format!("recovery key in {}", vars::RECOVERY_KEY)
    } else if identity::key_file(settings).exists() {
        format!(
            "recovery key in {} (not yet in {})",
            identity::key_file(settings).display(),
            vars::RECOVERY_KEY
        )
    } else {
        "no recovery key at hand".to_owned()
    };
    let Some((client, device)) = session else {
        return Item::ok(
            "encryption",
            format!("not checked without a session; {recovery}"),
        );
    };
    let (signed, backup) = tokio::join!(cross_signed(client, settings, device), backup(client));
    let detail = format!(
        "{}; {}; {recovery}",
        match &signed {
            Ok(true) => "this device is cross-signed".to_owned(),
            Ok(false) => "this device is not cross-signed".to_owned(),
            Err(error) => format!("cross-signing unknown ({error:#})"),
        },
        match &backup {
            Ok(Some(version)) => format!("key backup on (version {version})"),
            Ok(None) => "no key backup".to_owned(),
            Err(error) => format!("key backup unknown ({error:#})"),
        }
    );
    if matches!((&signed, &backup), (Ok(true), Ok(Some(_)))) {
        if settings.identity.recovery_key.is_none() {
            return Item::warn(
                "encryption",
                detail,
                format!(
                    "store the recovery key in {} (docs/OPERATIONS.md \"The recovery key\")",
                    vars::RECOVERY_KEY
                ),
            );
        }
        return Item::ok("encryption", detail);
    }
    Item::warn(
        "encryption",
        detail,
        "a start sets up what is missing; if this stays after a start, see docs/OPERATIONS.md \"The recovery key\"",
    )
}

/// Whether `device` carries a signature of the account's self-signing key.
async fn cross_signed(client: &Client, settings: &Settings, device: &str) -> anyhow::Result<bool> {
    let user = settings.identity.user_id.clone();
    let mut request = get_keys::v3::Request::new();
    request.device_keys.insert(user.clone(), Vec::new());
    let response = client.send(request).await?;
    let Some(self_signing) = response.self_signing_keys.get(&user) else {
        return Ok(false);
    };
    let self_signing: Value = self_signing.deserialize_as()?;
    let key_ids: Vec<&String> = self_signing["keys"]
        .as_object()
        .map(|keys| keys.keys().collect())
        .unwrap_or_default();
    let device_keys = response
        .device_keys
        .get(&user)
        .and_then(|devices| devices.iter().find(|(id, _)| id.as_str() == device))
        .map(|(_, keys)| keys.deserialize_as::<Value>())
        .transpose()?;
    Ok(device_keys.is_some_and(|keys| {
        key_ids
            .iter()
            .any(|id| keys["signatures"][user.as_str()].get(id.as_str()).is_some())
    }))
}

/// The current key backup's version, if there is one.
async fn backup(client: &Client) -> anyhow::Result<Option<String>> {
    match client
        .send(get_latest_backup_info::v3::Request::new())
        .await
    {
        Ok(info) => Ok(Some(info.version)),
        Err(error)
            if error.client_api_error_kind()
                == Some(&matrix_sdk::ruma::api::error::ErrorKind::NotFound) =>
        {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn versions_sort_by_number() {
        assert!(version_key("v1.11") > version_key("v1.9"));
        assert_eq!(version_key("r0.6.1"), (0, 6));
        assert_eq!(version_key("nonsense"), (0, 0));
    }
}
