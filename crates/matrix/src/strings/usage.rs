//! The texts about tokens and budgets: `!usage`, a budget used up, the fallback model's mark.

use super::{shown, Texts};
use crate::config::Lang;

/// One model's line in `!usage`: its name, tokens, answers, and whether they are estimated.
#[derive(Clone, Debug)]
pub struct ModelUse {
    /// The model.
    pub model: String,
    /// Prompt and completion tokens together.
    pub tokens: u64,
    /// Answers it wrote.
    pub answers: u64,
    /// Some of it estimated from the text.
    pub estimated: bool,
}

impl Texts {
    /// `!usage`: today's and this month's tokens by model, and the budgets.
    pub fn usage_report(
        &self,
        today: &[ModelUse],
        month: &[ModelUse],
        budgets: (Option<u64>, Option<u64>),
    ) -> String {
        let (head, day_word, month_word, none, budget_word, no_budget) = match self.lang {
            Lang::En => (
                "**Your usage** (tokens, UTC)",
                "Today",
                "This month",
                "nothing yet",
                "budget",
                "no budget",
            ),
            Lang::Ru => (
                "**Ваш расход** (токены, UTC)",
                "Сегодня",
                "В этом месяце",
                "пока ничего",
                "лимит",
                "без лимита",
            ),
        };
        let total = |uses: &[ModelUse]| uses.iter().map(|u| u.tokens).sum::<u64>();
        let section = |word: &str, uses: &[ModelUse], budget: Option<u64>| {
            let limit = match budget {
                Some(max) => format!("{budget_word} {max}"),
                None => no_budget.to_owned(),
            };
            let mut out = format!("\n\n**{word}**: {} ({limit})", total(uses));
            if uses.is_empty() {
                out.push_str(&format!("\n- {none}"));
            }
            for used in uses {
                let estimate = match (used.estimated, self.lang) {
                    (false, _) => "",
                    (true, Lang::En) => ", partly estimated",
                    (true, Lang::Ru) => ", частично по оценке",
                };
                let answers = match (self.lang, used.answers) {
                    (Lang::En, 1) => "1 answer".to_owned(),
                    (Lang::En, n) => format!("{n} answers"),
                    (Lang::Ru, n) => format!("ответов: {n}"),
                };
                out.push_str(&format!(
                    "\n- {}: {} ({answers}{estimate})",
                    shown(&used.model),
                    used.tokens
                ));
            }
            out
        };
        format!(
            "{head}{}{}",
            section(day_word, today, budgets.0),
            section(month_word, month, budgets.1)
        )
    }

    /// The first message over a budget (`daily` or monthly, of `max` tokens), until `resets`
    /// (`YYYY-MM-DD 00:00 UTC`); `fallback`: the model that answers meanwhile.
    pub fn budget_reached(
        &self,
        daily: bool,
        max: u64,
        resets: &str,
        fallback: Option<&str>,
    ) -> String {
        let period = match (daily, self.lang) {
            (true, Lang::En) => "today's",
            (false, Lang::En) => "this month's",
            (true, Lang::Ru) => "дневной",
            (false, Lang::Ru) => "месячный",
        };
        match (self.lang, fallback) {
            (Lang::En, Some(model)) => format!(
                "You have used {period} token budget ({max} tokens). Until it resets at {resets}, a smaller model, **{}**, answers you. `!usage` shows your usage.",
                shown(model)
            ),
            (Lang::En, None) => format!(
                "You have used {period} token budget ({max} tokens). I cannot answer here until it resets at {resets}; commands still work. `!usage` shows your usage."
            ),
            (Lang::Ru, Some(model)) => format!(
                "Вы израсходовали {period} лимит токенов ({max}). До его сброса в {resets} вам отвечает модель попроще, **{}**. `!usage` покажет расход.",
                shown(model)
            ),
            (Lang::Ru, None) => format!(
                "Вы израсходовали {period} лимит токенов ({max}). До его сброса в {resets} я не могу здесь отвечать; команды работают. `!usage` покажет расход."
            ),
        }
    }

    /// Each later message over a budget (no fallback model): it resets at `resets`.
    pub fn budget_still_used_up(&self, resets: &str) -> String {
        match self.lang {
            Lang::En => format!("Token budget used up until {resets}; not answered."),
            Lang::Ru => format!("Лимит токенов исчерпан до {resets}; без ответа."),
        }
    }

    /// Under an answer by the fallback model.
    pub fn fallback_mark(&self, model: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "*(answered by **{}**: your token budget is used up)*",
                shown(model)
            ),
            Lang::Ru => format!(
                "*(ответила модель **{}**: ваш лимит токенов исчерпан)*",
                shown(model)
            ),
        }
    }
}
