//! One answer, start to end: typing notice, context, the platform (streamed or not) under one
//! deadline, what edits, redactions and `!cancel` change meanwhile, the cap on its length, and
//! delivery of every part.

use crate::bot::outbox::Kind;
use crate::bot::outbox::Shown;
use crate::bot::outbox::Typing;
use crate::bot::runtime::{stopwatch, Fate, Settled, MAX_RESTARTS};
use crate::bot::usage::Allowance;
use crate::bot::Bot;
use crate::markers::ChatSettings;
use lambda_matrix_core::Chat;
use lambda_matrix_platform::{Answer, Attachment, PlatformError, Progress, Request, Turn};
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::Room;
use std::time::Instant;

/// What is said in answer, and whose text it answers.
struct Said<'a> {
    text: &'a str,
    kind: Kind,
    text_of: &'a matrix_sdk::ruma::EventId,
    /// Stopped by the person (`!cancel`, 🛑): the text shown so far is marked so.
    stopped: bool,
}

/// What is asked, besides the text an edit may change.
struct Question<'a> {
    /// The message's own text (before any edit).
    original: &'a str,
    attachments: &'a [Attachment],
    context: &'a [Turn],
    /// The text of the message replied to, if any.
    replied_to: Option<&'a str>,
    /// The chat's own model and instructions.
    settings: &'a ChatSettings,
}

/// What the platform's work came to.
enum Outcome {
    /// The message was removed: say nothing.
    Silent,
    /// Tell the person this (an answer, or the bot's own notice).
    Say(String, Kind),
}

impl Bot {
    /// Asks the platform and replies with its answer, keeping a typing notice alive meanwhile.
    /// Before the reply is sent an edit of the message restarts the question with the new text,
    /// a redaction drops it silently and `!cancel` stops it (the person is told). `fresh` marks
    /// an answer to a message edited after its first answer. `attachments` (already fetched
    /// and checked) go with every question; an edit changes only the text (a caption).
    pub(crate) async fn answer(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        chat: Chat,
        text: String,
        attachments: Vec<Attachment>,
        fresh: bool,
    ) {
        let room_id = room.room_id().to_owned();
        let fate = self
            .runtime()
            .pending()
            .fate(&room_id, &event.event_id, &text);
        if fate == Fate::Redacted {
            tracing::info!("message removed before its answer; not answered");
            return;
        }
        // From the check of the person's budget to the count of this answer's usage.
        let _budget_turn = self.budget_turn(&chat.owner).await;
        let Some((settings, fallback)) = self.allowed(room, event, &chat.owner).await else {
            return;
        };
        let typing = Typing::start(room.clone(), self.settings().limits.typing_notice);
        let (context, replied_to) = tokio::join!(
            self.context_for(room, event, &chat.owner),
            self.replied_to(room, event)
        );
        let progress = Progress::new(String::new());
        let shower = self.outbox().show_progress(
            room.clone(),
            event.clone(),
            self.outbox().take_sent(&event.event_id),
            progress.subscribe(),
        );
        let started = Instant::now();
        let question = Question {
            original: &text,
            attachments: &attachments,
            context: &context,
            replied_to: replied_to.as_deref(),
            settings: &settings,
        };
        let (result, fate) = self
            .ask(&room_id, event, &chat, question, fate, &progress)
            .await;
        stopwatch::platform_answered();
        let streamed = progress.borrow().clone();
        drop(progress);
        let shown = shower.await.unwrap_or_else(|error| {
            tracing::error!(%error, "the streamed answer's task failed");
            Shown::default()
        });
        // Whose text was answered: the message, or the edit of it the answer used.
        let text_of = match &fate {
            Fate::Answer {
                edit: Some(edit), ..
            } => edit.clone(),
            _ => event.event_id.clone(),
        };
        if let Some(Ok(answer)) = &result {
            self.count_usage(&chat.owner, &answer.usage).await;
            self.outbox().remember_usage(text_of.clone(), &answer.usage);
        }
        let mut outcome = self.outcome(result, &fate, &chat, started, context.len(), fresh);
        if let (Outcome::Say(text, Kind::Answer), Some(mark)) = (&mut outcome, &fallback) {
            *text = format!("{text}\n\n{mark}");
        }
        if let Outcome::Say(text, kind) = outcome {
            crate::crash_point!("after-answer-before-reply");
            let said = Said {
                text: &text,
                kind,
                text_of: &text_of,
                stopped: fate == Fate::Cancelled,
            };
            self.say(room, event, shown, &streamed, said).await;
        }
        typing.stop().await;
    }

