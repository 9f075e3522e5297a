//! `lambda-matrix reset` (dev/QA only; docs/DESIGN.md "Reset"): an honest, repeatable way back
//! to a clean slate. Normal restarts never need it.
//!
//! - `local-only`: removes the cache (with `-wal`/`-shm`), the SDK's files and the session in
//!   `MATRIX_STORE_PATH` (anything else there stays, and the folder goes only if that leaves it
//!   empty), and the store lock; and removes the bot's device on the server by logging out the
//!   saved session with its own token (no new device needed, even when the SDK files are gone).
//! - `server-leave-forget`: first leaves and forgets every room the bot manages (by marker or
//!   direct-chat record) and no other, then does local-only. Rooms still exist for their other
//!   members: Matrix has no "delete room" for a client.
//!
//! Nothing changes before the plan is confirmed: `--dry-run`, or answering anything but `yes`,
//! leaves every file and device as it was. Reading the rooms needs a client: the saved session
//! if it is usable, else a password login kept in memory, logged out again in every case.
//! `/`, the home folder and the working folder are refused as a store folder.

use crate::cli::ResetMode;
use crate::config::{vars, Settings};
use crate::lock::StoreLock;
use crate::reconcile::snapshot::Read;
use crate::session::{Login, SavedLogout};
use crate::{reconcile, session, sync};
use anyhow::{bail, Context};
use matrix_sdk::ruma::RoomId;
use matrix_sdk::Client;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct ResetOptions {
    /// What to remove.
    pub mode: ResetMode,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Go ahead without asking.
    pub yes: bool,
    /// The bot's user id, required for `server-leave-forget`.
    pub confirm: Option<String>,
}

/// What reset will do, or did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ResetReport {
    /// `local-only` or `server-leave-forget`.
    pub mode: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Local files and folders (to be) removed (the store lock, which reset holds, goes too).
    pub files: Vec<String>,
    /// Files in the store folder that are not the bot's: never removed.
    pub kept: Vec<String>,
    /// The bot's device that the saved session belongs to, if any.
    pub device_id: Option<String>,
    /// Whether reset removed that device on the server.
    pub device_removed: bool,
    /// Whether that device was found already gone from the server (its token was unknown).
    pub device_already_gone: bool,
    /// A device reset logged in as to read the rooms (no usable saved session), and logged out
    /// again.
    pub one_shot_device: Option<String>,
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

/// Refuses a store folder that is obviously wrong: `/`, the home folder (`HOME`), the current
/// working folder, or something that is not a folder. A path that does not exist is none of
/// these.
pub fn refuse_wrong_store(store: &Path) -> anyhow::Result<()> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cwd = std::env::current_dir().ok();
    match wrong_store(store, home.as_deref(), cwd.as_deref()) {
        None => Ok(()),
        Some(why) => bail!(
            "{} is {}, which is {why}: reset refuses to work there; nothing was changed",
            vars::STORE_PATH,
            store.display()
        ),
    }
}

/// Why `store` cannot be the bot's store folder, if it cannot.
fn wrong_store(store: &Path, home: Option<&Path>, cwd: Option<&Path>) -> Option<&'static str> {
    let real = store.canonicalize().ok()?;
    let is = |other: Option<&Path>| {
        other
            .and_then(|o| o.canonicalize().ok())
            .is_some_and(|o| o == real)
    };
    if real.parent().is_none() {
        Some("the root folder")
    } else if is(home) {
        Some("the home folder")
    } else if is(cwd) {
        Some("the current working folder")
    } else if !real.is_dir() {
        Some("not a folder")
    } else {
        None
    }
}

/// The local part of the plan: which files go, which stay, which device the saved session has.
fn plan_local(settings: &Settings, options: &ResetOptions) -> anyhow::Result<ResetReport> {
    let store = &settings.files.store_path;
    let (ours, others) = session::store_files(store)?;
    let mut files: Vec<PathBuf> = companions(&settings.files.db_path)
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    files.extend(ours);
    if store.is_dir() && others.is_empty() {
        files.push(store.clone());
    }
    // The lock file is removed last too; it is not listed, as reset itself holds it.
    let show = |paths: &[PathBuf]| paths.iter().map(|p| p.display().to_string()).collect();
    Ok(ResetReport {
        mode: match options.mode {
            ResetMode::LocalOnly => "local-only",
            ResetMode::ServerLeaveForget => "server-leave-forget",
        }
        .to_owned(),
        dry_run: options.dry_run,
        files: show(&files),
        kept: show(&others),
        device_id: session::saved_device(settings),
        ..ResetReport::default()
    })
}

