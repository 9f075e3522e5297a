//! A session the homeserver no longer accepts (`M_UNKNOWN_TOKEN` on any request): the bot's
//! device was logged out by an admin, the password changed, or a token expired. It is a change
//! of state with one recovery, not one more transient error: with `MATRIX_PASSWORD` the bot logs
//! in again (the same device after a soft logout, else a new device that recovers the
//! encryption identity with the recovery key) and starts over; without it, it stops with one
//! line and [`EXIT_SESSION_LOST`].

use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::SessionChange;
use tokio::sync::broadcast;

/// The exit code of a bot whose session was lost and that has no password to log in again
/// (docs/OPERATIONS.md).
pub const EXIT_SESSION_LOST: u8 = 3;

/// The homeserver no longer accepts the bot's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the homeserver no longer accepts the bot's session (M_UNKNOWN_TOKEN): its device was logged out, or its token expired")]
pub struct SessionLost {
    /// A soft logout: the device stays, only a new token is needed.
    pub soft_logout: bool,
}

/// Resolves when a request of the client met `M_UNKNOWN_TOKEN` (`changes` is its
/// `subscribe_to_session_changes`); never if the client is gone first.
pub async fn lost(mut changes: broadcast::Receiver<SessionChange>) -> SessionLost {
    loop {
        match changes.recv().await {
            Ok(SessionChange::UnknownToken(data)) => {
                return SessionLost {
                    soft_logout: data.soft_logout,
                }
            }
            Ok(SessionChange::TokensRefreshed) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The lost session `error` says, if it says one: a [`SessionLost`], or a request refused with
/// `M_UNKNOWN_TOKEN` anywhere in its chain.
pub fn lost_in(error: &anyhow::Error) -> Option<SessionLost> {
    for cause in error.chain() {
        if let Some(lost) = cause.downcast_ref::<SessionLost>() {
            return Some(*lost);
        }
        let kind = cause
            .downcast_ref::<matrix_sdk::HttpError>()
            .and_then(|e| e.client_api_error_kind())
            .or_else(|| {
                cause
                    .downcast_ref::<matrix_sdk::Error>()
                    .and_then(|e| e.client_api_error_kind())
            });
        if let Some(ErrorKind::UnknownToken(data)) = kind {
            return Some(SessionLost {
                soft_logout: data.soft_logout,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_lost_session_is_found_under_context() {
        let error =
            anyhow::Error::new(SessionLost { soft_logout: true }).context("the first sync failed");
        assert_eq!(lost_in(&error), Some(SessionLost { soft_logout: true }));
        let other: anyhow::Result<()> = Err(anyhow::anyhow!("connection refused"));
        let other = other
            .context("the first sync failed")
            .expect_err("an error");
        assert_eq!(lost_in(&other), None);
    }
}
