//! Parsing what a person types into a [`Command`]. Pure: no I/O, table-tested and fuzzed.

use lambda_matrix_core::{ChatId, ChatName, NameError};

/// The command prefix.
pub const PREFIX: char = '!';

/// Longest command text the parser looks at; longer input is refused without parsing.
pub const MAX_COMMAND_BYTES: usize = 4096;

/// A command a person gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `!help`
    Help,
    /// `!new [name]`
    New(Option<ChatName>),
    /// `!chats`
    Chats,
    /// `!rename <name>` (this chat) or `!rename C<n> <name>`
    Rename {
        /// The chat, or `None` for the room the command was given in.
        target: Option<ChatId>,
        /// The new name.
        name: ChatName,
    },
    /// `!archive [C<n>]`
    Archive(Option<ChatId>),
    /// `!unarchive C<n>`
    Unarchive(ChatId),
    /// `!invite [C<n>]`
    Invite(Option<ChatId>),
    /// `!delete [C<n>] [confirm]`: asks first; with `confirm`, deletes.
    Delete {
        /// The chat, or `None` for the room the command was given in.
        target: Option<ChatId>,
        /// Whether the person confirmed.
        confirmed: bool,
    },
    /// `!forget-me [confirm]`: asks first; with `confirm`, erases everything about the person.
    ForgetMe {
        /// Whether the person confirmed.
        confirmed: bool,
    },
    /// `!cancel`: stops the answers still pending in this chat.
    Cancel,
    /// `!model` (the models offered) or `!model <name>` (this chat's model).
    Model(Option<String>),
    /// `!instructions`, `!instructions <text>`, `!instructions clear`: this chat's instructions.
    Instructions(Instructions),
    /// `!settings`: this chat's model and instructions.
    Settings,
    /// `!usage`: the person's tokens today and this month, and their budgets.
    Usage,
}

impl Command {
    /// The command as typed, without its arguments (`!model`).
    pub fn word(&self) -> &'static str {
        match self {
            Command::Help => "!help",
            Command::New(_) => "!new",
            Command::Chats => "!chats",
            Command::Rename { .. } => "!rename",
            Command::Archive(_) => "!archive",
            Command::Unarchive(_) => "!unarchive",
            Command::Invite(_) => "!invite",
            Command::Delete { .. } => "!delete",
            Command::ForgetMe { .. } => "!forget-me",
            Command::Cancel => "!cancel",
            Command::Model(_) => "!model",
            Command::Instructions(_) => "!instructions",
            Command::Settings => "!settings",
            Command::Usage => "!usage",
        }
    }
}

/// What `!instructions` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instructions {
    /// Show them.
    Show,
    /// Remove them (`clear`).
    Clear,
    /// Set them to this text (newlines kept; its length is bounded by the caller's setting).
    Set(String),
}

/// The word that removes a chat's instructions.
pub const CLEAR: &str = "clear";

/// The word that confirms `!delete` and `!forget-me`.
pub const CONFIRM: &str = "confirm";

