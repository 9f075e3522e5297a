//! The typing notice while an answer is being made: sent once the answer has taken
//! [`DELAY`] (off the answer's path), renewed well before it expires for as long as the answer
//! takes, and cleared after the reply. An answer faster than that shows no notice: the notice
//! would wake the person's client once more just before the reply (measured: the round trip
//! to the bot was 1.2x a plain bot's with an immediate notice; docs/BENCHMARKS.md).
//!
//! The bot sends its own typing requests instead of `Room::typing_notice`, whose 4 s notice and
//! 3 s resend window leave gaps when renewals drift; a longer notice renewed every few seconds
//! survives a slow request or a missed renewal.

use matrix_sdk::ruma::api::client::typing::create_typing_event::v3::{
    Request, Typing as State, TypingInfo,
};
use matrix_sdk::Room;
use std::time::Duration;

/// How often a notice is renewed: three times in its life (`MATRIX_TYPING_NOTICE`), so a slow
/// request or a missed renewal leaves no gap.
const RENEWALS: u32 = 3;
/// How long an answer takes before the notice is shown.
pub const DELAY: Duration = Duration::from_millis(500);

/// A typing notice kept alive until [`Typing::stop`].
#[derive(Debug)]
pub struct Typing {
    room: Room,
    stop: std::sync::Arc<tokio::sync::Notify>,
    keep_alive: tokio::task::JoinHandle<bool>,
}

impl Typing {
    /// Starts the notice in `room`, each notice lasting `notice` (returns at once).
    pub fn start(room: Room, notice: Duration) -> Typing {
        let renew = notice / RENEWALS;
        let renewing = room.clone();
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let keep_alive = tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(DELAY) => {}
                () = stopped.notified() => return false,
            }
            loop {
                send(&renewing, Some(notice)).await;
                tokio::select! {
                    () = tokio::time::sleep(renew) => {}
                    () = stopped.notified() => return true,
                }
            }
        });
        Typing {
            room,
            stop,
            keep_alive,
        }
    }

    /// Stops renewing (after a renewal in progress, so it cannot land after the clear) and
    /// clears the notice if one was shown.
    pub async fn stop(self) {
        self.stop.notify_one();
        if self.keep_alive.await.unwrap_or(true) {
            send(&self.room, None).await;
        }
    }
}

/// Shows a notice lasting `notice`, or clears it (`None`).
async fn send(room: &Room, notice: Option<Duration>) {
    let client = room.client();
    let Some(user_id) = client.user_id() else {
        return;
    };
    let typing = notice.is_some();
    let state = match notice {
        Some(notice) => State::Yes(TypingInfo::new(notice)),
        None => State::No,
    };
    let request = Request::new(user_id.to_owned(), room.room_id().to_owned(), state);
    if let Err(error) = client.send(request).await {
        tracing::debug!(room_id = %room.room_id(), typing, %error, "cannot update the typing notice");
    }
}
