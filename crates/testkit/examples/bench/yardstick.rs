//! The yardstick: a plain bot on the SDK's `/sync` v2, logged in as the bot's account (so it is
//! in the same rooms), replying "echo: <text>" to every text and doing nothing else. It runs in
//! a process of its own, as lambda-matrix does and as a plain bot would (this benchmark's own
//! binary, started with [`CHILD_FLAG`]), so neither bot shares a runtime with the people's
//! clients and each one's CPU time can be read from `/proc`. A plain v2 bot's first start is
//! one initial sync; later rounds restart the process as a plain bot restarts, from its saved
//! session and sync position (one request). It echoes only what arrives after a (re)start's
//! first sync, so old messages — the other bot's turn included — are not echoed.

use crate::roundtrip::{echo_texts, keep_syncing};
use anyhow::Context as _;
use lambda_matrix_testkit::Registered;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::Client;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first argument that makes this binary the yardstick's process.
pub const CHILD_FLAG: &str = "--yardstick-child";
/// Where the account's password is handed to that process (not on its command line).
const PASSWORD_ENV: &str = "BENCH_YARDSTICK_PASSWORD";
/// What the process prints once it echoes.
const READY: &str = "ready";

/// The yardstick, running (a process) or paused (none).
pub struct Yardstick {
    url: String,
    account: Registered,
    child: Option<Child>,
    store: tempfile::TempDir,
}

impl Yardstick {
    /// Starts it for the first time: it logs in as `account` (a new device), syncs every room
    /// once and starts echoing. Returns it and the seconds from start until it was ready.
    pub async fn start(url: &str, account: &Registered) -> anyhow::Result<(Yardstick, f64)> {
        let mut yardstick = Yardstick {
            url: url.to_owned(),
            account: account.clone(),
            child: None,
            store: tempfile::Builder::new().prefix("lm-yardstick-").tempdir()?,
        };
        let seconds = yardstick.resume().await?;
        Ok((yardstick, seconds))
    }

    /// The folder of its store (and of its own times, [`crate::own`]).
    pub fn store(&self) -> &Path {
        self.store.path()
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the process (the other bot's turn).
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again from its saved session and position, as a plain bot restarts;
    /// returns the seconds until it was ready.
    pub async fn resume(&mut self) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe()?)
            .arg(CHILD_FLAG)
            .args([&self.url, &self.account.user_id, &self.account.localpart])
            .arg(self.store.path())
            .env(PASSWORD_ENV, &self.account.password)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        self.child = Some(child);
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await??;
        anyhow::ensure!(
            line.trim() == READY,
            "the yardstick's process did not start: {line:?}"
        );
        Ok(started.elapsed().as_secs_f64())
    }

    /// Stops the process and logs the device out (people stop encrypting for it).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.pause();
        let client = Client::builder().homeserver_url(&self.url).build().await?;
        client
            .matrix_auth()
            .restore_session(saved(self.store.path())?, RoomLoadSettings::default())
            .await?;
        client.matrix_auth().logout().await?;
        Ok(())
    }
}

fn session_file(store: &Path) -> PathBuf {
    store.join("session.json")
}

fn saved(store: &Path) -> anyhow::Result<MatrixSession> {
    Ok(serde_json::from_str(&std::fs::read_to_string(
        session_file(store),
    )?)?)
}

/// The yardstick's process: `args` are the homeserver, the user id, the localpart and the
/// store folder. Logs in (or restores the saved session), syncs once from the saved position
/// (none at first: every room) without echoing, prints [`READY`], then echoes until killed.
pub async fn child(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut next = |what: &str| {
        args.next()
            .with_context(|| format!("{CHILD_FLAG}: no {what}"))
    };
    crate::own::install()?;
    let (url, me, localpart) = (next("homeserver")?, next("user id")?, next("localpart")?);
    let store = PathBuf::from(next("store folder")?);
    // A plain bot's initial sync of every room takes minutes at 5,000 rooms.
    let client = Client::builder()
        .homeserver_url(&url)
        .request_config(RequestConfig::new().timeout(Duration::from_secs(900)))
        .sqlite_store(&store, None)
        .build()
        .await?;
    match saved(&store) {
        Ok(session) => {
            client
                .matrix_auth()
                .restore_session(session, RoomLoadSettings::default())
                .await?
        }
        Err(_) => {
            client
                .matrix_auth()
                .login_username(&localpart, &std::env::var(PASSWORD_ENV)?)
                .initial_device_display_name("yardstick")
                .send()
                .await?;
            let session = client.matrix_auth().session().context("no session")?;
            std::fs::write(session_file(&store), serde_json::to_string(&session)?)?;
        }
    }
    let echoing = Arc::new(AtomicBool::new(false));
    echo_texts(&client, me, echoing.clone(), store.clone());
    let first = client
        .sync_once(SyncSettings::default().timeout(Duration::ZERO))
        .await?;
    echoing.store(true, Ordering::SeqCst);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{READY}")?;
    stdout.flush()?;
    drop(stdout);
    keep_syncing(&client, Some(first.next_batch), None).await?;
    Ok(())
}
