//! One person's token totals, as kept on the homeserver (the usage record): today's and this
//! month's, by model, in UTC days and months; and the budgets against them. Pure.

use crate::calendar::{day_and_month, next_day_start, next_month_start};
use crate::markers::VERSION;
use lambda_matrix_platform::Usage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One model's tokens in a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Tokens sent.
    pub prompt: u64,
    /// Tokens produced.
    pub completion: u64,
    /// Answers it gave.
    pub answers: u64,
    /// Whether some of it is an estimate (the server did not say).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Tokens {
    /// Prompt and completion together.
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

/// Content of the usage record (`org.lambda.matrix.usage`, room account data of the person's
/// Space, private to the bot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// The UTC day `today` counts (`YYYY-MM-DD`).
    pub day: String,
    /// The UTC month `month` counts (`YYYY-MM`).
    pub month: String,
    /// Today's tokens by model.
    #[serde(default)]
    pub today: BTreeMap<String, Tokens>,
    /// This month's tokens by model.
    #[serde(default)]
    pub this_month: BTreeMap<String, Tokens>,
    /// The period the person was last told their budget was used up in (`day:YYYY-MM-DD` or
    /// `month:YYYY-MM`): told once per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<String>,
    /// Record version.
    pub version: u32,
}

/// Which budget was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// `LAMBDA_MAX_TOKENS_PER_DAY`.
    Day,
    /// `LAMBDA_MAX_TOKENS_PER_MONTH`.
    Month,
}

/// A person's standing against their budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Under every budget (or none is set).
    Within,
    /// Over one: the period, and when it resets (ms since the Unix epoch).
    Over(Period, u64),
}

/// The budgets, in tokens per person (`None`: no budget).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budgets {
    /// Per UTC day.
    pub day: Option<u64>,
    /// Per UTC month.
    pub month: Option<u64>,
}

impl Totals {
    /// Empty totals for the day and month of `now` (ms since the Unix epoch).
    pub fn at(now: u64) -> Totals {
        let (day, month) = day_and_month(now);
        Totals {
            day,
            month,
            version: VERSION,
            ..Totals::default()
        }
    }

    /// Starts a new day or month when `now` is past the ones counted; whether it did.
    pub fn roll(&mut self, now: u64) -> bool {
        let (day, month) = day_and_month(now);
        let mut rolled = false;
        if self.month != month {
            self.month = month;
            self.this_month.clear();
            rolled = true;
        }
        if self.day != day {
            self.day = day;
            self.today.clear();
            rolled = true;
        }
        rolled
    }

    /// Adds one answer's usage (every model that worked on it) at `now`.
    pub fn add(&mut self, usage: &[Usage], now: u64) {
        self.roll(now);
        for used in usage {
            for period in [&mut self.today, &mut self.this_month] {
                let tokens = period.entry(used.model.clone()).or_default();
                tokens.prompt = tokens.prompt.saturating_add(used.prompt);
                tokens.completion = tokens.completion.saturating_add(used.completion);
                tokens.estimated |= used.estimated;
            }
        }
        // One answer, counted once, for the model that wrote it (the last one).
        if let Some(writer) = usage.last() {
            for period in [&mut self.today, &mut self.this_month] {
                period.entry(writer.model.clone()).or_default().answers += 1;
            }
        }
    }

    /// Adds `other` (counted meanwhile in memory) to these totals, period by period.
    pub fn merge(&mut self, other: &Totals) {
        let periods = [
            (self.day == other.day, &mut self.today, &other.today),
            (
                self.month == other.month,
                &mut self.this_month,
                &other.this_month,
            ),
        ];
        for (same, mine, theirs) in periods {
            if !same {
                continue;
            }
            for (model, tokens) in theirs {
                let mine = mine.entry(model.clone()).or_default();
                mine.prompt = mine.prompt.saturating_add(tokens.prompt);
                mine.completion = mine.completion.saturating_add(tokens.completion);
                mine.answers = mine.answers.saturating_add(tokens.answers);
                mine.estimated |= tokens.estimated;
            }
        }
    }

