//! Every text a person sees from the bot, in English and Russian. Nothing else in the code
//! writes person-facing words.
//!
//! The texts are Markdown. Anything a person supplied (a chat name, a command word, an
//! argument) goes in through [`shown`], so it shows as text, never as markup.

mod chats;
mod notices;
mod settings;
mod usage;

pub use usage::ModelUse;

use crate::config::Lang;
use crate::render::escape_markdown;
use lambda_matrix_core::name::is_hidden;

/// Text a person supplied, ready to put into a notice: invisible and direction-changing
/// characters dropped, whitespace and control characters as single spaces, and every Markdown
/// character escaped.
pub fn shown(text: &str) -> String {
    let visible: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .map(|word| word.chars().filter(|c| !is_hidden(*c)).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect();
    escape_markdown(&visible.join(" "))
}

/// The bot's texts in one language.
#[derive(Clone, Copy, Debug)]
pub struct Texts {
    lang: Lang,
}

impl Texts {
    /// Texts in `lang`.
    pub fn new(lang: Lang) -> Self {
        Texts { lang }
    }

    pub(super) fn pick(&self, en: &str, ru: &str) -> String {
        match self.lang {
            Lang::En => en.to_owned(),
            Lang::Ru => ru.to_owned(),
        }
    }
}

pub(super) fn usage(word: &str, lang: Lang) -> String {
    let example = match word {
        "rename" => "`!rename <name>` or `!rename C2 <name>`",
        "unarchive" => "`!unarchive C2`",
        "delete" => "`!delete C2`, then `!delete C2 confirm`",
        "forget-me" => "`!forget-me`, then `!forget-me confirm`",
        "model" => "`!model` or `!model <name>`",
        _ => "`!help`",
    };
    match lang {
        Lang::En => format!("Usage: {example}."),
        Lang::Ru => format!("Пример: {example}."),
    }
}

#[cfg(test)]
mod tests;
