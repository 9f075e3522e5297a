//! lambda-matrix's own startup, as a process: from spawn to `/health` answering 200 (reconciled,
//! caught up, handling messages), in the three cases of issue 8, through the recording proxy.

use anyhow::{bail, ensure};
use lambda_matrix_testkit::synapse::free_port;
use lambda_matrix_testkit::{RecordingProxy, Registered};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What was lost before a start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The cache and the SDK store (session, crypto, sync position) are gone.
    Cold,
    /// The cache is gone; the SDK store is kept.
    CacheLost,
    /// Nothing lost.
    Warm,
}

/// One start, measured.
#[derive(Clone, Debug, Default)]
pub struct Startup {
    /// Process spawn to ready.
    pub seconds: f64,
    /// Requests to the homeserver before ready.
    pub requests: usize,
    /// Of which sync requests (v2 and sliding).
    pub sync_requests: usize,
    /// Whether the first sync continued from a saved position (a v2 `since`, no snapshot).
    pub resumed: bool,
    /// The reconcile step's own time (from its report).
    pub reconcile_ms: u64,
    /// Rooms catch-up read back (the others cost no request).
    pub catchup_rooms: u64,
    /// Peak resident memory at ready, KiB.
    pub peak_rss_kib: u64,
}

/// The bot's files and how to run it.
#[derive(Debug)]
pub struct BotRunner {
    pub binary: PathBuf,
    pub dir: tempfile::TempDir,
    pub homeserver: String,
    pub account: Registered,
    pub recovery_key: Option<String>,
}

impl BotRunner {
    fn db(&self) -> PathBuf {
        self.dir.path().join("lambda_matrix.db")
    }

    fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("MATRIX_HOMESERVER", &self.homeserver)
            .env("MATRIX_USER", &self.account.user_id)
            .env("MATRIX_PASSWORD", &self.account.password)
            .env("MATRIX_DB_PATH", dir.join("lambda_matrix.db"))
            .env("MATRIX_STORE_PATH", dir.join("matrix_store"))
            .env("LOG_FORMAT", "json")
            .env("MATRIX_MAX_MESSAGES_PER_MINUTE", "1000")
            .env(
                "RUST_LOG",
                "info,matrix_sdk=warn,matrix_sdk_crypto=warn,matrix_sdk_base=warn",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(key) = &self.recovery_key {
            cmd.env("MATRIX_RECOVERY_KEY", key);
        }
        // glibc's malloc arenas, read at the process's start: passed on to compare.
        if let Some(arenas) = std::env::var_os("MALLOC_ARENA_MAX") {
            cmd.env("MALLOC_ARENA_MAX", arenas);
        }
        cmd
    }

