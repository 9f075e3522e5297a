//! The texts about one chat's own settings: `!model`, `!instructions`, `!settings`.

use super::{shown, Texts};
use crate::config::Lang;

/// Text a person supplied over several lines, as a Markdown quote: each line shown as text.
fn quoted(text: &str) -> String {
    text.lines()
        .map(|line| format!("> {}", shown(line)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A model name as text (names come from the model server and from people).
fn model_name(name: &str) -> String {
    let start: String = name.chars().take(100).collect();
    shown(&start)
}

impl Texts {
    /// `!model`: the models offered, this chat's marked.
    pub fn model_list(&self, models: &[String], current: &str) -> String {
        let mut out = self.pick(
            "**Models** (this chat's is marked; `!model <name>` switches)\n\n",
            "**Модели** (модель этого чата отмечена; `!model <название>` переключает)\n\n",
        );
        for model in models {
            let mark = if model == current { " ✅" } else { "" };
            out.push_str(&format!("- {}{mark}\n", model_name(model)));
        }
        out
    }

    /// `!model <name>` done.
    pub fn model_set(&self, model: &str) -> String {
        match self.lang {
            Lang::En => format!("This chat now uses **{}**.", model_name(model)),
            Lang::Ru => format!("Этот чат теперь использует **{}**.", model_name(model)),
        }
    }

    /// `!model <name>` for a model not offered, with the ones that are.
    pub fn model_unknown(&self, asked: &str, models: &[String]) -> String {
        let asked: String = asked.chars().take(40).collect();
        let list = models
            .iter()
            .map(|m| model_name(m))
            .collect::<Vec<_>>()
            .join(", ");
        match self.lang {
            Lang::En => format!(
                "There is no model called **{}** here. Available: {list}.",
                shown(&asked)
            ),
            Lang::Ru => format!("Модели **{}** здесь нет. Доступны: {list}.", shown(&asked)),
        }
    }

    /// The model list could not be had from the platform.
    pub fn models_unavailable(&self) -> String {
        self.pick(
            "I could not get the list of models just now. Try again in a moment.",
            "Не удалось получить список моделей. Попробуйте чуть позже.",
        )
    }

    /// `!instructions` with none set.
    pub fn no_instructions(&self) -> String {
        self.pick(
            "This chat has no instructions of its own. `!instructions <text>` sets them.",
            "У этого чата нет своих инструкций. `!instructions <текст>` задаёт их.",
        )
    }

    /// `!instructions`: this chat's.
    pub fn instructions_shown(&self, instructions: &str) -> String {
        let head = self.pick(
            "This chat's instructions (`!instructions clear` removes them):",
            "Инструкции этого чата (`!instructions clear` удаляет их):",
        );
        format!("{head}\n\n{}", quoted(instructions))
    }

    /// `!instructions <text>` done.
    pub fn instructions_set(&self, chars: usize) -> String {
        match self.lang {
            Lang::En => format!(
                "Saved this chat's instructions ({chars} characters). They apply from the next answer."
            ),
            Lang::Ru => format!(
                "Инструкции этого чата сохранены (символов: {chars}). Они действуют со следующего ответа."
            ),
        }
    }

    /// `!instructions clear` done.
    pub fn instructions_cleared(&self) -> String {
        self.pick(
            "Removed this chat's instructions.",
            "Инструкции этого чата удалены.",
        )
    }

    /// `!instructions <text>` over `LAMBDA_MAX_INSTRUCTIONS_CHARS`.
    pub fn instructions_too_long(&self, chars: usize, max: usize) -> String {
        match self.lang {
            Lang::En => format!(
                "These instructions have {chars} characters; a chat's may have at most {max}. Nothing was changed."
            ),
            Lang::Ru => format!(
                "В этих инструкциях {chars} символов, а можно не больше {max}. Ничего не изменено."
            ),
        }
    }

    /// `!settings`: this chat's model (and whether it is the default) and instructions.
    pub fn chat_settings(&self, model: &str, chosen: bool, instructions: Option<&str>) -> String {
        let model = model_name(model);
        let model_line = match (self.lang, chosen) {
            (Lang::En, true) => format!("- Model: **{model}** (chosen for this chat)"),
            (Lang::En, false) => format!("- Model: **{model}** (the default)"),
            (Lang::Ru, true) => format!("- Модель: **{model}** (выбрана для этого чата)"),
            (Lang::Ru, false) => format!("- Модель: **{model}** (по умолчанию)"),
        };
        let head = self.pick("**This chat's settings**", "**Настройки этого чата**");
        let instructions = match instructions {
            Some(text) => format!(
                "{}\n\n{}",
                self.pick("- Instructions:", "- Инструкции:"),
                quoted(text)
            ),
            None => self.pick("- Instructions: none", "- Инструкции: нет"),
        };
        format!("{head}\n\n{model_line}\n{instructions}")
    }

    /// A chat setting command given outside a chat room.
    pub fn chat_room_only(&self, command: &str) -> String {
        match self.lang {
            Lang::En => format!("`{command}` applies to one chat: send it in that chat's room."),
            Lang::Ru => {
                format!("`{command}` относится к одному чату: отправьте её в комнате этого чата.")
            }
        }
    }
}
