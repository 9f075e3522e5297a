//! Usage: what each person's answers cost, and their budgets. Counted in memory and kept on the
//! homeserver in the person's usage record (room account data of their Space, private to the
//! bot), written at most once per `LAMBDA_USAGE_WRITE_EVERY` (a minute by default: a task writes
//! the people whose totals changed) and at a stop; a kill -9 loses at most that much. A lost
//! cache or SDK store loses nothing: the record comes back with the sync. Totals counted while
//! the record could not be read are added to it once it can, never written over it.

mod totals;

pub(crate) use totals::{Budgets, Period, Standing, Tokens, Totals};

use crate::bot::runtime::now_ms;
use crate::bot::Bot;
use lambda_matrix_platform::Usage;
use std::collections::HashMap;
use std::sync::Mutex;

/// The people's totals in memory.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    people: Mutex<HashMap<String, Entry>>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// One answer at a time per person while budgets are set.
    turns: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug)]
struct Entry {
    totals: Totals,
    /// The record on the server was read into `totals` (else `totals` holds only what was
    /// counted since, to be added to it).
    read: bool,
    /// Changed since last written.
    dirty: bool,
}

/// The counts a bot whose session was lost had not written yet, for the bot of the next session
/// to write ([`Bot::abandon`], [`Bot::take_over_usage`]).
#[derive(Debug, Default)]
pub struct UnwrittenUsage(HashMap<String, Entry>);

impl Ledger {
    fn people(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.people.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn turns(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>> {
        self.turns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, person: &str, f: impl FnOnce(Option<&mut Entry>) -> T) -> T {
        f(self.people().get_mut(person))
    }
}

impl Bot {
    /// The budgets set (`LAMBDA_MAX_TOKENS_PER_DAY`, `LAMBDA_MAX_TOKENS_PER_MONTH`).
    pub(crate) fn budgets(&self) -> Budgets {
        let limits = &self.settings().limits;
        Budgets {
            day: limits.max_tokens_per_day,
            month: limits.max_tokens_per_month,
        }
    }

    /// `person`'s totals now, their record read from the server first if it was not yet.
    pub(crate) async fn totals(&self, person: &str) -> Totals {
        self.read_usage(person).await;
        let now = now_ms();
        self.ledger().with(person, |entry| match entry {
            Some(entry) => {
                let mut totals = entry.totals.clone();
                totals.roll(now);
                totals
            }
            None => Totals::at(now),
        })
    }

    /// Where `person` stands against the budgets (none on a day the operator lifted them for).
    pub(crate) async fn standing(&self, person: &str) -> Standing {
        let budgets = self.budgets();
        if budgets == Budgets::default() || self.lifted_today(person).await {
            return Standing::Within;
        }
        self.totals(person).await.standing(budgets, now_ms())
    }

    /// Whether the operator lifted `person`'s budgets for today (`lambda-matrix lift-budget`).
    async fn lifted_today(&self, person: &str) -> bool {
        let Ok(Some(space)) = self.space_room(person) else {
            return false;
        };
        match crate::records::lifted(&space).await {
            Ok(day) => day.is_some_and(|day| day == crate::calendar::day_and_month(now_ms()).0),
            Err(error) => {
                tracing::info!(person, %error, "cannot read the lift record; the budgets hold");
                false
            }
        }
    }

    /// Counts one answer's usage for `person`.
    pub(crate) async fn count_usage(&self, person: &str, usage: &[Usage]) {
        self.metrics().answer_usage(usage);
        self.read_usage(person).await;
        let now = now_ms();
        let mut people = self.ledger().people();
        let entry = people.entry(person.to_owned()).or_insert_with(|| Entry {
            totals: Totals::at(now),
            read: false,
            dirty: false,
        });
        entry.totals.add(usage, now);
        entry.dirty = true;
    }

    /// Notes that `person` was told `period` is used up; whether it is the first time.
    pub(crate) fn tell_over(&self, person: &str, period: Period) -> bool {
        self.ledger().with(person, |entry| match entry {
            Some(entry) => {
                let first = entry.totals.tell(period);
                entry.dirty |= first;
                first
            }
            None => true,
        })
    }

    /// Reads `person`'s record from the server (the synced copy) unless it was read; what was
    /// counted meanwhile is added to it.
    async fn read_usage(&self, person: &str) {
        if self
            .ledger()
            .with(person, |entry| entry.is_some_and(|e| e.read))
        {
            return;
        }
        let read = match self.space_room(person) {
            Ok(Some(space)) => crate::records::usage(&space).await.and_then(|json| {
                json.map(|json| crate::markers::read_content::<Totals>(&json))
                    .transpose()
                    .map_err(|error| format!("the usage record is not usable: {error}"))
            }),
            Ok(None) => Ok(None),
            Err(error) => Err(format!("{error:#}")),
        };
        let now = now_ms();
        let mut people = self.ledger().people();
        if people.get(person).is_some_and(|entry| entry.read) {
            return; // read meanwhile by another job
        }
        match read {
            Ok(record) => {
                let mut totals = record.unwrap_or_else(|| Totals::at(now));
                totals.roll(now);
                let counted = people.remove(person);
                if let Some(counted) = &counted {
                    totals.merge(&counted.totals);
                }
                let dirty = counted.is_some_and(|c| c.dirty);
                people.insert(
                    person.to_owned(),
                    Entry {
                        totals,
                        read: true,
                        dirty,
                    },
                );
            }
            Err(error) => {
                tracing::warn!(person, %error, "cannot read a person's usage record; counting from what this run sees until it can");
            }
        }
    }

    /// Writes every changed person's totals to their usage record.
    pub(crate) async fn write_usage(&self) {
        let changed: Vec<String> = {
            let people = self.ledger().people();
            people
                .iter()
                .filter(|(_, entry)| entry.dirty)
                .map(|(person, _)| person.clone())
                .collect()
        };
        for person in changed {
            self.read_usage(&person).await;
            let totals = self.ledger().with(&person, |entry| {
                entry.filter(|e| e.read).map(|e| e.totals.clone())
            });
            let space = match self.space_room(&person) {
                Ok(Some(space)) => space,
                // No Space any more (`!forget-me`): nothing to write, nothing to keep.
                Ok(None) => {
                    tracing::info!(
                        person,
                        "no Space any more; the usage not yet written is dropped"
                    );
                    self.ledger().people().remove(&person);
                    self.ledger().turns().remove(&person);
                    continue;
                }
                Err(_) => continue,
            };
            let Some(totals) = totals else {
                continue;
            };
            match crate::records::write_usage(&space, serde_json::json!(totals)).await {
                Ok(()) => self.ledger().with(&person, |entry| {
                    // Counted while writing: written next time.
                    if let Some(entry) = entry.filter(|e| e.totals == totals) {
                        entry.dirty = false;
                    }
                }),
                Err(error) => {
                    tracing::warn!(
                        person,
                        error = format!("{error:#}"),
                        "cannot write a person's usage record; trying again in a minute"
                    )
                }
            }
        }
    }

    /// Starts writing changed totals every `LAMBDA_USAGE_WRITE_EVERY`.
    pub(crate) fn keep_writing_usage(&self) {
        let bot = self.clone();
        let period = self.settings().limits.usage_write_every;
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.tick().await;
            loop {
                every.tick().await;
                bot.write_usage().await;
            }
        });
        let old = self
            .ledger()
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task);
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Takes the counts out of this bot's ledger (its session was lost: it cannot write them),
    /// stopping its writer; what it counts from now on is not carried.
    pub(crate) fn take_unwritten_usage(&self) -> UnwrittenUsage {
        self.stop_writing_usage();
        UnwrittenUsage(std::mem::take(&mut *self.ledger().people()))
    }

