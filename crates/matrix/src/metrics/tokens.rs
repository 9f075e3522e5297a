//! Tokens (prompt, completion) and answers by model, and the times a person reached a budget.

use lambda_matrix_platform::Usage;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The counts by model.
#[derive(Debug, Default)]
pub(super) struct TokenCounts {
    /// Model → (prompt tokens, completion tokens, answers).
    by_model: Mutex<BTreeMap<String, (u64, u64, u64)>>,
    /// People told they reached a budget (once per person and period).
    over_budget: AtomicU64,
}

impl TokenCounts {
    /// One answer's usage: every model's tokens, and the answer for the model that wrote it
    /// (the last).
    pub(super) fn answer(&self, usage: &[Usage]) {
        let mut models = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
        for used in usage {
            let counts = models.entry(used.model.clone()).or_default();
            counts.0 += used.prompt;
            counts.1 += used.completion;
        }
        if let Some(writer) = usage.last() {
            models.entry(writer.model.clone()).or_default().2 += 1;
        }
    }

    /// A person reached a budget.
    pub(super) fn over_budget(&self) {
        self.over_budget.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text.
    pub(super) fn render(&self, out: &mut String) {
        let models = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
        let name = "lambda_matrix_tokens_total";
        let _ = writeln!(
            out,
            "# HELP {name} Tokens the platform reported (or the bot estimated), by model and kind.\n# TYPE {name} counter"
        );
        for (model, (prompt, completion, _)) in models.iter() {
            let model = label(model);
            let _ = writeln!(out, "{name}{{model=\"{model}\",kind=\"prompt\"}} {prompt}");
            let _ = writeln!(
                out,
                "{name}{{model=\"{model}\",kind=\"completion\"}} {completion}"
            );
        }
        let name = "lambda_matrix_answers_by_model_total";
        let _ = writeln!(
            out,
            "# HELP {name} Answers, by the model that wrote them.\n# TYPE {name} counter"
        );
        for (model, (_, _, answers)) in models.iter() {
            let _ = writeln!(out, "{name}{{model=\"{}\"}} {answers}", label(model));
        }
        let name = "lambda_matrix_budget_reached_total";
        let _ = writeln!(
            out,
            "# HELP {name} People told they used up a budget (once per person and day or month).\n# TYPE {name} counter\n{name} {}",
            self.over_budget.load(Ordering::Relaxed)
        );
    }
}

/// `value` as a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_answers_are_counted_by_model() {
        let counts = TokenCounts::default();
        let used = |model: &str, prompt, completion| Usage {
            model: model.into(),
            prompt,
            completion,
            estimated: false,
        };
        counts.answer(&[used("whisper", 0, 4), used("llama", 10, 5)]);
        counts.answer(&[used("llama", 1, 1)]);
        counts.over_budget();
        let mut out = String::new();
        counts.render(&mut out);
        for line in [
            "lambda_matrix_tokens_total{model=\"llama\",kind=\"prompt\"} 11",
            "lambda_matrix_tokens_total{model=\"llama\",kind=\"completion\"} 6",
            "lambda_matrix_tokens_total{model=\"whisper\",kind=\"completion\"} 4",
            "lambda_matrix_answers_by_model_total{model=\"llama\"} 2",
            "lambda_matrix_answers_by_model_total{model=\"whisper\"} 0",
            "lambda_matrix_budget_reached_total 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing:\n{out}");
        }
    }
}
