//! `lambda-matrix check`: is this deployment fit to start? One item per part (settings,
//! homeserver, who the bot is, cache, store, encryption identity, platform), each with what to
//! do about a problem. It writes nothing anywhere: no login, no store or cache opened for
//! writing, no lock taken; requests to the homeserver only read.

mod local;
mod platform;
mod server;

use crate::config::{ConfigErrors, Settings};
use serde::Serialize;
use std::fmt::Write;

/// How an item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// A start works, but something is worth doing.
    Warn,
    /// A start would fail, or the bot would not work.
    Fail,
}

/// One checked part of the deployment.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// Which part (`settings`, `homeserver`, …).
    pub name: &'static str,
    /// How it stands.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it, when something is to be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl Item {
    fn ok(name: &'static str, detail: impl Into<String>) -> Item {
        Item {
            name,
            status: Status::Ok,
            detail: detail.into(),
            action: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> Item {
        Item {
            name,
            status: Status::Warn,
            detail: detail.into(),
            action: Some(action.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> Item {
        Item {
            name,
            status: Status::Fail,
            detail: detail.into(),
            action: Some(action.into()),
        }
    }
}

/// Everything checked.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// No item blocks a start.
    pub ok: bool,
    /// The items, in the order checked.
    pub items: Vec<Item>,
}

impl Report {
    fn new(items: Vec<Item>) -> Report {
        Report {
            ok: items.iter().all(|item| item.status != Status::Fail),
            items,
        }
    }
}

/// Checks everything `settings` point at.
pub async fn check(settings: &Settings) -> Report {
    let mut items = vec![local::settings(settings)];
    items.push(server::homeserver(settings).await);
    let (who, session) = server::identity(settings).await;
    items.push(who);
    items.push(local::cache(settings));
    items.push(local::store(settings));
    items.push(server::encryption(settings, session.as_ref()).await);
    items.push(platform::platform(settings).await);
    Report::new(items)
}

/// The report when the settings themselves cannot be read: nothing else can be checked.
pub fn unreadable_settings(problems: &ConfigErrors) -> Report {
    Report::new(vec![Item::fail(
        "settings",
        problems.0.join("; "),
        "fix the settings named (environment, .env or flags; see .env.example)",
    )])
}

/// The report for people: a summary line, then one line per item.
pub fn render(report: &Report) -> String {
    let count = |status| report.items.iter().filter(|i| i.status == status).count();
    let mut out = format!(
        "lambda-matrix check: {} ok, {} to look at, {} blocking a start\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    );
    for item in &report.items {
        let status = match item.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let _ = write!(out, "{status:<5} {:<11} {}", item.name, item.detail);
        if let Some(action) = &item.action {
            let _ = write!(out, " -> {action}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_item_blocks_and_every_item_is_one_line() {
        let report = Report::new(vec![
            Item::ok("settings", "read"),
            Item::warn("encryption", "no backup", "start the bot once"),
            Item::fail("platform", "model x is not served", "set the model"),
        ]);
        assert!(!report.ok);
        let text = render(&report);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.starts_with("lambda-matrix check: 1 ok, 1 to look at, 1 blocking"));
        assert!(text.contains("FAIL  platform    model x is not served -> set the model"));
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["ok"], false);
        assert_eq!(json["items"][2]["status"], "fail");
        assert!(json["items"][0].get("action").is_none());
        assert!(
            Report::new(vec![Item::warn("a", "b", "c")]).ok,
            "warnings do not block"
        );
    }
}