    /// Counts the lost session's bot had not written become this bot's: written with its next
    /// write (their `read` says whether they already hold the server's record).
    pub fn take_over_usage(&self, unwritten: UnwrittenUsage) {
        self.ledger().people().extend(unwritten.0);
    }

    /// Stops the writer task (the stop writes what is left itself).
    pub(crate) fn stop_writing_usage(&self) {
        let task = self
            .ledger()
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

/// What a person's budgets allow for their next answer.
#[derive(Debug)]
pub(crate) enum Allowance {
    /// Ask the platform as usual.
    Ask,
    /// Ask the fallback model; put this under its answer.
    Fallback {
        /// `LAMBDA_BUDGET_FALLBACK_MODEL`.
        model: String,
        /// The mark under the answer (the first time: what happened and until when).
        mark: String,
    },
    /// Do not ask: this notice is the answer.
    Refuse(String),
}

impl Bot {
    /// What `person`'s budgets allow now; the first time over one in its period, the person
    /// is told (and it is counted).
    pub(crate) async fn allowance(&self, person: &str) -> Allowance {
        let Standing::Over(period, resets) = self.standing(person).await else {
            return Allowance::Ask;
        };
        let resets = format!("{} 00:00 UTC", crate::calendar::day_and_month(resets).0);
        let budgets = self.budgets();
        let (daily, max) = match period {
            Period::Day => (true, budgets.day.unwrap_or_default()),
            Period::Month => (false, budgets.month.unwrap_or_default()),
        };
        let first = self.tell_over(person, period);
        if first {
            self.metrics().budget_reached();
            tracing::info!(person, ?period, max, "a budget is used up");
        }
        let fallback = self.settings().limits.budget_fallback_model.clone();
        let texts = self.texts();
        match fallback {
            Some(model) => Allowance::Fallback {
                mark: if first {
                    texts.budget_reached(daily, max, &resets, Some(&model))
                } else {
                    texts.fallback_mark(&model)
                },
                model,
            },
            None if first => Allowance::Refuse(texts.budget_reached(daily, max, &resets, None)),
            None => Allowance::Refuse(texts.budget_still_used_up(&resets)),
        }
    }

    /// While budgets are set, one answer at a time per person, from the check of their budget
    /// to the count of its usage: a budget is passed by at most one answer.
    pub(crate) async fn budget_turn(
        &self,
        person: &str,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if self.budgets() == Budgets::default() {
            return None;
        }
        let turn = (self.ledger().turns())
            .entry(person.to_owned())
            .or_default()
            .clone();
        Some(turn.lock_owned().await)
    }

    /// `!usage`: `person`'s tokens today and this month, by model, and the budgets.
    pub(crate) async fn usage_report(&self, person: &str) -> String {
        let totals = self.totals(person).await;
        let uses = |period: &std::collections::BTreeMap<String, totals::Tokens>| {
            period
                .iter()
                .map(|(model, tokens)| crate::strings::ModelUse {
                    model: model.clone(),
                    tokens: tokens.total(),
                    answers: tokens.answers,
                    estimated: tokens.estimated,
                })
                .collect::<Vec<_>>()
        };
        let budgets = self.budgets();
        self.texts().usage_report(
            &uses(&totals.today),
            &uses(&totals.this_month),
            (budgets.day, budgets.month),
        )
    }
}
