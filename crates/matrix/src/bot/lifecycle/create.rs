//! Creating a room once. `createRoom` has no transaction id: when the homeserver made the room
//! but its answer was lost (a dropped connection, a timeout, a 5xx from something in between),
//! asking again makes a second room. So the SDK's own retries are off for it, and after an
//! answer that may have been lost the bot first watches the sync for the room — found by its
//! marker — and asks again only when the sync has shown that no such room was made. While the
//! sync fails it cannot tell, so a live bot waits for the sync: saying "that did not work" about
//! a room that may exist is a falsehood the person acts on (a second chat). Once the homeserver has
//! answered, the room exists: nothing after that fails the command (a failed join is the sync's
//! to show). A request that outlives the bot that sent it is caught by the room's claim
//! ([`super::claim`]).

use super::claim::{claim_maybe_refused, claim_taken, Made};
use crate::bot::outbox::{worth_retrying, SEND};
use crate::bot::Bot;
use crate::markers::{ChatMarker, SpaceMarker, VERSION};
use crate::records::Read;
use crate::retry::Policy;
use crate::template;
use anyhow::Context as _;
use lambda_matrix_core::{Chat, ChatId, ChatName};
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request;
use matrix_sdk::ruma::api::client::state::send_state_event;
use matrix_sdk::ruma::api::error::{ErrorKind, RetryAfter};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::sync::RoomUpdates;
use matrix_sdk::{Room, RoomState};
use serde_json::json;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Requests made for one room at most; no pause between them after a lost answer (the bot
/// watches the sync for the room first).
const ATTEMPTS: Policy = Policy::doubling(Duration::ZERO, Duration::ZERO).tries(3);
/// How long one request may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest pause a 429 may ask for to be asked again (a longer one, or none named, is the
/// homeserver's refusal for now; the caller decides).
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// Sync responses watched for the room: the second one was asked for after the loss (or after
/// the answer), so it shows the room if the homeserver made it.
const RESPONSES_WATCHED: usize = 2;
/// How long without a sync response before the wait is logged as a warning (once).
const QUIET_SYNC: Duration = Duration::from_secs(45);
/// Whether a refused claim was logged as a warning already (once a process).
static CLAIM_REFUSAL_WARNED: AtomicBool = AtomicBool::new(false);

/// The room a `createRoom` was for, recognised by its marker.
#[derive(Clone, Debug)]
pub(crate) enum Sought<'a> {
    /// The Space of a person, made for a direct chat (`cause`, its room id).
    Space { owner: &'a str, cause: &'a str },
    /// A chat room made for a command (its marker's cause and chat id).
    Chat { marker: &'a ChatMarker },
}

impl Bot {
    /// Creates the room `request` describes, once (see the module docs); returns it joined,
    /// with what an earlier request made it with if one did.
    pub(crate) async fn create_room_once(
        &self,
        plain: Request,
        sought: Sought<'_>,
    ) -> anyhow::Result<Made> {
        let mut updates = self.client().subscribe_to_all_room_updates();
        let mut tries = ATTEMPTS.start();
        let claim = sought.claim(self.bot_id());
        let mut request = Some(crate::template::claimed(&plain, &claim));
        loop {
            let before: HashSet<OwnedRoomId> = self
                .client()
                .joined_rooms()
                .iter()
                .map(|r| r.room_id().to_owned())
                .collect();
            let sent = self
                .client()
                .send(request.clone().unwrap_or_else(|| plain.clone()))
                .with_request_config(one_try())
                .await;
            let error = match sent {
                Ok(response) => {
                    return Ok(self.opened(&response.room_id, &mut updates).await?.into())
                }
                Err(error) => error,
            };
            if request.is_some() && claim_taken(&error) {
                if let Some(earlier) = self.made_earlier(&claim, &sought).await {
                    return Ok(Made {
                        room: self.opened(&earlier.room_id, &mut updates).await?,
                        earlier_chat: earlier.chat,
                    });
                }
                request = None;
                continue;
            }
            if request.is_some() && claim_maybe_refused(&error) {
                claim_refused(&error);
                request = None;
                continue;
            }
            if let Some(pause) = rate_limited(&error) {
                if tries.failed().is_none() {
                    return Err(error).context("the homeserver limits room creation");
                }
                tracing::info!(%error, pause_ms = pause.as_millis() as u64, "createRoom was rate limited; asking again after the pause");
                tokio::time::sleep(pause).await;
                continue;
            }
            if !answer_may_be_lost(&error) {
                return Err(error).context("the homeserver refused to create the room");
            }
            tracing::info!(%error, attempt = tries.failures() + 1, "the answer to createRoom was lost; looking for the room before asking again");
            let seen = self
                .until_synced(&mut updates, || self.find(&before, &sought))
                .await?;
            match seen {
                Some(room) => {
                    tracing::info!(room_id = %room.room_id(), "the room was made; its answer was lost");
                    return Ok(room.into());
                }
                None if tries.failed().is_some() => {}
                None => return Err(error).context("cannot create the room"),
            }
        }
    }

    /// The created room as a joined [`Room`]. Joining a room the bot is in changes nothing on
    /// the server and gives the SDK the room without waiting for the sync; when the join
    /// fails, the sync shows the room (the bot made it, so it is in it).
    async fn opened(
        &self,
        room_id: &OwnedRoomId,
        updates: &mut Receiver<RoomUpdates>,
    ) -> anyhow::Result<Room> {
        let joined = || async {
            self.client()
                .get_room(room_id)
                .filter(|room| room.state() == RoomState::Joined)
        };
        if let Some(room) = joined().await {
            return Ok(room);
        }
        let error = match self.client().join_room_by_id(room_id).await {
            Ok(room) => return Ok(room),
            Err(error) => error,
        };
        tracing::info!(%room_id, %error, "cannot open the room just created; waiting for the sync to show it");
        match self.until_synced(updates, joined).await? {
            Some(room) => Ok(room),
            None => Err(error).context("the room just created is not joined"),
        }
    }

    /// What `look` finds, looked at now and after each sync response from now on, up to
    /// [`RESPONSES_WATCHED`] of them (`None`: not found by then). Once the bot is live it waits
    /// as long as the sync fails (a stop ends the wait with the job). Before (resume, at a
    /// start) no sync runs until it is done: after [`QUIET_SYNC`] it fails, and the next start
    /// finishes what is left (its resume finds the room by its marker).
    async fn until_synced<T, F, Fut>(
        &self,
        updates: &mut Receiver<RoomUpdates>,
        look: F,
    ) -> anyhow::Result<Option<T>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        // Drop what arrived before.
        while updates.try_recv().is_ok() {}
        let mut responses = 0;
        let mut warned = false;
        loop {
            if let Some(found) = look().await {
                return Ok(Some(found));
            }
            if responses >= RESPONSES_WATCHED {
                return Ok(None);
            }
            match tokio::time::timeout(QUIET_SYNC, updates.recv()).await {
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => responses += 1,
                Ok(Err(RecvError::Closed)) => anyhow::bail!("the client stopped"),
                Err(_) if !self.runtime().is_live() => {
                    anyhow::bail!("no sync response yet: cannot tell whether the room was made")
                }
                Err(_) if !warned => {
                    warned = true;
                    tracing::warn!(quiet_s = QUIET_SYNC.as_secs(), "no sync response since a room was created; the command waits for the sync to show the room");
                }
                Err(_) => {}
            }
        }
    }

    /// A joined room, new since `before`, whose trusted marker is the one sought.
    async fn find(&self, before: &HashSet<OwnedRoomId>, sought: &Sought<'_>) -> Option<Room> {
        for room in self.client().joined_rooms() {
            if before.contains(room.room_id()) {
                continue;
            }
            let matches = match sought {
                Sought::Space { owner, .. } => {
                    matches!(crate::records::space_marker(&room, self.bot_id()).await,
                        Ok(Some(Read::Trusted(SpaceMarker { owner: found, .. }))) if found == *owner)
                }
                Sought::Chat { marker } => {
                    matches!(crate::records::chat_marker(&room, self.bot_id()).await,
                        Ok(Some(Read::Trusted(found))) if found.owner == marker.owner
                            && found.chat_id == marker.chat_id
                            && found.cause == marker.cause)
                }
            };
            if matches {
                return Some(room);
            }
        }
        None
    }
}

