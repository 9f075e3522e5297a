//! Resume: finishes what a crash left half-done, as planned by reconcile (a Space that never
//! got its C1, a recorded direct chat without a Space, a missing `m.space.child` link, an
//! adopted room without a marker, a `!delete` or `!forget-me` not finished). The only startup step that writes to the homeserver; the only
//! rooms it leaves are those in the bot's leaving record.

use crate::bot::Bot;
use crate::markers::ChatMarker;
use crate::reconcile::plan::ResumeTask;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use serde::Serialize;
use std::time::Instant;

/// What resume did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResumeReport {
    /// Chat markers written for adopted rooms.
    pub markers_written: usize,
    /// `m.space.child` links added.
    pub links_added: usize,
    /// C1 rooms created for Spaces that had none.
    pub first_chats_created: usize,
    /// First contacts finished (a recorded direct chat without a Space).
    pub first_contacts_finished: usize,
    /// Rooms left for good (a `!delete` or `!forget-me` a crash interrupted).
    pub rooms_left: usize,
    /// Tasks that failed, with why (retried at the next start).
    pub failed: Vec<String>,
    /// Time taken.
    pub duration_ms: u64,
}

impl Bot {
    /// Runs the resume tasks, each independently: one failure does not stop the others.
    pub(crate) async fn resume(&self, tasks: &[ResumeTask]) -> ResumeReport {
        let started = Instant::now();
        let mut report = ResumeReport::default();
        for task in tasks {
            if matches!(task, ResumeTask::Leave { .. }) {
                continue; // all at once below
            }
            match self.resume_one(task).await {
                Ok(false) => {}
                Ok(true) => match task {
                    ResumeTask::WriteChatMarker { .. } => report.markers_written += 1,
                    ResumeTask::LinkChild { .. } => report.links_added += 1,
                    ResumeTask::CreateFirstChat { .. } => report.first_chats_created += 1,
                    ResumeTask::FinishFirstContact { .. } => report.first_contacts_finished += 1,
                    ResumeTask::Leave { .. } => {}
                },
                Err(error) => report.failed.push(format!("{task:?}: {error:#}")),
            }
        }
        let leaves = tasks
            .iter()
            .filter(|t| matches!(t, ResumeTask::Leave { .. }))
            .count();
        // Also rooms already left whose record entry a crash kept (no task: not joined).
        let recorded = match super::leaving::recorded(self.client()).await {
            Ok(rooms) => !rooms.is_empty(),
            Err(error) => {
                report.failed.push(format!("{error:#}"));
                false
            }
        };
        if leaves > 0 || recorded {
            report.rooms_left = self.finish_leaving().await;
            if report.rooms_left < leaves {
                report.failed.push(format!(
                    "{} room(s) still to leave",
                    leaves - report.rooms_left
                ));
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            step = "resume",
            markers_written = report.markers_written,
            links_added = report.links_added,
            first_chats_created = report.first_chats_created,
            first_contacts_finished = report.first_contacts_finished,
            rooms_left = report.rooms_left,
            failed = %serde_json::to_string(&report.failed).unwrap_or_default(),
            duration_ms = report.duration_ms,
            "resume report"
        );
        report
    }

    /// Carries out `task`; `false` if there turned out to be nothing to do.
    async fn resume_one(&self, task: &ResumeTask) -> anyhow::Result<bool> {
        crate::crash_point!("during-resume");
        match task {
            ResumeTask::WriteChatMarker {
                room_id,
                owner,
                chat_id,
            } => {
                let room = self.room(room_id)?;
                let marker = ChatMarker::new(owner, *chat_id, "adopted");
                crate::records::write_chat_marker(&room, &marker).await?;
                tracing::info!(room_id, person = owner, %chat_id, "adopted room marked");
            }
            ResumeTask::LinkChild { space_id, room_id } => {
                let space = self.room(space_id)?;
                let child = OwnedRoomId::try_from(room_id.as_str())?;
                self.link_child(&space, &child, true).await?;
                tracing::info!(space_id, room_id, "missing space link added");
            }
            ResumeTask::CreateFirstChat { owner, space_id } => {
                let lock = self.runtime().people().get(owner);
                let _serialised = lock.lock().await;
                let space = self.room(space_id)?;
                let person = OwnedUserId::try_from(owner.as_str())?;
                let cause = self
                    .store()
                    .user(owner)?
                    .and_then(|u| u.dm_room_id)
                    .unwrap_or_else(|| space_id.clone());
                self.create_first_chat(&person, &space, &cause).await?;
                tracing::info!(space_id, person = owner, "space without C1 completed");
            }
            ResumeTask::FinishFirstContact { owner, room_id } => {
                return self.finish_first_contact(owner, room_id).await;
            }
            ResumeTask::Leave { .. } => {}
        }
        Ok(true)
    }
}
