//! A person in a test: a real matrix-sdk client with its own store (encryption on), logged in
//! with a password, with helpers to do what a person does in a client and to read what the bot
//! did from the person's side of the homeserver.

mod reading;

pub use reading::Message;

use crate::synapse::Registered;
use anyhow::{bail, Context};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::RawAnySyncOrStrippedState;
use matrix_sdk::ruma::api::client::room::create_room::v3::{
    Request as CreateRoomRequest, RoomPreset,
};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UInt};
use matrix_sdk::{Client, Room};
use std::future::Future;
use std::time::{Duration, Instant};

/// How long helpers wait for the bot before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A logged-in person with their own device and store.
#[derive(Debug)]
pub struct Person {
    /// The client.
    pub client: Client,
    /// Who they are.
    pub account: Registered,
    _store: tempfile::TempDir,
}

/// A file to send with [`Person::send_file`].
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// The file name.
    pub name: &'a str,
    /// The content type given to the homeserver and in the event (`image/png`, …).
    pub mime: &'a str,
    /// The content.
    pub bytes: &'a [u8],
    /// A caption (the event's `body`, with the name in `filename`).
    pub caption: Option<&'a str>,
    /// Marked as a voice message (`org.matrix.msc3245.voice`).
    pub voice: bool,
    /// The size written in the event's `info` (default: the real size): a lie, for tests.
    pub declared_size: Option<u32>,
}

impl<'a> Upload<'a> {
    /// `bytes` named `name` of type `mime`, no caption, not a voice message, true size.
    pub fn new(name: &'a str, mime: &'a str, bytes: &'a [u8]) -> Upload<'a> {
        Upload {
            name,
            mime,
            bytes,
            caption: None,
            voice: false,
            declared_size: None,
        }
    }
}

impl Person {
    /// Logs `account` in against `homeserver` with a fresh store (encryption on).
    pub async fn login(homeserver: &str, account: &Registered) -> anyhow::Result<Person> {
        Self::login_with(homeserver, account, false).await
    }

    /// Like [`Person::login`], as a client that excludes insecure devices (MSC4153): room keys
    /// go only to devices signed by their owner, and only such senders are decrypted.
    pub async fn login_excluding_insecure_devices(
        homeserver: &str,
        account: &Registered,
    ) -> anyhow::Result<Person> {
        Self::login_with(homeserver, account, true).await
    }

    async fn login_with(
        homeserver: &str,
        account: &Registered,
        strict: bool,
    ) -> anyhow::Result<Person> {
        use matrix_sdk_base::crypto::{CollectStrategy, DecryptionSettings, TrustRequirement};
        let store = tempfile::Builder::new().prefix("lm-person-").tempdir()?;
        let mut builder = Client::builder()
            .homeserver_url(homeserver)
            .sqlite_store(store.path(), None);
        if strict {
            builder = builder
                .with_room_key_recipient_strategy(CollectStrategy::IdentityBasedStrategy)
                .with_decryption_settings(DecryptionSettings {
                    sender_device_trust_requirement: TrustRequirement::CrossSigned,
                });
        }
        let client = builder.build().await?;
        client
            .matrix_auth()
            .login_username(&account.localpart, &account.password)
            .initial_device_display_name("test person")
            .send()
            .await
            .with_context(|| format!("login as {}", account.user_id))?;
        client
            .sync_once(SyncSettings::default().timeout(Duration::ZERO))
            .await?;
        Ok(Person {
            client,
            account: account.clone(),
            _store: store,
        })
    }

    /// The person's user id.
    pub fn user_id(&self) -> OwnedUserId {
        OwnedUserId::try_from(self.account.user_id.as_str())
            .unwrap_or_else(|_| unreachable!("registered id"))
    }

    /// One short sync.
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.client
            .sync_once(SyncSettings::default().timeout(Duration::from_millis(300)))
            .await?;
        Ok(())
    }