    /// Removes what `case` says is lost (the cache; the SDK store too when cold).
    pub fn lose(&self, case: Case) {
        if case != Case::Warm {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.db().display()));
            }
        }
        if case == Case::Cold {
            let _ = std::fs::remove_dir_all(self.dir.path().join("matrix_store"));
        }
    }

    /// Starts the bot after losing what `case` says, measures until ready, stops it.
    pub async fn start(&mut self, case: Case, proxy: &RecordingProxy) -> anyhow::Result<Startup> {
        self.lose(case);
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let log_path = self.dir.path().join("bench.log");
        proxy.clear();
        let started = Instant::now();
        // `BENCH_START_LOG=<filter>` keeps each start's log and its requests (with their times)
        // in ./bench-start.log (appended), e.g. `info,lambda_matrix=debug,matrix_sdk=info`.
        let keep = std::env::var("BENCH_START_LOG").ok();
        let mut command = self.command(self.dir.path());
        if let Some(filter) = &keep {
            command.env("RUST_LOG", filter);
        }
        let mut child = command
            .arg("run")
            .env("METRICS_ADDR", &metrics)
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()?;
        let ready = wait_ready(&mut child, &metrics).await;
        let seconds = started.elapsed().as_secs_f64();
        let requests = proxy.requests();
        let peak_rss_kib = peak_rss(child.id());
        if let Err(error) = ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(error.context(log_tail(&log_path)));
        }
        stop(&mut child)?;
        let syncs: Vec<_> = requests
            .iter()
            .filter(|r| r.path.ends_with("/sync"))
            .collect();
        let log = std::fs::read_to_string(&log_path)?;
        if keep.is_some() {
            keep_start_log(case, &log, &requests)?;
        }
        let field = |message: &str, name: &str| {
            log.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|l| l["message"] == message)
                .and_then(|l| l[name].as_u64())
                .unwrap_or(0)
        };
        if self.recovery_key.is_none() {
            let mut name = self.db().into_os_string();
            name.push(".recovery-key");
            // The key file explains itself in `#` lines; the key is the line that is not one.
            self.recovery_key = std::fs::read_to_string(name).ok().and_then(|text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
            });
        }
        Ok(Startup {
            seconds,
            requests: requests.len(),
            sync_requests: syncs.len(),
            resumed: syncs.first().is_some_and(|r| r.query.contains("since="))
                && syncs.iter().all(|r| !r.path.contains("msc3575")),
            reconcile_ms: field("reconcile report", "duration_ms"),
            catchup_rooms: field("catch-up report", "rooms_checked"),
            peak_rss_kib,
        })
    }

    /// Starts the bot on `homeserver` and returns once it is ready (for the message benchmarks),
    /// with the address of its `/metrics`.
    pub async fn serve(&self, homeserver: &str) -> anyhow::Result<(Child, String)> {
        self.serve_with(homeserver, &[]).await
    }

    /// [`BotRunner::serve`] with settings `envs` added.
    pub async fn serve_with(
        &self,
        homeserver: &str,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<(Child, String)> {
        let metrics = format!("127.0.0.1:{}", free_port()?);
        // `BENCH_SERVE_LOG=<filter>` keeps the serving bot's log in ./bench-serve.log (appended),
        // e.g. `lambda_matrix=debug` for the per-message timings.
        let (filter, log) = match std::env::var("BENCH_SERVE_LOG") {
            Ok(filter) => (
                filter,
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open("bench-serve.log")?,
            ),
            Err(_) => (
                "warn".to_owned(),
                std::fs::File::create(self.dir.path().join("serve.log"))?,
            ),
        };
        let mut child = self
            .command(self.dir.path())
            .env("MATRIX_HOMESERVER", homeserver)
            .envs(envs.iter().copied())
            .arg("run")
            .env("METRICS_ADDR", &metrics)
            .env("RUST_LOG", filter)
            .stderr(log)
            .spawn()?;
        wait_ready(&mut child, &metrics).await?;
        Ok((child, metrics))
    }

    /// `lambda-matrix reconcile --dry-run --json` with no cache and no SDK store: spawn to exit.
    pub fn dry_run(&self) -> anyhow::Result<(f64, u64)> {
        let empty = tempfile::tempdir()?;
        let started = Instant::now();
        let output = self
            .command(empty.path())
            .args(["reconcile", "--dry-run", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(
            output.status.success(),
            "reconcile --dry-run failed: {}",
            output.status
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        Ok((seconds, report["joined_rooms"].as_u64().unwrap_or(0)))
    }
}

/// Appends a start's log and its requests to ./bench-start.log.
fn keep_start_log(
    case: Case,
    log: &str,
    requests: &[lambda_matrix_testkit::proxy::Recorded],
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("bench-start.log")?;
    writeln!(file, "=== {case:?} start: log ===")?;
    file.write_all(log.as_bytes())?;
    writeln!(file, "=== {case:?} start: requests (at ms, took ms) ===")?;
    for r in requests {
        writeln!(
            file,
            "{:>7} {:>6} {} {} {}",
            r.at_ms, r.took_ms, r.status, r.method, r.path
        )?;
    }
    Ok(())
}

async fn wait_ready(child: &mut Child, metrics: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the bot exited during startup: {status}");
        }
        if let Ok(response) = http.get(format!("http://{metrics}/health")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "not ready within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `VmHWM` of a process, KiB (0 if unreadable).
pub fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

pub fn stop(child: &mut Child) -> anyhow::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let status = child.wait()?;
    ensure!(status.success(), "the bot did not stop cleanly: {status}");
    Ok(())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
