//! `lambda-matrix reset` (dev/QA only; DESIGN.md "Reset", the seed's pattern 4): an honest,
//! repeatable way back to a clean slate. Normal restarts never need it.
//!
//! - `local-only`: removes the cache (with `-wal`/`-shm`) and the SDK store (session included),
//!   and removes the bot's device on the server by logging it out.
//! - `server-leave-forget`: first leaves and forgets every room the bot manages (by marker or
//!   direct-chat record) and no other, then does local-only. Rooms still exist for their other
//!   members: Matrix has no "delete room" for a client.

use crate::cli::ResetMode;
use crate::config::Settings;
use crate::reconcile::snapshot::Read;
use crate::{reconcile, session, sync};
use anyhow::{bail, Context};
use matrix_sdk::ruma::RoomId;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// What reset will do, or did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ResetReport {
    /// `local-only` or `server-leave-forget`.
    pub mode: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Local files and folders (to be) removed.
    pub files: Vec<String>,
    /// The bot's device that the saved session belongs to, if any.
    pub device_id: Option<String>,
    /// Whether that device was removed on the server.
    pub device_removed: bool,
    /// Rooms (to be) left and forgotten: `(room id, what it is)`.
    pub rooms: Vec<(String, String)>,
    /// What failed.
    pub failed: Vec<String>,
    /// What is left to do by hand.
    pub manual_steps: Vec<String>,
}

fn companions(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .collect()
}

fn saved_device(store: &Path) -> Option<String> {
    let text = std::fs::read_to_string(session::session_path(store)).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["session"]["device_id"].as_str().map(str::to_owned)
}

/// Runs reset. The caller holds the store lock. Returns the report to print.
pub async fn reset(
    settings: &Settings,
    mode: ResetMode,
    dry_run: bool,
    yes: bool,
    confirm: Option<&str>,
) -> anyhow::Result<ResetReport> {
    if mode == ResetMode::ServerLeaveForget && confirm != Some(settings.user_id.as_str()) {
        bail!(
            "server-leave-forget makes the bot leave its rooms: add --confirm {} (the bot's user id) to show you mean this account",
            settings.user_id
        );
    }
    let mut report = ResetReport {
        mode: match mode {
            ResetMode::LocalOnly => "local-only",
            ResetMode::ServerLeaveForget => "server-leave-forget",
        }
        .to_owned(),
        dry_run,
        device_id: saved_device(&settings.store_path),
        ..ResetReport::default()
    };
    let mut targets: Vec<PathBuf> = companions(&settings.db_path)
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    if settings.store_path.exists() {
        targets.push(settings.store_path.clone());
    }
    report.files = targets.iter().map(|p| p.display().to_string()).collect();

    // A client on the saved session (for the device and, in server mode, the rooms).
    let client = if report.device_id.is_some() || mode == ResetMode::ServerLeaveForget {
        match session::connect(settings).await {
            Ok((client, login)) => Some((client, login)),
            Err(error) => {
                report
                    .failed
                    .push(format!("cannot reach the homeserver as the bot: {error:#}"));
                None
            }
        }
    } else {
        None
    };
    if mode == ResetMode::ServerLeaveForget {
        let Some((client, _)) = &client else {
            bail!(
                "server-leave-forget needs the homeserver: {}",
                report.failed.join("; ")
            );
        };
        sync::load_once(client)
            .await
            .context("the first sync failed")?;
        for room in reconcile::server_snapshot(client, settings.user_id.as_str()).await {
            let kind = match (&room.space_marker, &room.chat_marker, &room.dm_record) {
                (Some(Read::Trusted(m)), _, _) => format!("space of {}", m.owner),
                (_, Some(Read::Trusted(m)), _) => format!("chat {} of {}", m.chat_id, m.owner),
                (_, _, Some(Read::Trusted(r))) => format!("direct chat with {}", r.owner),
                _ => continue, // not the bot's: never touched
            };
            report.rooms.push((room.room_id, kind));
        }
    }

    report.manual_steps = manual_steps(settings, mode, &report);
    if dry_run {
        if let Some((client, session::Login::New)) = &client {
            session::log_out(client, settings).await;
        }
        return Ok(report);
    }
    if !yes && !confirmed(&report)? {
        bail!("reset cancelled; nothing was changed");
    }

    if let Some((client, _)) = &client {
        for (room_id, kind) in &report.rooms {
            let left = async {
                let id = <&RoomId>::try_from(room_id.as_str())?;
                let room = client.get_room(id).context("unknown room")?;
                room.leave().await?;
                room.forget().await?;
                anyhow::Ok(())
            };
            if let Err(error) = left.await {
                report
                    .failed
                    .push(format!("leave {room_id} ({kind}): {error:#}"));
            }
        }
        match client.matrix_auth().logout().await {
            Ok(_) => report.device_removed = report.device_id.is_some(),
            Err(error) => report.failed.push(format!("remove the device: {error}")),
        }
    }
    for target in &targets {
        let removed = if target.is_dir() {
            std::fs::remove_dir_all(target)
        } else {
            std::fs::remove_file(target)
        };
        if let Err(error) = removed {
            report
                .failed
                .push(format!("remove {}: {error}", target.display()));
        }
    }
    report.manual_steps = manual_steps(settings, mode, &report);
    Ok(report)
}