    /// Syncs until `check` returns `Some`, or fails after [`PATIENCE`] naming `what`.
    pub async fn until<T, F, Fut>(&self, what: &str, check: F) -> anyhow::Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(found) = check().await {
                return Ok(found);
            }
            if started.elapsed() > PATIENCE {
                bail!("waited {PATIENCE:?} for {what}");
            }
            self.sync().await?;
        }
    }

    /// Creates a direct chat with `bot` (encrypted or not) and invites it.
    pub async fn create_dm(&self, bot: &str, encrypted: bool) -> anyhow::Result<OwnedRoomId> {
        let mut request = CreateRoomRequest::new();
        request.is_direct = true;
        request.preset = Some(RoomPreset::TrustedPrivateChat);
        request.invite = vec![OwnedUserId::try_from(bot)?];
        if encrypted {
            let event = serde_json::json!({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}});
            request.initial_state = vec![Raw::from_json_string(event.to_string())?];
        }
        Ok(self.client.create_room(request).await?.room_id().to_owned())
    }

    /// Creates a private room (not encrypted) inviting `invite`, marked as a direct chat or
    /// not, as a client making a group room (or a direct chat with several people) does.
    pub async fn create_room_inviting(
        &self,
        invite: &[&str],
        direct: bool,
    ) -> anyhow::Result<OwnedRoomId> {
        let mut request = CreateRoomRequest::new();
        request.is_direct = direct;
        request.preset = Some(RoomPreset::PrivateChat);
        request.invite = invite
            .iter()
            .map(|id| OwnedUserId::try_from(*id))
            .collect::<Result<_, _>>()?;
        Ok(self.client.create_room(request).await?.room_id().to_owned())
    }

    /// A room the person's client knows.
    pub fn room(&self, room_id: &str) -> anyhow::Result<Room> {
        let id = <&RoomId>::try_from(room_id)?;
        self.client
            .get_room(id)
            .with_context(|| format!("unknown room {room_id}"))
    }

    /// Waits for `count` pending invites and joins them all; returns their ids.
    pub async fn accept_invites(&self, count: usize) -> anyhow::Result<Vec<OwnedRoomId>> {
        let rooms = self
            .until(&format!("{count} invites"), || async {
                let invited = self.client.invited_rooms();
                (invited.len() >= count).then_some(invited)
            })
            .await?;
        let mut ids = Vec::new();
        for room in rooms {
            room.join().await?;
            ids.push(room.room_id().to_owned());
        }
        self.sync().await?;
        Ok(ids)
    }

    /// Sends a text message; returns its event id.
    pub async fn send(&self, room_id: &str, text: &str) -> anyhow::Result<OwnedEventId> {
        let room = self.room(room_id)?;
        Ok(room
            .send(RoomMessageEventContent::text_plain(text))
            .await?
            .response
            .event_id)
    }

    /// Uploads `bytes` and sends them as a file message (`m.image`, `m.audio`, `m.file` by the
    /// content type, as clients do; encrypted in an encrypted room), with an optional caption;
    /// returns its event id. See [`Upload`].
    pub async fn send_file(
        &self,
        room_id: &str,
        upload: Upload<'_>,
    ) -> anyhow::Result<OwnedEventId> {
        use matrix_sdk::attachment::{
            AttachmentConfig, AttachmentInfo, BaseAudioInfo, BaseFileInfo, BaseImageInfo,
        };
        use matrix_sdk::ruma::events::room::message::TextMessageEventContent;
        let room = self.room(room_id)?;
        let content_type: mime::Mime = upload.mime.parse().context("a MIME type")?;
        let size = Some(UInt::from(
            upload.declared_size.unwrap_or(upload.bytes.len() as u32),
        ));
        let info = if upload.voice {
            AttachmentInfo::Voice(BaseAudioInfo {
                size,
                ..BaseAudioInfo::default()
            })
        } else if content_type.type_() == mime::AUDIO {
            AttachmentInfo::Audio(BaseAudioInfo {
                size,
                ..BaseAudioInfo::default()
            })
        } else if content_type.type_() == mime::IMAGE {
            AttachmentInfo::Image(BaseImageInfo {
                size,
                ..BaseImageInfo::default()
            })
        } else {
            AttachmentInfo::File(BaseFileInfo { size })
        };
        let config = AttachmentConfig::new()
            .info(info)
            .caption(upload.caption.map(TextMessageEventContent::plain));
        let response = room
            .send_attachment(upload.name, &content_type, upload.bytes.to_vec(), config)
            .await?;
        Ok(response.event_id)
    }

    /// Edits the caption of the file message `original` (as clients do: `m.new_content` is the
    /// whole file content with the new caption as `body` and the name in `filename`).
    pub async fn edit_caption(
        &self,
        room_id: &str,
        original: &OwnedEventId,
        caption: &str,
    ) -> anyhow::Result<OwnedEventId> {
        let room = self.room(room_id)?;
        let event = room.event(original, None).await?;
        let json: serde_json::Value = event.raw().deserialize_as()?;
        let mut new_content = json["content"].clone();
        let Some(fields) = new_content.as_object_mut() else {
            bail!("{original} has no content");
        };
        let name = fields
            .get("filename")
            .or_else(|| fields.get("body"))
            .cloned()
            .unwrap_or_default();
        fields.remove("m.relates_to");
        fields.insert("filename".into(), name);
        fields.insert("body".into(), caption.into());
        let mut content = new_content.clone();
        content["body"] = format!("* {caption}").into();
        content["m.new_content"] = new_content;
        content["m.relates_to"] =
            serde_json::json!({"rel_type": "m.replace", "event_id": original});
        self.send_raw(room_id, content).await
    }

    /// Sends a message event with exactly `content` (for malformed or hostile events a
    /// client would not make); returns its event id.
    pub async fn send_raw(
        &self,
        room_id: &str,
        content: serde_json::Value,
    ) -> anyhow::Result<OwnedEventId> {
        let room = self.room(room_id)?;
        Ok(room
            .send_raw("m.room.message", content)
            .await?
            .response
            .event_id)
    }

    /// Reacts to `target` with `key` (an `m.reaction` annotation, encrypted in an encrypted
    /// room, as clients send it).
    pub async fn react(
        &self,
        room_id: &str,
        target: &OwnedEventId,
        key: &str,
    ) -> anyhow::Result<OwnedEventId> {
        let room = self.room(room_id)?;
        let content = serde_json::json!({
            "m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}
        });
        Ok(room
            .send_raw("m.reaction", content)
            .await?
            .response
            .event_id)
    }

    /// Edits `original` to say `text` (as clients do: `m.replace` with `m.new_content`).
    pub async fn edit(
        &self,
        room_id: &str,
        original: &OwnedEventId,
        text: &str,
    ) -> anyhow::Result<OwnedEventId> {
        use matrix_sdk::ruma::events::room::message::ReplacementMetadata;
        let room = self.room(room_id)?;
        let content = RoomMessageEventContent::text_plain(text)
            .make_replacement(ReplacementMetadata::new(original.clone(), None));
        Ok(room.send(content).await?.response.event_id)
    }

    /// Removes (redacts) `event_id`.
    pub async fn redact(&self, room_id: &str, event_id: &OwnedEventId) -> anyhow::Result<()> {
        let room = self.room(room_id)?;
        room.redact(event_id, None, None).await?;
        Ok(())
    }

    /// Who the homeserver says is typing in `room_id` right now (a fresh sync of that room's
    /// ephemeral events).
    pub async fn typing(&self, room_id: &str) -> anyhow::Result<Vec<String>> {
        let token = self.client.access_token().context("logged in")?;
        // Synapse caches a completed /sync response per filter for a while: a filter never
        // used before gets a fresh answer.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let filter = serde_json::json!({
            "presence": {"types": []},
            "account_data": {"types": []},
            "room": {
                "rooms": [room_id],
                "timeline": {"limit": 0},
                "state": {"types": []},
                "account_data": {"types": []},
                "ephemeral": {"types": ["m.typing"], "not_senders": [format!("@nonce{nonce}:x")]},
            },
        });
        let mut url = self.client.homeserver().join("_matrix/client/v3/sync")?;
        url.query_pairs_mut()
            .append_pair("filter", &filter.to_string())
            .append_pair("timeout", "0");
        let response: serde_json::Value = reqwest::Client::new()
            .get(url.as_str())
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let events = &response["rooms"]["join"][room_id]["ephemeral"]["events"];
        Ok(events
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.typing")
            .flat_map(|e| {
                e["content"]["user_ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect())
    }

    /// Sends a text message in the thread rooted at `root`; returns its event id.
    pub async fn send_in_thread(
        &self,
        room_id: &str,
        root: &OwnedEventId,
        text: &str,
    ) -> anyhow::Result<OwnedEventId> {
        use matrix_sdk::ruma::events::room::message::{
            AddMentions, ReplyMetadata, ReplyWithinThread,
        };
        let room = self.room(room_id)?;
        let me = self.user_id();
        let content = RoomMessageEventContent::text_plain(text).make_for_thread(
            ReplyMetadata::new(root, &me, None),
            ReplyWithinThread::No,
            AddMentions::No,
        );
        Ok(room.send(content).await?.response.event_id)
    }

    /// A state event's full JSON as the person's client has it (after a sync).
    pub async fn state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let room = self.room(room_id)?;
        let Some(raw) = room
            .get_state_event(StateEventType::from(event_type), state_key)
            .await?
        else {
            return Ok(None);
        };
        Ok(match raw {
            RawAnySyncOrStrippedState::Sync(raw) => Some(raw.deserialize_as()?),
            RawAnySyncOrStrippedState::Stripped(raw) => Some(raw.deserialize_as()?),
        })
    }

    /// The state keys of all state events of `event_type` with non-empty content.
    pub async fn state_keys(&self, room_id: &str, event_type: &str) -> anyhow::Result<Vec<String>> {
        let room = self.room(room_id)?;
        let mut keys = Vec::new();
        for raw in room
            .get_state_events(StateEventType::from(event_type))
            .await?
        {
            let json: serde_json::Value = match raw {
                RawAnySyncOrStrippedState::Sync(raw) => raw.deserialize_as()?,
                RawAnySyncOrStrippedState::Stripped(raw) => raw.deserialize_as()?,
            };
            let content_empty = json["content"].as_object().is_none_or(|c| c.is_empty());
            if !content_empty {
                keys.push(json["state_key"].as_str().unwrap_or_default().to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Tries to upgrade a room to version 12; returns the homeserver's error code if refused.
    pub async fn try_upgrade(&self, room_id: &str) -> Option<String> {
        use matrix_sdk::ruma::api::client::room::upgrade_room::v3::Request;
        let id = OwnedRoomId::try_from(room_id).ok()?;
        match self
            .client
            .send(Request::new(id, matrix_sdk::ruma::RoomVersionId::V12))
            .await
        {
            Ok(_) => None,
            Err(error) => Some(error_code(&error.into())),
        }
    }

    /// Tries to send a state event; returns the homeserver's error code if refused.
    pub async fn try_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        content: serde_json::Value,
    ) -> Option<String> {
        let room = self.room(room_id).ok()?;
        match room
            .send_state_event_raw(event_type, state_key, content)
            .await
        {
            Ok(_) => None,
            Err(error) => Some(error_code(&error)),
        }
    }
}

/// The Matrix error code of a failed request (`Forbidden`, ...), or the error's text.
fn error_code(error: &matrix_sdk::Error) -> String {
    error
        .as_client_api_error()
        .and_then(|e| e.error_kind())
        .map(|kind| format!("{kind:?}"))
        .unwrap_or_else(|| error.to_string())
}
