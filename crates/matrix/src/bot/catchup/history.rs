//! Reading a room's history backwards, page by page, as JSON events (decrypted where the bot
//! can): the one loop behind catch-up and the platform's context.

use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::UInt;
use matrix_sdk::Room;

/// Events fetched per history page.
const PAGE: u32 = 50;

/// What the walk does after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Go on to the next (older) event.
    On,
    /// Finish this page, then stop.
    AfterPage,
    /// Stop now.
    Stop,
}

/// Visits `room`'s events newest first, at most `max_pages` pages of [`PAGE`], until `visit`
/// says to stop or the history ends. Events that are not JSON objects are skipped.
pub(crate) async fn walk_back(
    room: &Room,
    max_pages: usize,
    mut visit: impl FnMut(serde_json::Value) -> Walk,
) -> matrix_sdk::Result<()> {
    let mut from = None;
    for _ in 0..max_pages {
        let mut options = MessagesOptions::backward();
        options.from = from.take();
        options.limit = UInt::from(PAGE);
        let batch = room.messages(options).await?;
        let mut last_page = false;
        for event in &batch.chunk {
            let Ok(json) = event.raw().deserialize_as::<serde_json::Value>() else {
                continue;
            };
            match visit(json) {
                Walk::On => {}
                Walk::AfterPage => last_page = true,
                Walk::Stop => return Ok(()),
            }
        }
        match batch.end {
            Some(end) if !last_page && !batch.chunk.is_empty() => from = Some(end),
            _ => return Ok(()),
        }
    }
    Ok(())
}