/// One request, no retries by the SDK (the callers pace their own tries).
fn one_try() -> RequestConfig {
    RequestConfig::new().timeout(TRY_TIMEOUT).disable_retry()
}

/// The pause a 429 asks for, if it names one the bot waits out (Synapse always names one).
fn rate_limited(error: &matrix_sdk::HttpError) -> Option<Duration> {
    let Some(ErrorKind::LimitExceeded(data)) = error.client_api_error_kind() else {
        return None;
    };
    let pause = match data.retry_after? {
        RetryAfter::Delay(delay) => delay,
        RetryAfter::DateTime(at) => at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    (pause <= LONGEST_PAUSE).then_some(pause)
}

/// Logs a claim the homeserver may have refused (a warning once a process, then at debug):
/// the room is asked for again without one (each room tries its claim first).
fn claim_refused(error: &matrix_sdk::HttpError) {
    if CLAIM_REFUSAL_WARNED.swap(true, Ordering::Relaxed) {
        tracing::debug!(%error, "createRoom with a claim was refused; asking again without it");
    } else {
        tracing::warn!(%error, "createRoom with a claim (a local alias) was refused; asking again without it: a room whose request outlives a crash may then be made twice");
    }
}

/// Whether the homeserver may have made the room although the bot got no answer: no response
/// at all, or a server error (which a proxy in between gives after the server acted). A 4xx is
/// the homeserver's own refusal: nothing was made. (For any request: the homeserver did not
/// answer it, or failed; it may pass.)
pub(super) fn answer_may_be_lost(error: &matrix_sdk::HttpError) -> bool {
    match error.as_client_api_error() {
        Some(api) => api.status_code.is_server_error(),
        None => true,
    }
}

impl Bot {
    /// Makes C1 in a Space whose marker has issued no id yet, then raises the marker's
    /// `last_chat_index` to 1. The one id counted after its room exists: a marker at 0 means
    /// "never had a chat", so resume makes C1 only then, and a crash in between leaves C1 in
    /// place (found by its marker; `!delete` counts it before removing it).
    pub(crate) async fn create_first_chat(
        &self,
        owner: &OwnedUserId,
        space: &Room,
        cause: &str,
    ) -> anyhow::Result<Chat> {
        let name = ChatName::parse(&self.texts().chat_name(ChatId::FIRST))?;
        let chat = self
            .create_chat_room(owner, space, ChatId::FIRST, &name, cause)
            .await?;
        crate::crash_point!("after-c1-before-index");
        self.raise_last_index(space, owner.as_str(), ChatId::FIRST)
            .await?;
        Ok(chat)
    }

    /// Writes `owner`'s Space marker with `last_chat_index` = `id`.
    pub(crate) async fn raise_last_index(
        &self,
        space: &Room,
        owner: &str,
        id: ChatId,
    ) -> anyhow::Result<()> {
        let marker = SpaceMarker {
            owner: owner.to_owned(),
            last_chat_index: id.number(),
            version: VERSION,
        };
        crate::records::write_space_marker(space, &marker)
            .await
            .context("cannot raise last_chat_index")?;
        Ok(())
    }

    /// Creates a chat room in `space` with its marker and parent link, links it from the
    /// Space, and records it in the cache (server first).
    pub(crate) async fn create_chat_room(
        &self,
        owner: &OwnedUserId,
        space: &Room,
        id: ChatId,
        name: &ChatName,
        cause: &str,
    ) -> anyhow::Result<Chat> {
        let marker = ChatMarker::new(owner.as_str(), id, cause);
        let via = self.via();
        let request = template::chat_room(
            owner,
            name.as_str().to_owned(),
            &marker,
            space.room_id().as_str(),
            &via,
            self.settings().matrix.encrypt_rooms,
        );
        let made = self
            .create_room_once(request, Sought::Chat { marker: &marker })
            .await
            .context("cannot create the chat room")?;
        // Made by an earlier request (a bot killed while it was under way): its id and name.
        let (id, name) = match &made.earlier_chat {
            Some((marker, room_name)) => (
                marker.id().unwrap_or(id),
                room_name
                    .as_deref()
                    .and_then(|n| ChatName::parse(n).ok())
                    .unwrap_or_else(|| name.clone()),
            ),
            None => (id, name.clone()),
        };
        let room_id: OwnedRoomId = made.room.room_id().to_owned();
        crate::crash_point!("after-room-before-cache");
        // The room exists (server first), so the chat is made whatever follows: a link the
        // homeserver still refuses after the send window is added by the next start's resume
        // (the room's own parent link and marker say where it belongs). Telling the person it
        // failed would be wrong: the chat would turn up anyway.
        if let Err(error) = self.link_child(space, &room_id, true).await {
            tracing::warn!(person = %owner, chat_id = %id, %room_id, error = format!("{error:#}"), "a new chat is not linked from its Space yet; the next start links it");
        }
        let chat = self
            .chats()
            .create(owner.as_str(), id, &name, room_id.as_str())?;
        tracing::info!(person = %owner, chat_id = %id, %room_id, "chat room created");
        Ok(chat)
    }

    /// Adds (or with `linked == false` removes) the `m.space.child` link from `space` to
    /// `child`, trying again on failures that may pass.
    pub(crate) async fn link_child(
        &self,
        space: &Room,
        child: &OwnedRoomId,
        linked: bool,
    ) -> anyhow::Result<()> {
        let content = if linked {
            json!({ "via": [self.via()] })
        } else {
            json!({})
        };
        // A state event is the same however often it is sent: failures are tried again like
        // a send, for `MATRIX_SEND_RETRY_FOR`.
        let request = send_state_event::v3::Request::new_raw(
            space.room_id().to_owned(),
            "m.space.child".into(),
            child.to_string(),
            Raw::new(&content)?.cast_unchecked(),
        );
        let mut tries = SEND.within(self.settings().limits.send_retry_for).start();
        loop {
            let sent = self
                .client()
                .send(request.clone())
                .with_request_config(one_try())
                .await;
            let error = match sent {
                Ok(_) => return Ok(()),
                Err(error) => matrix_sdk::Error::from(error),
            };
            match tries.failed() {
                Some(wait) if worth_retrying(&error) => {
                    tracing::info!(space_id = %space.room_id(), room_id = %child, %error, retry_in_ms = wait.as_millis() as u64, "a space link failed; trying again");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(error).context("cannot update the space's child list"),
            }
        }
    }
}
