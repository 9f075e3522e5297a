//! Creating a room once. `createRoom` has no transaction id: when the homeserver made the room
//! but its answer was lost (a dropped connection, a timeout, a 5xx from something in between),
//! asking again makes a second room. So the SDK's own retries are off for it, and after an
//! answer that may have been lost the bot first watches the sync for the room — found by its
//! marker — and asks again only when the sync has shown that no such room was made.

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
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::{Room, RoomState};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

/// Requests made for one room at most; no pause between them (the bot watches the sync for
/// the room first).
const ATTEMPTS: Policy = Policy::doubling(Duration::ZERO, Duration::ZERO).tries(3);
/// How long one request may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(60);
/// Sync responses watched for the room after a lost answer: the second one was asked for after
/// the loss, so it shows the room if the homeserver made it.
const RESPONSES_WATCHED: usize = 2;
/// How long the bot watches for them (longer than one long-poll).
const WATCH_FOR: Duration = Duration::from_secs(45);

/// The room a `createRoom` was for, recognised by its marker.
#[derive(Clone, Debug)]
pub(crate) enum Sought<'a> {
    /// The Space of a person.
    Space { owner: &'a str },
    /// A chat room made for a command (its marker's cause and chat id).
    Chat { marker: &'a ChatMarker },
}

impl Bot {
    /// Creates the room `request` describes, once (see the module docs); returns it joined.
    pub(crate) async fn create_room_once(
        &self,
        request: Request,
        sought: Sought<'_>,
    ) -> anyhow::Result<Room> {
        let mut updates = self.client().subscribe_to_all_room_updates();
        let mut tries = ATTEMPTS.start();
        loop {
            let before: HashSet<OwnedRoomId> = self
                .client()
                .joined_rooms()
                .iter()
                .map(|r| r.room_id().to_owned())
                .collect();
            let sent = self
                .client()
                .send(request.clone())
                .with_request_config(one_try())
                .await;
            let error = match sent {
                Ok(response) => return self.joined(&response.room_id).await,
                Err(error) => error,
            };
            if !answer_may_be_lost(&error) {
                return Err(error).context("the homeserver refused to create the room");
            }
            tracing::info!(%error, attempt = tries.failures() + 1, "the answer to createRoom was lost; looking for the room before asking again");
            match self.watch_for(&mut updates, &before, &sought).await {
                Watched::Found(room) => {
                    tracing::info!(room_id = %room.room_id(), "the room was made; its answer was lost");
                    return Ok(room);
                }
                Watched::NotMade if tries.failed().is_some() => {}
                Watched::NotMade => {
                    return Err(error).context("cannot create the room");
                }
                Watched::Unknown => {
                    return Err(error).context(
                        "cannot tell whether the homeserver made the room (no sync since)",
                    )
                }
            }
        }
    }

    /// The created room as a joined [`Room`] without waiting for the sync: joining a room the
    /// bot is in changes nothing on the server and gives the SDK the room.
    async fn joined(&self, room_id: &OwnedRoomId) -> anyhow::Result<Room> {
        if let Some(room) = self.client().get_room(room_id) {
            if room.state() == RoomState::Joined {
                return Ok(room);
            }
        }
        self.client()
            .join_room_by_id(room_id)
            .await
            .context("cannot open the room just created")
    }

    async fn watch_for(
        &self,
        updates: &mut tokio::sync::broadcast::Receiver<matrix_sdk::sync::RoomUpdates>,
        before: &HashSet<OwnedRoomId>,
        sought: &Sought<'_>,
    ) -> Watched {
        let deadline = tokio::time::Instant::now() + WATCH_FOR;
        let mut responses = 0;
        // Drop what arrived before the request.
        while updates.try_recv().is_ok() {}
        loop {
            if let Some(room) = self.find(before, sought).await {
                return Watched::Found(room);
            }
            if responses >= RESPONSES_WATCHED {
                return Watched::NotMade;
            }
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    responses += 1
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => {
                    return Watched::Unknown
                }
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
                Sought::Space { owner } => {
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

/// What watching the sync showed.
enum Watched {
    Found(Room),
    NotMade,
    /// No sync response came (the sync is failing, or not running yet).
    Unknown,
}

/// Whether the homeserver may have made the room although the bot got no answer: no response
/// at all, or a server error (which a proxy in between gives after the server acted). A 4xx is
/// the homeserver's own refusal: nothing was made.
fn answer_may_be_lost(error: &matrix_sdk::HttpError) -> bool {
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
        let room = self
            .create_room_once(request, Sought::Chat { marker: &marker })
            .await
            .context("cannot create the chat room")?;
        let room_id: OwnedRoomId = room.room_id().to_owned();
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
            .create(owner.as_str(), id, name, room_id.as_str())?;
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
