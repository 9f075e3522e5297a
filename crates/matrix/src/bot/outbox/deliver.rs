//! Delivering a whole answer: every part once, in order, each a reply to the message, the last
//! one carrying the number of parts. Parts already on the server (streamed, or sent before a
//! crash and found by catch-up) are its *slots*: a slot that already shows its part is left
//! alone, one that shows something else is edited, a missing one is sent, and slots beyond the
//! answer's end are removed. So finishing an answer sends only what is missing. An answer
//! written again for a 🔁 reaction names the reaction in every part's mark.

use super::events;
use super::kind::Kind;
use super::Outbox;
use crate::markers::{PartMark, Slot, Slots};
use crate::render::Rendered;
use matrix_sdk::ruma::events::room::message::ReplyMetadata;
use matrix_sdk::ruma::{EventId, OwnedEventId};
use matrix_sdk::Room;

impl Outbox {
    /// Sends `parts` as the answer to `to`, into `slots` (updated as parts are sent). Stops at
    /// the first part that cannot be sent. `text_of` names the event whose text was answered
    /// (the message, or the edit of it the answer used), written in every part's mark.
    pub(crate) async fn deliver_parts(
        &self,
        room: &Room,
        to: ReplyMetadata<'_>,
        parts: &[Rendered],
        kind: Kind,
        slots: &mut Slots,
        text_of: Option<&EventId>,
    ) -> anyhow::Result<()> {
        let count = parts.len();
        let again = text_of
            .and_then(|id| self.again_for(id))
            .map(|id| id.to_string());
        let usage = text_of.and_then(|id| self.take_usage(id));
        for (index, part) in parts.iter().enumerate() {
            let last = index + 1 == count;
            let mark = PartMark {
                text_of: text_of.map(|id| id.to_string()),
                again: again.clone(),
                usage: if last { usage.clone() } else { None },
                ..PartMark::of(index, count)
            };
            match slots.get(&index) {
                Some(slot)
                    if slot.done
                        && slot.body.as_deref() == Some(part.body.as_str())
                        && (slot.counted || !last) =>
                {
                    continue;
                }
                Some(slot) => {
                    let event_id = slot.event_id.clone();
                    self.send_event(room, events::edit(kind, part, &event_id, &mark))
                        .await?;
                    slots.insert(index, slot_of(event_id, part, true));
                }
                None => {
                    let reply = events::reply(kind, part, to, &mark);
                    let event_id = self.send_event(room, reply).await?;
                    slots.insert(index, slot_of(event_id, part, true));
                }
            }
            if !last {
                crate::crash_point!("between-parts");
            }
        }
        if let (Some(_), Some(text_of)) = (&again, text_of) {
            self.forget_again(text_of);
        }
        let extra: Vec<usize> = slots.range(count..).map(|(i, _)| *i).collect();
        for index in extra {
            if let Some(slot) = slots.remove(&index) {
                // A longer earlier attempt: its surplus parts go.
                if let Err(error) = room.redact(&slot.event_id, None, None).await {
                    tracing::warn!(room_id = %room.room_id(), event_id = %slot.event_id, %error, "cannot remove a surplus part of an earlier answer");
                }
            }
        }
        Ok(())
    }
}

/// The slot of a part just sent.
pub(crate) fn slot_of(event_id: OwnedEventId, part: &Rendered, counted: bool) -> Slot {
    Slot {
        event_id,
        body: Some(part.body.clone()),
        done: true,
        counted,
    }
}
