//! Streamed answers: the first words appear as the reply, which is then edited as the answer
//! grows (at most one edit per [`EDIT_EVERY`]). When the answer outgrows one event, that event
//! is finished (a last edit without the progress note) and the answer continues in a new reply.
//! The final delivery ([`super::deliver`]) then completes the last part and says how many
//! parts there are.
//!
//! Until its final edit a growing part is marked partial (`org.lambda.matrix.partial: true` in
//! the content, `"partial": true` in the part mark of its relation): catch-up counts an answer
//! as the record of "handled" only when all its parts are complete, so a crash mid-stream
//! leaves a message that is answered again at the next start, into the same replies
//! ([`Outbox::remember_sent`]).

use super::deliver::slot_of;
use super::events;
use super::kind::Kind;
use super::Outbox;
use crate::markers::{PartMark, Slots};
use crate::render::{self, Part, Rendered};
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::Room;
use std::time::Duration;
use tokio::sync::watch;

/// Least time between two edits of a streamed answer (homeservers rate-limit senders).
const EDIT_EVERY: Duration = Duration::from_secs(1);

/// What a stream left on the server.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    /// The answer's parts on the server.
    pub slots: Slots,
    /// The parts finished while streaming, as ranges of [`Shown::fixed_text`].
    pub fixed: Vec<Part>,
    /// The streamed text those parts were cut from, up to the last one's end.
    pub fixed_text: String,
}

impl Shown {
    /// The parts to deliver for the final `text` of the answer: the parts finished while
    /// streaming stay as they are when `text` still begins with what they show; when it does
    /// not (the answer was asked again after an edit and came out different) every part is
    /// made anew, into the same slots.
    pub(crate) fn final_parts(&self, text: &str) -> Vec<Rendered> {
        let end = self.fixed.last().map_or(0, |p| p.end);
        if end == 0 || !text.starts_with(self.fixed_text.as_str()) {
            return events::parts(text);
        }
        self.fixed
            .iter()
            .map(|p| p.rendered.clone())
            .chain(
                events::parts_from(text, end)
                    .into_iter()
                    .map(|p| p.rendered),
            )
            .collect()
    }
}

impl Outbox {
    /// Shows the answer as it grows, until `progress`'s sender is dropped; yields what is on
    /// the server then (`slots`: parts a previous run left, reused).
    pub(crate) fn show_progress(
        &self,
        room: Room,
        to: OriginalSyncRoomMessageEvent,
        slots: Slots,
        mut progress: watch::Receiver<String>,
    ) -> tokio::task::JoinHandle<Shown> {
        let outbox = self.clone();
        tokio::spawn(async move {
            let mut shown = Shown {
                slots,
                ..Shown::default()
            };
            let mut last = String::new();
            while progress.changed().await.is_ok() {
                let text = progress.borrow_and_update().clone();
                if text.trim().is_empty() || text == last {
                    continue;
                }
                outbox.show(&room, &to, &text, &mut shown).await;
                last = text;
                tokio::time::sleep(EDIT_EVERY).await;
            }
            shown
        })
    }

    /// Shows `text`: parts that are full are finished, the last one shows the progress note.
    async fn show(
        &self,
        room: &Room,
        to: &OriginalSyncRoomMessageEvent,
        text: &str,
        shown: &mut Shown,
    ) {
        if !text.starts_with(shown.fixed_text.as_str()) {
            // Asked again (an edit): the new answer is shown from its first part, in the
            // same slots.
            shown.fixed.clear();
            shown.fixed_text.clear();
        }
        let from = shown.fixed.last().map_or(0, |p| p.end);
        let parts = events::parts_from(text, from);
        let Some((growing, full)) = parts.split_last() else {
            return;
        };
        for part in full {
            let mark = PartMark::finished(shown.fixed.len());
            if self
                .write_slot(room, to, &part.rendered, &mark, shown)
                .await
            {
                shown.fixed.push(part.clone());
                shown.fixed_text = text.get(..part.end).unwrap_or(text).to_owned();
            } else {
                return;
            }
        }
        let mark = PartMark::growing(shown.fixed.len());
        let noted = with_note(&growing.rendered, &self.inner.texts.answer_in_progress());
        let new = !shown.slots.contains_key(&mark.index);
        if self.write_slot(room, to, &noted, &mark, shown).await && new {
            crate::crash_point!("mid-stream");
        }
    }

    /// Puts `part` into slot `mark.index`: an edit if the slot exists, else a new reply.
    /// `false` if it could not be sent (logged).
    async fn write_slot(
        &self,
        room: &Room,
        to: &OriginalSyncRoomMessageEvent,
        part: &Rendered,
        mark: &PartMark,
        shown: &mut Shown,
    ) -> bool {
        let content = match shown.slots.get(&mark.index) {
            Some(slot) => events::edit(Kind::Answer, part, &slot.event_id, mark),
            None => events::reply(Kind::Answer, part, to.into(), mark),
        };
        let existing = shown.slots.get(&mark.index).map(|s| s.event_id.clone());
        match self.send_event(room, content).await {
            Ok(sent) => {
                let event_id = existing.unwrap_or(sent);
                let mut slot = slot_of(event_id, part, false);
                slot.done = !mark.partial;
                shown.slots.insert(mark.index, slot);
                true
            }
            Err(error) => {
                tracing::warn!(room_id = %room.room_id(), error = format!("{error:#}"), "cannot show a streamed answer's progress");
                false
            }
        }
    }
}

/// `part` followed by a note (the bot's own Markdown).
fn with_note(part: &Rendered, note: &str) -> Rendered {
    let note = render::render(note);
    let note_html = note.html.clone().unwrap_or_else(|| note.body.clone());
    Rendered {
        body: format!("{}\n\n{}", part.body, note.body),
        html: Some(format!(
            "{}\n{note_html}",
            part.html
                .clone()
                .unwrap_or_else(|| render::markdown_to_html(&part.body))
        )),
    }
}
