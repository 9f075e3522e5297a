//! The bot's session in a client kept in memory, for `lambda-matrix check`: no login, no
//! store opened, nothing written. The saved session if it is usable, else a token given and
//! new to it.

use super::{token, usable_saved_session};
use crate::config::Settings;
use matrix_sdk::Client;

/// Where the probed session came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The saved session (`session.json` with its SDK store).
    Saved,
    /// `MATRIX_ACCESS_TOKEN`, new to the saved session: the next start will take it.
    Given,
}

/// A client in memory with the session a start would use, and its device; `None` when a
/// start would have to log in with the password. The identity is not checked here.
pub async fn probe(settings: &Settings) -> anyhow::Result<Option<(Client, Source, String)>> {
    let saved = usable_saved_session(settings);
    if let Some(given) = token::newly_given(settings, saved.as_ref()) {
        let client = token::in_memory_unchecked(settings, given).await?;
        return Ok(Some((client, Source::Given, given.device_id.to_string())));
    }
    let Some(saved) = saved else {
        return Ok(None);
    };
    let device = saved.session.meta.device_id.to_string();
    let client = super::in_memory(settings, saved.session, "the saved session").await?;
    Ok(Some((client, Source::Saved, device)))
}
