//! The homeserver's own guard against a second room for one cause. A `createRoom` can outlive
//! the bot that sent it: killed while the homeserver was still at it (or while the request was
//! on its way), the next start looks for the room before it exists and would make a second one.
//! So each room the bot makes claims a local alias named after what it is for — the bot, the
//! person, the kind of room and its cause (the `!new`, or the direct chat of a first contact).
//! The homeserver gives an alias once: of two `createRoom`s with one claim, whichever it meets
//! second is refused with `M_ROOM_IN_USE` and makes nothing, and the refused one leads to the
//! room that holds the claim ([`Bot::made_earlier`]). The alias is never the room's published
//! address (`template::claimed`).

use super::create::answer_may_be_lost;
use super::create::Sought;
use crate::bot::Bot;
use crate::markers::{ChatMarker, SpaceMarker, CHAT_MARKER, SPACE_MARKER};
use crate::records::{self, Read, Unread};
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::{OwnedRoomAliasId, OwnedRoomId};
use matrix_sdk::{HttpError, Room};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What every claim starts with.
const PREFIX: &str = "lambda-matrix.";
/// How long the room that holds a claim may take to show the bot as a member with its
/// marker (the homeserver still making it), counted while the homeserver answers; after that
/// it is taken as someone else's.
const EARLIER_WAIT: Duration = Duration::from_secs(60);
/// How often the room's state is read again meanwhile.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// A room made for a claim, joined.
pub(crate) struct Made {
    pub room: Room,
    /// For a chat an earlier request made: its marker (its id may be older than the one asked
    /// for: the one the bot that made it had issued) and the room's name.
    pub earlier_chat: Option<(ChatMarker, Option<String>)>,
}

/// The room an earlier request made for a claim.
pub(crate) struct Earlier {
    pub room_id: OwnedRoomId,
    /// For a chat: its marker and the room's name.
    pub chat: Option<(ChatMarker, Option<String>)>,
}

/// Who holds a claim.
enum Holder {
    /// The bot, for the room sought (a chat's marker and name).
    Bot(Option<(ChatMarker, Option<String>)>),
    /// A room the bot has left: not gone back into.
    Left,
    /// A room without the bot's marker for the cause: someone else's alias.
    Other,
}

/// The homeserver answered, but the room does not show what is sought yet.
fn not_yet(reason: &str) -> Unread {
    Unread {
        reason: reason.to_owned(),
        answered: true,
    }
}

impl From<Room> for Made {
    fn from(room: Room) -> Made {
        Made {
            room,
            earlier_chat: None,
        }
    }
}

impl Sought<'_> {
    /// The claim (an alias localpart) of the room sought, made by `bot`.
    pub(crate) fn claim(&self, bot: &str) -> String {
        let (kind, owner, cause) = match self {
            Sought::Space { owner, cause } => ("space", *owner, *cause),
            Sought::Chat { marker } => ("chat", marker.owner.as_str(), marker.cause.as_str()),
        };
        let digest = Sha256::digest(format!("{bot}\n{kind}\n{owner}\n{cause}"));
        digest[..16]
            .iter()
            .fold(PREFIX.to_owned(), |mut claim, byte| {
                let _ = write!(claim, "{byte:02x}");
                claim
            })
    }
}

/// The homeserver refused the request because its claim is taken: the room exists (or is
/// being made).
pub(crate) fn claim_taken(error: &HttpError) -> bool {
    matches!(error.client_api_error_kind(), Some(ErrorKind::RoomInUse))
}

/// A refusal that may be about the claim itself (the homeserver's alias rules, an appservice's
/// namespace): a 4xx other than a rate limit. Asked again without the claim.
pub(crate) fn claim_maybe_refused(error: &HttpError) -> bool {
    error.as_client_api_error().is_some_and(|api| {
        api.status_code.is_client_error()
            && !matches!(
                api.error_kind(),
                Some(ErrorKind::LimitExceeded(_) | ErrorKind::RoomInUse)
            )
    })
}

