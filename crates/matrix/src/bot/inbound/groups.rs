//! Rooms with other people. The bot works in direct chats and in a person's own Space: an
//! invite into a group room (not marked direct, or with members besides the inviter and the
//! bot) gets one short notice and the bot leaves and forgets it (`lifecycle::first_contact`),
//! recording nothing; a managed
//! room that later gains a member is told once (per run) that the bot answers only its owner.
//! Other members' messages are never answered and never count as unanswered (catch-up reads
//! only the owner's).

use crate::bot::Bot;
use lambda_matrix_core::{RoomKind, RoomRecord};
use matrix_sdk::deserialized_responses::SyncOrStrippedState;
use matrix_sdk::ruma::events::room::member::{MembershipState, OriginalSyncRoomMemberEvent};
use matrix_sdk::Room;

impl Bot {
    /// Whether the invite into `room` marks it as a direct chat (read before joining: the
    /// invite's own member event).
    pub(super) async fn invited_as_direct(&self, room: &Room) -> bool {
        match room.invite_details().await {
            Ok(invite) => {
                let event = invite.invitee.event();
                let direct = match event.as_ref() {
                    SyncOrStrippedState::Stripped(stripped) => stripped.content.is_direct,
                    SyncOrStrippedState::Sync(sync) => {
                        sync.as_original().and_then(|e| e.content.is_direct)
                    }
                };
                direct.unwrap_or(false)
            }
            Err(error) => {
                tracing::info!(room_id = %room.room_id(), %error, "cannot read the invite; taking it as a direct chat");
                true
            }
        }
    }

    /// Why the joined `room` is a group room the bot does not serve, if it is one: not invited
    /// as a direct chat, or members besides `inviter` and the bot. A room the bot already
    /// manages (a row, or its chat marker) is never one.
    pub(super) async fn group_room(
        &self,
        room: &Room,
        inviter: &str,
        direct: bool,
    ) -> Option<String> {
        if self.is_managed(room).await {
            return None;
        }
        if !direct {
            return Some("the invite is not for a direct chat".to_owned());
        }
        let others = match self.others_in(room, inviter).await {
            Ok(others) => others,
            Err(error) => {
                tracing::info!(room_id = %room.room_id(), error = format!("{error:#}"), "cannot list the members; taking the room as a direct chat");
                return None;
            }
        };
        (!others.is_empty()).then(|| format!("other members: {}", others.join(", ")))
    }

    /// Whether the bot already keeps `room` as a chat: a cache row, or its own chat marker on
    /// the server (one someone else wrote does not count) (a person inviting the bot back into one of their chat rooms). A direct-chat
    /// record alone does not count: first contact writes it before the join.
    async fn is_managed(&self, room: &Room) -> bool {
        if matches!(self.room_record(room.room_id().as_str()), Ok(Some(_))) {
            return true;
        }
        matches!(
            crate::records::chat_marker(room, self.bot_id()).await,
            Ok(Some(crate::records::Read::Trusted(_)))
        )
    }

    /// Someone joined or was invited into a room: if it is a managed room and not its owner
    /// or the bot, the room is told (once per run) that the bot answers only its owner. The
    /// owner of a direct chat left it: the bot leaves it too (`lifecycle::leaving`).
    pub(crate) async fn on_member(&self, event: OriginalSyncRoomMemberEvent, room: Room) {
        let member = event.state_key.as_str();
        if member == self.bot_id() {
            return;
        }
        let Ok(Some(record)) = self.room_record(room.room_id().as_str()) else {
            return;
        };
        if owner_left_direct_chat(&record, member, &event.content.membership) {
            let bot = self.clone();
            let room_id = room.room_id().to_string();
            // Off the handler: leaving takes several requests.
            self.spawn_errand(
                async move { bot.leave_dm_its_owner_left(&record.owner, &room_id).await },
            );
            return;
        }
        if !matches!(
            event.content.membership,
            MembershipState::Join | MembershipState::Invite
        ) {
            return;
        }
        if record.owner == member
            || !matches!(record.kind, RoomKind::Dm | RoomKind::Chat)
            || !self.runtime().limits().tell_shared(room.room_id().as_str())
        {
            return;
        }
        tracing::info!(room_id = %room.room_id(), member, owner = %record.owner, "someone besides the owner is in the room; saying once that only the owner is answered");
        if let Err(error) = self
            .outbox()
            .say(&room, &self.texts().only_owner(&record.owner))
            .await
        {
            tracing::warn!(room_id = %room.room_id(), error = format!("{error:#}"), "cannot say that only the owner is answered");
        }
    }
}

/// Whether `member`'s new `membership` means the owner of the direct chat `record` is gone
/// from it (left, or banned by someone else).
fn owner_left_direct_chat(record: &RoomRecord, member: &str, membership: &MembershipState) -> bool {
    record.kind == RoomKind::Dm
        && record.owner == member
        && matches!(membership, MembershipState::Leave | MembershipState::Ban)
}

#[cfg(test)]
mod tests {
    use super::owner_left_direct_chat;
    use lambda_matrix_core::{RoomKind, RoomRecord};
    use matrix_sdk::ruma::events::room::member::MembershipState;

    fn record(kind: RoomKind) -> RoomRecord {
        RoomRecord {
            room_id: "!r:hs".to_owned(),
            owner: "@anna:hs".to_owned(),
            kind,
            chat_id: None,
        }
    }

    #[test]
    fn only_the_owner_leaving_their_direct_chat_makes_the_bot_leave_it() {
        let dm = record(RoomKind::Dm);
        assert!(owner_left_direct_chat(
            &dm,
            "@anna:hs",
            &MembershipState::Leave
        ));
        assert!(owner_left_direct_chat(
            &dm,
            "@anna:hs",
            &MembershipState::Ban
        ));
        // Someone else leaving, the owner joining or invited again: the room stays.
        assert!(!owner_left_direct_chat(
            &dm,
            "@boris:hs",
            &MembershipState::Leave
        ));
        assert!(!owner_left_direct_chat(
            &dm,
            "@anna:hs",
            &MembershipState::Join
        ));
        assert!(!owner_left_direct_chat(
            &dm,
            "@anna:hs",
            &MembershipState::Invite
        ));
        // A chat room or a Space the owner leaves is theirs to come back to.
        for kind in [RoomKind::Chat, RoomKind::Space] {
            assert!(!owner_left_direct_chat(
                &record(kind),
                "@anna:hs",
                &MembershipState::Leave
            ));
        }
    }
}