    /// Delivers what is said, timed; a failure is logged (the room stays in flight).
    async fn say(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        shown: Shown,
        streamed: &str,
        said: Said<'_>,
    ) {
        match self.deliver(room, event, shown, streamed, said).await {
            Ok(()) => stopwatch::delivered(self.metrics()),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot send the answer"),
        }
    }

    /// The chat's earlier messages, if the platform wants them (none if they cannot be read).
    async fn context_for(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        owner: &str,
    ) -> Vec<Turn> {
        let limit = self.platform().context_messages();
        match self.context(room, &event.event_id, owner, limit).await {
            Ok(turns) => turns,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot read the chat's history for context; answering without it"
                );
                Vec::new()
            }
        }
    }

    /// The chat's settings for this answer as the person's budgets allow (the fallback model
    /// over a budget, with the mark to put under the answer); `None` when not allowed at all
    /// (the person was told instead).
    async fn allowed(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        person: &str,
    ) -> Option<(ChatSettings, Option<String>)> {
        match self.allowance(person).await {
            Allowance::Ask => Some((self.settings_for(room).await, None)),
            Allowance::Fallback { model, mark } => {
                let mut settings = self.settings_for(room).await;
                settings.model = Some(model);
                Some((settings, Some(mark)))
            }
            Allowance::Refuse(notice) => {
                let said = Some(event.event_id.as_ref());
                if let Err(error) = (self.outbox())
                    .reply_answering(room, event.into(), &notice, Kind::Notice, said)
                    .await
                {
                    tracing::warn!(error = format!("{error:#}"), "cannot send a reply");
                }
                None
            }
        }
    }

    /// The chat's settings (`!model`, `!instructions`); the defaults if they cannot be read.
    async fn settings_for(&self, room: &Room) -> ChatSettings {
        match self.chat_settings().current(room, self.bot_id()).await {
            Ok(settings) => settings,
            Err(error) => {
                tracing::warn!(%error, "cannot read the chat's settings; answering with the defaults");
                ChatSettings::default()
            }
        }
    }

    /// Asks the platform until an answer is final for the message's fate: an edit asks again
    /// (at most [`MAX_RESTARTS`] times), `!cancel` or a redaction stops. The call waits for its
    /// turn first (`LAMBDA_MAX_CONCURRENT_ANSWERS`, fair between people); one deadline
    /// (`LAMBDA_PLATFORM_TIMEOUT`), counted from the turn, covers the rest. `None`: stopped.
    async fn ask(
        &self,
        room_id: &OwnedRoomId,
        event: &OriginalSyncRoomMessageEvent,
        chat: &Chat,
        question: Question<'_>,
        mut fate: Fate,
        progress: &Progress,
    ) -> (Option<Result<Answer, PlatformError>>, Fate) {
        if !matches!(fate, Fate::Answer { .. }) {
            return (None, fate);
        }
        let pending = self.runtime().pending();
        let stop = pending.stop_signal(room_id, &event.event_id);
        let turn = self.runtime().answers().acquire(&chat.owner);
        tokio::pin!(turn);
        let _turn = loop {
            tokio::select! {
                permit = &mut turn => break permit,
                () = stop.notified() => {
                    // An edit while waiting changes the text; `!cancel` or a redaction stops.
                    fate = pending.fate(room_id, &event.event_id, question.original);
                    if !matches!(fate, Fate::Answer { .. }) {
                        return (None, fate);
                    }
                }
            }
        };
        fate = pending.fate(room_id, &event.event_id, question.original);
        let limit = self.settings().limits.platform_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let mut restarts = 0;
        loop {
            let text = match &fate {
                Fate::Answer { text, .. } => text.clone(),
                Fate::Cancelled | Fate::Redacted => return (None, fate),
            };
            let request = Request {
                user_id: chat.owner.clone(),
                chat_id: chat.id,
                text,
                attachments: question.attachments.to_vec(),
                context: question.context.to_vec(),
                replied_to: question.replied_to.map(str::to_owned),
                model: question.settings.model.clone(),
                instructions: question.settings.instructions.clone(),
            };
            stopwatch::platform_called();
            let asked =
                tokio::time::timeout_at(deadline, self.platform().answer(request, progress));
            let result = tokio::select! {
                result = asked => Some(result.unwrap_or(Err(PlatformError::Timeout(limit)))),
                () = stop.notified() => None,
            };
            // Labelled with what it answered: an edit too late for a restart gets its own.
            match pending.settle(room_id, &event.event_id, &fate, restarts < MAX_RESTARTS) {
                Settled::Again(next) => {
                    restarts += 1;
                    fate = next;
                    tracing::info!(
                        "message edited before its answer; asking again with the new text"
                    );
                }
                Settled::Deliver(asked) => {
                    if result.is_some() {
                        return (result, asked);
                    }
                    // A stale wake-up: ask again.
                    fate = asked;
                }
                Settled::Stop(stopped) => return (None, stopped),
            }
        }
    }

    /// What to tell the person, with the log line and metric for it.
    fn outcome(
        &self,
        result: Option<Result<Answer, PlatformError>>,
        fate: &Fate,
        chat: &Chat,
        started: Instant,
        context: usize,
        fresh: bool,
    ) -> Outcome {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match (result, fate) {
            (None, Fate::Redacted) => {
                tracing::info!("message removed before its answer; not answered");
                Outcome::Silent
            }
            (None, _) => {
                tracing::info!(elapsed_ms, "answer cancelled");
                Outcome::Say(self.texts().answer_cancelled(), Kind::Notice)
            }
            (Some(Ok(answer)), _) => {
                self.metrics().answered(started.elapsed());
                let text = self.capped(answer);
                tracing::info!(person = %chat.owner, chat_id = %chat.id, elapsed_ms, context, chars = text.chars().count(), "answered");
                let text = if fresh {
                    format!("{}\n\n{text}", self.texts().edited_answer_heading())
                } else {
                    text
                };
                Outcome::Say(text, Kind::Answer)
            }
            (Some(Err(error)), _) => {
                self.metrics().platform_error(started.elapsed());
                tracing::warn!(person = %chat.owner, chat_id = %chat.id, elapsed_ms, platform = self.platform().name(), kind = error.kind(), %error, "platform failed");
                Outcome::Say(self.platform_error_text(&error), Kind::Notice)
            }
        }
    }

    /// The answer's text, cut at `LAMBDA_MAX_ANSWER_CHARS` with a note if it is longer (or the
    /// platform already cut it).
    fn capped(&self, answer: Answer) -> String {
        let max = self.settings().limits.max_answer_chars;
        let (mut text, cut) = match answer.text.char_indices().nth(max) {
            Some((at, _)) => (answer.text[..at].to_owned(), true),
            None => (answer.text, answer.cut),
        };
        if cut {
            tracing::info!(max, "answer cut at the maximum length");
            text = format!("{}\n\n{}", text.trim_end(), self.texts().answer_cut(max));
        }
        text
    }

    /// Sends the outcome of an answer: into the parts already shown (an answer completes them;
    /// a notice leaves the text streamed so far marked as cut off, then follows), else as a new
    /// reply.
    async fn deliver(
        &self,
        room: &Room,
        event: &OriginalSyncRoomMessageEvent,
        mut shown: Shown,
        streamed: &str,
        said: Said<'_>,
    ) -> anyhow::Result<()> {
        let Said {
            text,
            kind,
            text_of,
            stopped,
        } = said;
        let to = event.into();
        if shown.slots.is_empty() {
            return self
                .outbox()
                .reply_answering(room, to, text, kind, Some(text_of))
                .await;
        }
        let answer = match kind {
            Kind::Answer => text.to_owned(),
            Kind::Notice => format!(
                "{}\n\n{}",
                streamed.trim_end(),
                if stopped {
                    self.texts().answer_stopped()
                } else {
                    self.texts().answer_interrupted()
                }
            ),
        };
        let parts = shown.final_parts(&answer);
        let slots = &mut shown.slots;
        self.outbox()
            .deliver_parts(room, to, &parts, Kind::Answer, slots, Some(text_of))
            .await?;
        if kind == Kind::Notice {
            self.outbox()
                .reply_answering(room, to, text, kind, Some(text_of))
                .await?;
        }
        Ok(())
    }

    /// What the person is told when the platform failed.
    fn platform_error_text(&self, error: &PlatformError) -> String {
        match error {
            PlatformError::Timeout(_) => self.texts().platform_timeout(),
            PlatformError::RateLimited { .. } => self.texts().platform_busy(),
            PlatformError::Rejected { .. } => self.texts().platform_misconfigured(),
            PlatformError::Unavailable(_) => self.texts().platform_unavailable(),
            PlatformError::Malformed(_) | PlatformError::Failed(_) => {
                self.texts().platform_failed()
            }
        }
    }
}
