//! Parsing one setting's text, with the variable named in every problem. A value left unset (or
//! empty, where that means unset) takes the default from [`super::defaults`].

use super::{defaults, vars, Glob};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The value if set and not blank, else the variable's default.
fn or_default<'a>(value: Option<&'a str>, var: &str) -> &'a str {
    value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| defaults::of(var))
}

pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

pub(super) fn required(value: &Option<String>, var: &str, what: &str) -> Result<String, String> {
    non_empty(value.clone())
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| format!("{var} is required ({what})"))
}

pub(super) fn homeserver(s: &str) -> Result<Url, String> {
    match Url::parse(s) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(format!(
            "{}: {s:?} is not an http(s) URL like https://matrix.example.org",
            vars::HOMESERVER
        )),
    }
}

pub(super) fn globs(list: &str) -> Result<Vec<Glob>, String> {
    let globs: Vec<Glob> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            Glob::new(p).ok_or_else(|| {
                format!(
                    "{}: pattern {p:?} must not contain spaces",
                    vars::ALLOWED_USERS
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if globs.is_empty() {
        return Err(format!(
            "{}: no patterns given; use e.g. @*:example.org, or leave it unset for the bot's own server",
            vars::ALLOWED_USERS
        ));
    }
    Ok(globs)
}

/// One of `choices` (the value as written, trimmed).
pub(super) fn choice<'a>(
    value: Option<&str>,
    var: &str,
    what: &str,
    choices: &[&'a str],
) -> Result<&'a str, String> {
    let text = or_default(value, var);
    choices
        .iter()
        .find(|c| **c == text)
        .copied()
        .ok_or_else(|| format!("{var}: unknown {what} {text:?}; use {}", join_or(choices)))
}

/// `a, b or c`.
fn join_or(choices: &[&str]) -> String {
    match choices.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub(super) fn bool(value: Option<&str>, var: &str) -> Result<bool, String> {
    let text = or_default(value, var).to_ascii_lowercase();
    match text.as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{var}: {text:?} is not true or false")),
    }
}

pub(super) fn duration(value: Option<&str>, var: &str, nonzero: bool) -> Result<Duration, String> {
    let text = or_default(value, var);
    match humantime::parse_duration(text) {
        Ok(d) if nonzero && d.is_zero() => Err(format!("{var}: must be longer than zero")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "{var}: {text:?} is not a duration like 30s, 5m or 24h"
        )),
    }
}

pub(super) fn count(value: Option<&str>, var: &str) -> Result<u32, String> {
    let text = or_default(value, var);
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{var}: {text:?} is not a whole number of at least 1"
        )),
    }
}

/// A comma-separated list of model names (each without spaces, at most 200 characters), at
/// least one; unset: the default's list, or none when there is no default.
pub(super) fn names(value: Option<&str>, var: &str) -> Result<Vec<String>, String> {
    let text = or_default(value, var);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() || name.chars().count() > 200 || name.contains(char::is_whitespace) {
            return Err(format!(
                "{var}: {name:?} is not a model name (comma-separated names without spaces)"
            ));
        }
        if !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// A budget: unset (or blank) is none, else a whole number of at least 1.
pub(super) fn budget(value: Option<&str>, var: &str) -> Result<Option<u64>, String> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(format!(
                "{var}: {text:?} is not a number of tokens (a whole number of at least 1)"
            )),
        },
    }
}

/// A whole number from 0 to `max`.
pub(super) fn up_to(value: Option<&str>, var: &str, max: usize) -> Result<usize, String> {
    let text = or_default(value, var);
    text.parse::<usize>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| format!("{var}: {text:?} is not a whole number from 0 to {max}"))
}

pub(super) fn path(value: &Option<String>, var: &str) -> Result<PathBuf, String> {
    let default = defaults::of(var);
    match value.as_deref() {
        None => Ok(PathBuf::from(default)),
        Some(s) if s.trim().is_empty() => {
            Err(format!("{var} is set but empty; unset it for {default}"))
        }
        Some(s) => Ok(PathBuf::from(s)),
    }
}
