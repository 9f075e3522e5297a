//! `lambda-matrix lift-budget <USER_ID>`: lifts a person's token budgets for the rest of the
//! UTC day, while the bot runs (no restart, no store lock): the lift record is written into
//! their Space's room account data with the saved session's own token (no new device), and
//! the running bot reads it at the person's next message.

use crate::config::Settings;
use crate::markers::{LIFT_RECORD, VERSION};
use anyhow::Context;
use lambda_matrix_core::{RoomKind, SqliteStore};
use matrix_sdk::ruma::api::client::config::set_room_account_data;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedRoomId, UserId};

/// Lifts `person`'s budgets for today; the day lifted (`YYYY-MM-DD`, UTC).
pub async fn lift(settings: &Settings, person: &str) -> anyhow::Result<String> {
    let person = <&UserId>::try_from(person)
        .with_context(|| format!("{person:?} is not a user id like @anna:example.org"))?;
    // The cache knows the person's Space; read only, the running bot keeps it open.
    let cache = SqliteStore::read_only_dump(&settings.files.db_path)
        .context("cannot read the cache to find the person's Space")?;
    let space = cache
        .rooms
        .iter()
        .find(|room| room.kind == RoomKind::Space && room.owner == person.as_str())
        .with_context(|| format!("{person} has no Space here (the bot has not served them)"))?;
    let space = OwnedRoomId::try_from(space.room_id.as_str())?;
    let client = crate::session::saved_in_memory(settings)
        .await?
        .context("no saved session: start the bot once first")?;
    let now = crate::calendar::now_ms();
    let day = crate::calendar::day_and_month(now).0;
    let content = serde_json::json!({ "day": day, "version": VERSION });
    let request = set_room_account_data::v3::Request::new_raw(
        settings.identity.user_id.clone(),
        space,
        LIFT_RECORD.into(),
        Raw::new(&content)?.cast_unchecked(),
    );
    client
        .send(request)
        .await
        .context("cannot write the lift record")?;
    Ok(day)
}