fn manual_steps(settings: &Settings, mode: ResetMode, report: &ResetReport) -> Vec<String> {
    let mut steps = Vec::new();
    if let (Some(device), false) = (&report.device_id, report.device_removed) {
        steps.push(format!(
            "{}remove the bot's old device {device} (log in as {} in a client: Settings > Sessions), unless reset removes it",
            if report.dry_run { "" } else { "Reset could not: " },
            settings.user_id
        ));
    }
    match mode {
        ResetMode::LocalOnly => steps.push(
            "Nothing else is needed to continue: the rooms still exist and the next `run` rebuilds the cache from them. \
             For a visually clean slate, each person leaves and forgets the old Space, chat rooms and direct chat in their client."
                .to_owned(),
        ),
        ResetMode::ServerLeaveForget => {
            steps.push(
                "The rooms still exist for their other members: each person leaves and forgets the old Space, chat rooms and direct chat in their client."
                    .to_owned(),
            );
            steps.push(format!(
                "To start again, a person invites {} to a new direct chat (the old one no longer has the bot).",
                settings.user_id
            ));
        }
    }
    steps
}

/// Asks on the terminal; refuses without one.
fn confirmed(report: &ResetReport) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("reset needs --yes when there is no terminal to ask on; nothing was changed");
    }
    let mut err = std::io::stderr().lock();
    writeln!(err, "{}", render(report))?;
    write!(err, "Type yes to go ahead: ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// The report for a person.
pub fn render(report: &ResetReport) -> String {
    let mut out = format!(
        "reset {}{}\n",
        report.mode,
        if report.dry_run {
            " (dry run: the plan, nothing changed)"
        } else {
            ""
        }
    );
    if report.files.is_empty() {
        out.push_str("  local files: nothing there\n");
    }
    for file in &report.files {
        out.push_str(&format!(
            "  {} {file}\n",
            if report.dry_run {
                "would remove"
            } else {
                "removed"
            }
        ));
    }
    match (&report.device_id, report.device_removed, report.dry_run) {
        (Some(device), _, true) => {
            out.push_str(&format!("  would remove device {device} on the server\n"))
        }
        (Some(device), true, false) => {
            out.push_str(&format!("  removed device {device} on the server\n"))
        }
        (Some(device), false, false) => {
            out.push_str(&format!("  device {device} is still on the server\n"))
        }
        (None, ..) => out.push_str("  no saved session: no device to remove\n"),
    }
    for (room, kind) in &report.rooms {
        out.push_str(&format!(
            "  {} {room} ({kind})\n",
            if report.dry_run {
                "would leave and forget"
            } else {
                "left and forgot"
            }
        ));
    }
    for failure in &report.failed {
        out.push_str(&format!("  failed: {failure}\n"));
    }
    out.push_str("left to do by hand:\n");
    for step in &report.manual_steps {
        out.push_str(&format!("  - {step}\n"));
    }
    out
}
