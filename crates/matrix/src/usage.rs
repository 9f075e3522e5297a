//! `lambda-matrix usage [--json]`: every person's tokens today and this month, by model, read
//! from the homeserver (their usage records, found through the bot's Spaces). Takes the store
//! lock like the other subcommands: it refuses while the bot runs.

use crate::bot::Totals;
use crate::config::Settings;
use crate::lock::StoreLock;
use crate::session::{self, Login};
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;

/// One person's usage, as printed.
#[derive(Debug, Serialize)]
pub struct PersonUsage {
    /// The person.
    pub person: String,
    /// The UTC day counted.
    pub day: String,
    /// Today's tokens by model (prompt and completion together).
    pub today: BTreeMap<String, u64>,
    /// The UTC month counted.
    pub month: String,
    /// This month's tokens by model.
    pub this_month: BTreeMap<String, u64>,
}

/// Reads every person's usage record.
pub async fn usage_once(settings: &Settings) -> anyhow::Result<Vec<PersonUsage>> {
    let _lock = StoreLock::acquire(&settings.files.store_path)?;
    let (client, login) = session::connect(settings).await?;
    let read = async {
        crate::sync::load_once(&client, settings.matrix.sync)
            .await
            .context("the first sync failed")?;
        let bot = settings.identity.user_id.as_str();
        let now = crate::calendar::now_ms();
        let mut people = Vec::new();
        for room in client.joined_rooms() {
            let marker = crate::records::space_marker(&room, bot)
                .await
                .map_err(anyhow::Error::msg)?;
            let Some(marker) = marker.and_then(|m| m.trusted()) else {
                continue;
            };
            let totals = match crate::records::usage(&room)
                .await
                .map_err(anyhow::Error::msg)?
            {
                Some(json) => crate::markers::read_content::<Totals>(&json)
                    .with_context(|| format!("{}'s usage record", marker.owner))?,
                None => Totals::at(now),
            };
            people.push(person_usage(marker.owner, totals, now));
        }
        people.sort_by(|a, b| a.person.cmp(&b.person));
        anyhow::Ok(people)
    }
    .await;
    if login == Login::New {
        session::log_out(&client, settings, login).await;
    }
    read
}

fn person_usage(person: String, mut totals: Totals, now: u64) -> PersonUsage {
    totals.roll(now);
    let sum = |period: &BTreeMap<String, crate::bot::Tokens>| {
        period
            .iter()
            .map(|(model, tokens)| (model.clone(), tokens.total()))
            .collect()
    };
    PersonUsage {
        person,
        today: sum(&totals.today),
        this_month: sum(&totals.this_month),
        day: totals.day,
        month: totals.month,
    }
}

/// The report as text: one line per person and period.
pub fn render(people: &[PersonUsage]) -> String {
    if people.is_empty() {
        return "no one has used the bot yet\n".to_owned();
    }
    let line = |models: &BTreeMap<String, u64>| {
        let total: u64 = models.values().sum();
        let parts: Vec<String> = models.iter().map(|(m, t)| format!("{m} {t}")).collect();
        match parts.is_empty() {
            true => "0".to_owned(),
            false => format!("{total} ({})", parts.join(", ")),
        }
    };
    people
        .iter()
        .map(|p| {
            format!(
                "{}: today ({}) {}; this month ({}) {}\n",
                p.person,
                p.day,
                line(&p.today),
                p.month,
                line(&p.this_month)
            )
        })
        .collect()
}
