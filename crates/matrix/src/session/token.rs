//! A session the operator gives the bot (`MATRIX_ACCESS_TOKEN` with `MATRIX_DEVICE_ID`): a
//! login service's compatibility token, or one a Synapse admin minted. No password is needed.
//!
//! The saved session remembers which given token it has already taken into account (a digest,
//! never the token). A given token is used when it is new to the saved session; otherwise the
//! saved session is, so a token that was revoked and replaced by a password login is not tried
//! again at every start. Giving a new token switches the bot to it.

use super::{
    build_client, clear_sdk_files, confirm_identity, forget_sdk_sync_token, lost_in, relogin, save,
    Login, SavedSession, Storage,
};
use crate::config::{vars, Secret, Settings, TokenLogin};
use anyhow::{bail, Context};
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::ruma::api::client::keys::get_keys;
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use sha2::{Digest, Sha256};
use std::fs;

/// A digest of `token` that identifies it without revealing it.
pub(super) fn digest(token: &Secret) -> String {
    Sha256::digest(token.expose().as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The token to use now: the given one, unless the saved session has already taken it into
/// account (it is that token's session, or replaced it after it was revoked).
pub(super) fn newly_given<'a>(
    settings: &'a Settings,
    saved: Option<&SavedSession>,
) -> Option<&'a TokenLogin> {
    let given = settings.identity.token.as_ref()?;
    let seen = saved.and_then(|saved| saved.given_token.as_deref());
    (seen != Some(digest(&given.access_token).as_str())).then_some(given)
}

/// The session `given` stands for.
fn session(settings: &Settings, given: &TokenLogin) -> MatrixSession {
    MatrixSession {
        meta: SessionMeta {
            user_id: settings.identity.user_id.clone(),
            device_id: given.device_id.clone(),
        },
        tokens: SessionTokens {
            access_token: given.access_token.expose().to_owned(),
            refresh_token: None,
        },
    }
}

/// Restores the given token's session on the store and saves it. The store is kept if it is
/// that device's; otherwise it is cleared first, and the device must not have encryption keys
/// on the homeserver already (they would be another store's, and this one could not use them).
pub(super) async fn restore(
    settings: &Settings,
    given: &TokenLogin,
    saved: Option<SavedSession>,
) -> anyhow::Result<(Client, Login)> {
    let store = &settings.files.store_path;
    let same_device = saved
        .as_ref()
        .is_some_and(|saved| saved.session.meta.device_id == given.device_id);
    if !same_device {
        let probe = match in_memory(settings, given).await {
            Ok(probe) => probe,
            Err(error) => {
                let Some(_) = lost_in(&error) else {
                    return Err(error);
                };
                // Refused at once: log in with the password as a new device, if there is one.
                let client = build_client(settings, Storage::Store).await?;
                let lost = super::SessionLost { soft_logout: false };
                return relogin(client, settings, lost, &given.device_id).await;
            }
        };
        let keys = device_has_keys(&probe, settings, given).await;
        drop(probe);
        let keys = keys?;
        if keys && settings.identity.password.is_some() {
            // That device's keys are another store's: a password login makes a new device.
            tracing::warn!(device_id = %given.device_id, "the device of MATRIX_ACCESS_TOKEN has encryption keys from an SDK store that is gone; logging in with the password as a new device");
            clear_sdk_files(store)?;
            let client = build_client(settings, Storage::Store).await?;
            return super::log_in(client, settings, None).await;
        }
        if keys {
            bail!(
                "{} {} already has encryption keys on the homeserver, made with an SDK store that is not in {}; \
                 give the bot a token for a new device (or set {} and leave out the token)",
                vars::DEVICE_ID,
                given.device_id,
                store.display(),
                vars::PASSWORD
            );
        }
        clear_sdk_files(store)?;
    }
    fs::create_dir_all(store)
        .with_context(|| format!("cannot create the store folder {}", store.display()))?;
    let client = build_client(settings, Storage::Store).await?;
    if same_device {
        forget_sdk_sync_token(&client).await;
    }
    let session = session(settings, given);
    client
        .matrix_auth()
        .restore_session(session.clone(), RoomLoadSettings::default())
        .await
        .with_context(|| format!("cannot use {}", vars::ACCESS_TOKEN))?;
    if let Err(error) = confirm_identity(&client, settings).await {
        return match lost_in(&error) {
            Some(lost) => relogin(client, settings, lost, &given.device_id).await,
            None => Err(error),
        };
    }
    save(settings, session)?;
    tracing::info!(user_id = %settings.identity.user_id, device_id = %given.device_id, "session from MATRIX_ACCESS_TOKEN");
    super::bootstrap_cross_signing(&client, super::password_auth(settings)).await;
    Ok((client, Login::Given))
}

/// A client in memory holding the given token's session, confirmed as `MATRIX_USER`; nothing
/// is written. A token the homeserver refuses is a [`super::SessionLost`].
pub(super) async fn in_memory(settings: &Settings, given: &TokenLogin) -> anyhow::Result<Client> {
    let client = in_memory_unchecked(settings, given).await?;
    confirm_identity(&client, settings).await?;
    Ok(client)
}

/// [`in_memory`] without asking the homeserver anything.
pub(super) async fn in_memory_unchecked(
    settings: &Settings,
    given: &TokenLogin,
) -> anyhow::Result<Client> {
    super::in_memory(settings, session(settings, given), vars::ACCESS_TOKEN).await
}

/// Whether the given token's device has published encryption keys.
async fn device_has_keys(
    client: &Client,
    settings: &Settings,
    given: &TokenLogin,
) -> anyhow::Result<bool> {
    let mut request = get_keys::v3::Request::new();
    request.device_keys.insert(
        settings.identity.user_id.clone(),
        vec![given.device_id.clone()],
    );
    let response = client
        .send(request)
        .await
        .context("cannot ask the homeserver for the device's keys")?;
    Ok(response
        .device_keys
        .get(&settings.identity.user_id)
        .is_some_and(|devices| devices.contains_key(&given.device_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_names_a_token_without_showing_it() {
        let token = Secret::from("syt_secret_token_value".to_owned());
        let digest = digest(&token);
        assert_eq!(digest.len(), 32);
        assert!(!digest.contains("secret"));
        assert_eq!(
            digest,
            super::digest(&Secret::from("syt_secret_token_value".to_owned()))
        );
        assert_ne!(digest, super::digest(&Secret::from("another".to_owned())));
    }
}