/// The rooms the bot manages (by a trusted marker or direct-chat record), with what each is.
async fn managed_rooms(
    client: &Client,
    settings: &Settings,
) -> anyhow::Result<Vec<(String, String)>> {
    sync::load_once(client, settings.matrix.sync)
        .await
        .context("the first sync failed")?;
    let mut rooms = Vec::new();
    for room in reconcile::server_snapshot(client, settings.identity.user_id.as_str()).await {
        let kind = match (&room.space_marker, &room.chat_marker, &room.dm_record) {
            (Some(Read::Trusted(m)), _, _) => format!("space of {}", m.owner),
            (_, Some(Read::Trusted(m)), _) => format!("chat {} of {}", m.chat_id, m.owner),
            (_, _, Some(Read::Trusted(r))) => format!("direct chat with {}", r.owner),
            _ => continue, // not the bot's: never touched
        };
        rooms.push((room.room_id, kind));
    }
    Ok(rooms)
}

/// Runs reset. The caller holds the store lock. `ask` is asked to confirm the plan unless
/// `options.yes` or `options.dry_run` ([`ask_on_terminal`] from the command line). Returns the
/// report to print.
pub async fn reset(
    settings: &Settings,
    options: &ResetOptions,
    ask: impl FnOnce(&ResetReport) -> anyhow::Result<bool>,
) -> anyhow::Result<ResetReport> {
    if options.mode == ResetMode::ServerLeaveForget
        && options.confirm.as_deref() != Some(settings.identity.user_id.as_str())
    {
        bail!(
            "server-leave-forget makes the bot leave its rooms: add --confirm {} (the bot's user id) to show you mean this account",
            settings.identity.user_id
        );
    }
    refuse_wrong_store(&settings.files.store_path)?;
    let mut report = plan_local(settings, options)?;
    // A client only to read the rooms; it changes nothing before the plan is confirmed.
    let client = if options.mode == ResetMode::ServerLeaveForget {
        let (client, login) = session::connect_untouched(settings)
            .await
            .context("server-leave-forget needs the homeserver")?;
        if login == Login::InMemory {
            report.one_shot_device = client.device_id().map(|d| d.to_string());
        }
        match managed_rooms(&client, settings).await {
            Ok(rooms) => report.rooms = rooms,
            Err(error) => {
                drop_one_shot(&client, settings, login).await;
                return Err(error);
            }
        }
        Some((client, login))
    } else {
        None
    };
    report.manual_steps = manual_steps(settings, options.mode, &report);
    let go = if options.dry_run {
        Ok(false)
    } else if options.yes {
        Ok(true)
    } else {
        ask(&report)
    };
    if !matches!(go, Ok(true)) {
        if let Some((client, login)) = &client {
            drop_one_shot(client, settings, *login).await;
        }
        if options.dry_run {
            return Ok(report);
        }
        go?;
        bail!("reset cancelled; nothing was changed");
    }
    carry_out(settings, &mut report, client).await;
    report.manual_steps = manual_steps(settings, options.mode, &report);
    Ok(report)
}

/// Logs out a device that was logged in only for this reset; a restored or given session stays.
async fn drop_one_shot(client: &Client, settings: &Settings, login: Login) {
    if matches!(login, Login::New | Login::InMemory) {
        session::log_out(client, settings, login).await;
    }
}

/// Does what the confirmed plan says: leaves the rooms, removes the devices, removes the files.
async fn carry_out(settings: &Settings, report: &mut ResetReport, client: Option<(Client, Login)>) {
    let mut restored = false;
    if let Some((client, login)) = &client {
        leave_rooms(client, report).await;
        restored = matches!(login, Login::Restored | Login::Given);
        match client.matrix_auth().logout().await {
            // The restored session's device is the saved one.
            Ok(_) => report.device_removed = restored && report.device_id.is_some(),
            Err(error) if restored => report.failed.push(format!("remove the device: {error}")),
            Err(error) => report.failed.push(format!(
                "log out the device reset logged in as (remove it by hand): {error}"
            )),
        }
    }
    drop(client);
    if !restored {
        match session::log_out_saved(settings).await {
            Ok(Some(SavedLogout::Removed(_))) => report.device_removed = true,
            Ok(Some(SavedLogout::AlreadyGone(_))) => report.device_already_gone = true,
            Ok(None) => {}
            Err(error) => report
                .failed
                .push(format!("remove the saved session's device: {error:#}")),
        }
    }
    remove_files(settings, report);
}