impl Bot {
    /// The room holding `claim`, once the homeserver shows the bot in it with the marker
    /// `sought` describes; `None` when it is a room the bot has left, someone else's, or does
    /// not show so within [`EARLIER_WAIT`].
    pub(crate) async fn made_earlier(&self, claim: &str, sought: &Sought<'_>) -> Option<Earlier> {
        let alias = OwnedRoomAliasId::try_from(format!("#{claim}:{}", self.via())).ok()?;
        let room_id = loop {
            match self.client().resolve_room_alias(&alias).await {
                Ok(response) => break response.room_id,
                // No answer, or a server error: the homeserver failing; asked again.
                Err(error) if answer_may_be_lost(&error) => tokio::time::sleep(LOOK_EVERY).await,
                Err(error) => {
                    tracing::warn!(%alias, %error, "a room's claim is taken but cannot be looked up");
                    return None;
                }
            }
        };
        // The wait counts from the homeserver's last answer: an outage of any length does not
        // end it (making a room without the claim then would make the second room).
        let mut started = Instant::now();
        loop {
            match self.holder(&room_id, sought).await {
                Ok(Holder::Bot(chat)) => {
                    tracing::info!(%room_id, "an earlier request made the room; going on with it");
                    return Some(Earlier { room_id, chat });
                }
                Ok(Holder::Left) => {
                    tracing::info!(%room_id, "the claim is held by a room the bot has left; making one without the claim");
                    return None;
                }
                Ok(Holder::Other) => {
                    tracing::warn!(%room_id, %alias, "a room's claim is held by a room without the bot's marker for it; making one without the claim");
                    return None;
                }
                Err(unread) if !unread.answered => {
                    started = Instant::now();
                    tokio::time::sleep(LOOK_EVERY).await;
                }
                Err(unread) if started.elapsed() >= EARLIER_WAIT => {
                    tracing::warn!(%room_id, error = unread.reason, "the room holding a claim does not show the bot in it; making one without the claim");
                    return None;
                }
                Err(_) => tokio::time::sleep(LOOK_EVERY).await,
            }
        }
    }

    /// Who holds the claim, by the room's state on the homeserver; `Err` while that does not
    /// tell yet (the bot not in the room, or its marker not there yet: still being made; or the
    /// homeserver failing).
    async fn holder(&self, room_id: &OwnedRoomId, sought: &Sought<'_>) -> Result<Holder, Unread> {
        let events = records::state_on_server(self.client(), room_id).await?;
        // A room the bot has left (its state is still readable) is not gone back into.
        let membership = records::state_among(&events, "m.room.member", self.bot_id())
            .and_then(|json| json["content"]["membership"].as_str());
        if membership.is_some_and(|m| m != "join") {
            return Ok(Holder::Left);
        }
        match sought {
            Sought::Space { owner, .. } => {
                match records::record_among::<SpaceMarker>(&events, SPACE_MARKER, self.bot_id()) {
                    Some(Read::Trusted(marker)) if marker.owner == *owner => Ok(Holder::Bot(None)),
                    Some(_) => Ok(Holder::Other),
                    None => Err(not_yet("no Space marker yet")),
                }
            }
            Sought::Chat { marker: sought } => {
                match records::record_among::<ChatMarker>(&events, CHAT_MARKER, self.bot_id()) {
                    Some(Read::Trusted(marker))
                        if marker.owner == sought.owner && marker.cause == sought.cause =>
                    {
                        let name = records::state_among(&events, "m.room.name", "")
                            .and_then(|json| json["content"]["name"].as_str())
                            .map(str::to_owned);
                        Ok(Holder::Bot(Some((marker, name))))
                    }
                    Some(_) => Ok(Holder::Other),
                    None => Err(not_yet("no chat marker yet")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_names_the_cause_and_fits_an_alias() {
        let space = Sought::Space {
            owner: "@anna:hs",
            cause: "!dm:hs",
        };
        let claim = space.claim("@bot:hs");
        assert!(claim.starts_with(PREFIX));
        assert_eq!(claim.len(), PREFIX.len() + 32);
        assert!(claim.chars().all(|c| c.is_ascii_graphic() && c != ':'));
        assert_eq!(claim, space.claim("@bot:hs"), "the same each time");
        let other = Sought::Space {
            owner: "@anna:hs",
            cause: "!other:hs",
        };
        assert_ne!(claim, other.claim("@bot:hs"), "another cause");
        assert_ne!(claim, space.claim("@other-bot:hs"), "another bot");
    }
}