    /// Today's tokens, every model together.
    pub fn today_total(&self) -> u64 {
        self.today.values().map(Tokens::total).sum()
    }

    /// This month's tokens, every model together.
    pub fn month_total(&self) -> u64 {
        self.this_month.values().map(Tokens::total).sum()
    }

    /// Where these totals stand at `now` against `budgets` (the month's first).
    pub fn standing(&self, budgets: Budgets, now: u64) -> Standing {
        let mut totals = self.clone();
        totals.roll(now);
        if budgets.month.is_some_and(|max| totals.month_total() >= max) {
            return Standing::Over(Period::Month, next_month_start(now));
        }
        if budgets.day.is_some_and(|max| totals.today_total() >= max) {
            return Standing::Over(Period::Day, next_day_start(now));
        }
        Standing::Within
    }

    /// Notes that the person was told `period` is used up; whether this is the first time in
    /// that period.
    pub fn tell(&mut self, period: Period) -> bool {
        let key = match period {
            Period::Day => format!("day:{}", self.day),
            Period::Month => format!("month:{}", self.month),
        };
        if self.told.as_deref() == Some(key.as_str()) {
            return false;
        }
        self.told = Some(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-31 23:30 UTC.
    const NEW_YEARS_EVE: u64 = 1_798_759_800_000;

    fn used(model: &str, prompt: u64, completion: u64) -> Usage {
        Usage {
            model: model.into(),
            prompt,
            completion,
            estimated: false,
        }
    }

    #[test]
    fn days_and_months_are_utc_and_roll_over() {
        assert_eq!(
            day_and_month(NEW_YEARS_EVE),
            ("2026-12-31".into(), "2026-12".into())
        );
        let next_day = next_day_start(NEW_YEARS_EVE);
        assert_eq!(next_day - NEW_YEARS_EVE, 30 * 60 * 1000);
        assert_eq!(next_month_start(NEW_YEARS_EVE), next_day);
        assert_eq!(
            day_and_month(next_day),
            ("2027-01-01".into(), "2027-01".into())
        );
        assert_eq!(day_and_month(0), ("1970-01-01".into(), "1970-01".into()));
        // A leap day.
        assert_eq!(day_and_month(1_709_208_000_000).0, "2024-02-29");
    }

    #[test]
    fn usage_counts_per_model_and_period_and_budgets_reset() {
        let mut totals = Totals::at(NEW_YEARS_EVE);
        totals.add(
            &[used("whisper", 0, 5), used("llama", 100, 50)],
            NEW_YEARS_EVE,
        );
        assert_eq!(totals.today_total(), 155);
        assert_eq!(totals.today["llama"].answers, 1);
        assert_eq!(totals.today["whisper"].answers, 0);
        let budgets = Budgets {
            day: Some(150),
            month: Some(1000),
        };
        assert_eq!(
            totals.standing(budgets, NEW_YEARS_EVE),
            Standing::Over(Period::Day, next_day_start(NEW_YEARS_EVE))
        );
        assert!(totals.tell(Period::Day), "told the first time");
        assert!(!totals.tell(Period::Day), "once per day");
        let tomorrow = next_day_start(NEW_YEARS_EVE) + 1;
        assert_eq!(totals.standing(budgets, tomorrow), Standing::Within);
        totals.add(&[used("llama", 10, 10)], tomorrow);
        assert_eq!((totals.today_total(), totals.month_total()), (20, 20));
        assert!(totals.tell(Period::Day), "a new day, told again");
    }

    #[test]
    fn counts_made_while_the_record_was_unread_are_added_to_it() {
        let mut read = Totals::at(NEW_YEARS_EVE);
        read.add(&[used("llama", 7, 3)], NEW_YEARS_EVE);
        let mut meanwhile = Totals::at(NEW_YEARS_EVE);
        meanwhile.add(&[used("llama", 1, 1)], NEW_YEARS_EVE);
        read.merge(&meanwhile);
        assert_eq!(read.today["llama"].total(), 12);
        assert_eq!(read.this_month["llama"].answers, 2);
    }
}