/// Leaves and forgets the rooms in the report.
async fn leave_rooms(client: &Client, report: &mut ResetReport) {
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
}

/// Removes the bot's files: the cache, the SDK's files and the session, the store folder if
/// nothing else is in it, and last the lock file.
fn remove_files(settings: &Settings, report: &mut ResetReport) {
    let store = &settings.files.store_path;
    if let Err(error) = session::clear_sdk_files(store) {
        report.failed.push(format!("{error:#}"));
    }
    if report.kept.is_empty() && store.is_dir() {
        if let Err(error) = std::fs::remove_dir(store) {
            report
                .failed
                .push(format!("remove {}: {error}", store.display()));
        }
    }
    let lock = StoreLock::path_for(store);
    for file in companions(&settings.files.db_path).iter().chain([&lock]) {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => report
                .failed
                .push(format!("remove {}: {error}", file.display())),
        }
    }
}

fn manual_steps(settings: &Settings, mode: ResetMode, report: &ResetReport) -> Vec<String> {
    let mut steps = Vec::new();
    if let (Some(device), false, false) = (
        &report.device_id,
        report.device_removed,
        report.device_already_gone,
    ) {
        steps.push(format!(
            "{}remove the bot's old device {device} (log in as {} in a client: Settings > Sessions), unless reset removes it",
            if report.dry_run { "" } else { "Reset could not: " },
            settings.identity.user_id
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
                settings.identity.user_id
            ));
        }
    }
    steps
}

/// Asks on the terminal whether to carry out `report`'s plan; refuses without a terminal.
pub fn ask_on_terminal(report: &ResetReport) -> anyhow::Result<bool> {
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

/// What happened, or will, to the bot's devices.
fn device_lines(report: &ResetReport) -> String {
    let mut out = String::new();
    match &report.device_id {
        Some(device) if report.dry_run => {
            out.push_str(&format!("  would remove device {device} on the server\n"))
        }
        Some(device) if report.device_removed => {
            out.push_str(&format!("  removed device {device} on the server\n"))
        }
        Some(device) if report.device_already_gone => out.push_str(&format!(
            "  device {device} was already gone from the server\n"
        )),
        Some(device) => out.push_str(&format!("  device {device} is still on the server\n")),
        None => out.push_str("  no saved session: no device to remove\n"),
    }
    if let Some(device) = &report.one_shot_device {
        out.push_str(&format!(
            "  logged in as device {device} to read the rooms{}\n",
            if report.dry_run {
                ", and logged it out again"
            } else {
                ", then logged it out"
            }
        ));
    }
    out
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
    for file in &report.kept {
        out.push_str(&format!("  kept {file} (not the bot's)\n"));
    }
    out.push_str(&device_lines(report));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obviously_wrong_store_folders_are_refused() {
        let home = tempfile::tempdir().expect("home");
        let cwd = tempfile::tempdir().expect("cwd");
        let (h, c) = (Some(home.path()), Some(cwd.path()));
        assert_eq!(wrong_store(Path::new("/"), h, c), Some("the root folder"));
        assert_eq!(
            wrong_store(&home.path().join("."), h, c),
            Some("the home folder")
        );
        assert_eq!(
            wrong_store(cwd.path(), h, c),
            Some("the current working folder")
        );
        let file = cwd.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        assert_eq!(wrong_store(&file, h, c), Some("not a folder"));
        // The usual places are fine, existing or not.
        let store = cwd.path().join("matrix_store");
        assert_eq!(wrong_store(&store, h, c), None);
        std::fs::create_dir(&store).expect("mkdir");
        assert_eq!(wrong_store(&store, h, c), None);
        assert_eq!(wrong_store(&home.path().join("bot/store"), h, c), None);
    }

    #[test]
    fn the_report_names_the_device_actually_removed() {
        let report = ResetReport {
            mode: "local-only".into(),
            device_id: Some("OLD".into()),
            one_shot_device: Some("NEW".into()),
            ..ResetReport::default()
        };
        let shown = render(&report);
        assert!(
            shown.contains("device OLD is still on the server"),
            "{shown}"
        );
        assert!(!shown.contains("removed device"), "{shown}");
        assert!(
            shown.contains("logged in as device NEW to read the rooms, then logged it out"),
            "{shown}"
        );
        let removed = render(&ResetReport {
            device_removed: true,
            ..report.clone()
        });
        assert!(
            removed.contains("removed device OLD on the server"),
            "{removed}"
        );
        let gone = render(&ResetReport {
            device_already_gone: true,
            ..report
        });
        assert!(gone.contains("device OLD was already gone"), "{gone}");
    }
}