/// Why a command could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// `!something` that is not a command.
    Unknown(String),
    /// A command without a required argument; holds the command word.
    MissingArgument(&'static str),
    /// A chat id that is not `C<n>`; holds what was typed.
    BadChatId(String),
    /// Arguments where none are taken; holds the command word.
    UnexpectedArgument(&'static str),
    /// A name that is empty or too long.
    BadName(NameError),
    /// The text is longer than [`MAX_COMMAND_BYTES`].
    TooLong,
}

/// Parses `body`. `None` if it is not a command at all (does not start with `!`).
pub fn parse(body: &str) -> Option<Result<Command, ParseError>> {
    let text = body.trim_start();
    let rest = text.strip_prefix(PREFIX)?;
    if text.len() > MAX_COMMAND_BYTES {
        return Some(Err(ParseError::TooLong));
    }
    let rest = rest.trim();
    let (word, args) = match rest.split_once(char::is_whitespace) {
        Some((word, args)) => (word, args.trim()),
        None => (rest, ""),
    };
    Some(parse_word(&word.to_lowercase(), args))
}

fn parse_word(word: &str, args: &str) -> Result<Command, ParseError> {
    match word {
        "help" => no_args("help", args).map(|()| Command::Help),
        "chats" => no_args("chats", args).map(|()| Command::Chats),
        "new" => match args {
            "" => Ok(Command::New(None)),
            name => name_arg(name).map(|n| Command::New(Some(n))),
        },
        "rename" => parse_rename(args),
        "archive" => optional_id(args).map(Command::Archive),
        "unarchive" => match args {
            "" => Err(ParseError::MissingArgument("unarchive")),
            id => chat_id_arg(id).map(Command::Unarchive),
        },
        "invite" => optional_id(args).map(Command::Invite),
        "delete" => parse_delete(args),
        "forget-me" | "forgetme" => match args.to_lowercase().as_str() {
            "" => Ok(Command::ForgetMe { confirmed: false }),
            CONFIRM => Ok(Command::ForgetMe { confirmed: true }),
            _ => Err(ParseError::UnexpectedArgument("forget-me")),
        },
        "cancel" => no_args("cancel", args).map(|()| Command::Cancel),
        "settings" => no_args("settings", args).map(|()| Command::Settings),
        "usage" => no_args("usage", args).map(|()| Command::Usage),
        "model" => match args {
            "" => Ok(Command::Model(None)),
            name if name.contains(char::is_whitespace) => {
                Err(ParseError::UnexpectedArgument("model"))
            }
            name => Ok(Command::Model(Some(name.to_owned()))),
        },
        "instructions" => Ok(Command::Instructions(match args {
            "" => Instructions::Show,
            word if word.eq_ignore_ascii_case(CLEAR) => Instructions::Clear,
            text => Instructions::Set(text.to_owned()),
        })),
        other => Err(ParseError::Unknown(truncate(other, 40))),
    }
}

fn parse_rename(args: &str) -> Result<Command, ParseError> {
    if args.is_empty() {
        return Err(ParseError::MissingArgument("rename"));
    }
    let (first, rest) = match args.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, rest.trim()),
        None => (args, ""),
    };
    match first.parse::<ChatId>() {
        Ok(id) if rest.is_empty() => {
            // `!rename C2` names no new name; it is not a rename of this chat to "C2".
            let _ = id;
            Err(ParseError::MissingArgument("rename"))
        }
        Ok(id) => name_arg(rest).map(|name| Command::Rename {
            target: Some(id),
            name,
        }),
        Err(_) => name_arg(args).map(|name| Command::Rename { target: None, name }),
    }
}

fn parse_delete(args: &str) -> Result<Command, ParseError> {
    let words: Vec<String> = args.split_whitespace().map(str::to_lowercase).collect();
    let (target, rest) = match words.first() {
        Some(first) if first != CONFIRM => (Some(chat_id_arg(first)?), &words[1..]),
        _ => (None, &words[..]),
    };
    match rest {
        [] => Ok(Command::Delete {
            target,
            confirmed: false,
        }),
        [word] if word == CONFIRM => Ok(Command::Delete {
            target,
            confirmed: true,
        }),
        _ => Err(ParseError::UnexpectedArgument("delete")),
    }
}

fn no_args(word: &'static str, args: &str) -> Result<(), ParseError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(ParseError::UnexpectedArgument(word))
    }
}

fn optional_id(args: &str) -> Result<Option<ChatId>, ParseError> {
    match args {
        "" => Ok(None),
        id => chat_id_arg(id).map(Some),
    }
}

fn chat_id_arg(text: &str) -> Result<ChatId, ParseError> {
    text.parse::<ChatId>()
        .map_err(|_| ParseError::BadChatId(truncate(text, 20)))
}

fn name_arg(text: &str) -> Result<ChatName, ParseError> {
    ChatName::parse(text).map_err(ParseError::BadName)
}

/// At most `max` characters of `text`, for echoing bad input back safely.
fn truncate(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
