//! A person's device sharing a room key with the bot. Its first share to a device of the bot
//! comes over a new Olm session, and matrix-sdk takes any new Olm session from a device as a
//! sign that it may have lost keys: the bot's current room key in every room is shared with it
//! again, at the next index. When the first share of that room key has not reached the device
//! yet (the bot has just logged in as a new device and answered, and the person's client has
//! not synced since), the device gets both copies in one sync, and matrix-sdk-crypto 0.18 keeps
//! the later one: the message at the first index can never be decrypted there. So when a person
//! shares a room key in a room, the bot starts a new room key there: its next message goes with
//! a key no device has had before, shared at its first index. A room key costs one to-device
//! request per room the person shares a key in (rare: at their client's key rotation, or after
//! the bot's device changed).

use crate::bot::Bot;
use matrix_sdk::ruma::events::room_key::ToDeviceRoomKeyEvent;

impl Bot {
    /// `event` was shared with the bot by a device of its sender (decrypted by the SDK).
    pub(super) async fn on_room_key(&self, event: ToDeviceRoomKeyEvent) {
        if event.sender == self.bot_id() {
            return;
        }
        let Some(room) = self.client().get_room(&event.content.room_id) else {
            return;
        };
        if let Err(error) = room.discard_room_key().await {
            tracing::debug!(room_id = %room.room_id(), %error, "cannot start a new room key");
            return;
        }
        tracing::debug!(room_id = %room.room_id(), person = %event.sender, "a person shared a room key here; the bot's next message starts a new one");
    }
}
