//! The demo (`scripts/demo`): a scripted person walks through the bot's everyday job against a
//! local Synapse, then the bot loses its cache and shows it recovers with no room created.
//! Prints a short transcript; exits non-zero if any step fails.
//!
//! Usage: cargo run -p lambda-matrix-testkit --example demo -- path/to/lambda-matrix

use anyhow::{bail, ensure, Context};
use lambda_matrix_testkit::synapse::free_port;
use lambda_matrix_testkit::{Person, Registered, Synapse};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Bot {
    binary: PathBuf,
    dir: tempfile::TempDir,
    homeserver: String,
    account: Registered,
    metrics: String,
}

impl Bot {
    fn start(&self, log: &str) -> anyhow::Result<Child> {
        let log = std::fs::File::create(self.dir.path().join(log))?;
        Ok(Command::new(&self.binary)
            .arg("run")
            .env_clear()
            .env("MATRIX_HOMESERVER", &self.homeserver)
            .env("MATRIX_USER", &self.account.user_id)
            .env("MATRIX_PASSWORD", &self.account.password)
            .env("MATRIX_DB_PATH", self.db())
            .env("MATRIX_STORE_PATH", self.dir.path().join("matrix_store"))
            .env("METRICS_ADDR", &self.metrics)
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                "info,matrix_sdk=warn,matrix_sdk_crypto=warn,matrix_sdk_base=warn",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("lambda_matrix.db")
    }

    async fn wait_ready(&self, child: &mut Child) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the bot exited during startup: {status}");
            }
            if let Ok(response) = reqwest::get(format!("http://{}/health", self.metrics)).await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "the bot was not ready within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn stop(child: &mut Child) -> anyhow::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let status = child.wait()?;
    ensure!(status.success(), "the bot did not stop cleanly: {status}");
    Ok(())
}

fn say(who: &str, text: &str) {
    for (i, line) in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(8)
        .enumerate()
    {
        eprintln!("  {:>5} │ {line}", if i == 0 { who } else { "" });
    }
}

async fn ask(anna: &Person, room: &str, text: &str) -> anyhow::Result<String> {
    say("anna", text);
    let answer = anna.ask(room, text).await?;
    say("bot", &answer);
    Ok(answer)
}

fn reconcile_report(log: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(log)?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "reconcile report")
        .context("no reconcile report in the log")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: demo path/to/lambda-matrix")?,
    );
    eprintln!("lambda-matrix demo\n\n1. a local Synapse, the bot, and a person (anna) with a real Matrix client");
    let synapse = Synapse::start().await?;
    let bot = Bot {
        binary,
        dir: tempfile::tempdir()?,
        homeserver: synapse.url(),
        account: synapse.register("lambda").await?,
        metrics: format!("127.0.0.1:{}", free_port()?),
    };
    let mut process = bot.start("run-1.log")?;
    bot.wait_ready(&mut process).await?;
    let anna = Person::login(&synapse.url(), &synapse.register("anna").await?).await?;

    eprintln!("\n2. first contact: anna opens a direct chat with the bot");
    let dm = anna
        .create_dm(&bot.account.user_id, true)
        .await?
        .to_string();
    let invited = anna.accept_invites(2).await?;
    let c1 = invited
        .iter()
        .find(|id| anna.room(id.as_str()).is_ok_and(|r| !r.is_space()))
        .context("no C1")?
        .to_string();
    let welcome = anna
        .until("the welcome", || async {
            anna.messages(&dm)
                .await
                .ok()?
                .into_iter()
                .find(|m| m.sender == bot.account.user_id && m.msgtype != "m.room.encrypted")
        })
        .await?;
    say("bot", &welcome.body);
    eprintln!("        (anna joined her new Space and chat room C1)");

    eprintln!("\n3. everyday use");
    ensure!(
        ask(&anna, &c1, "Hello there!").await? == "[C1] echo: Hello there!",
        "no echo from the mock platform"
    );
    ensure!(
        ask(&anna, &dm, "!new Trip to Riga").await?.contains("C2"),
        "!new did not make C2"
    );
    let c2 = anna.accept_invites(1).await?[0].to_string();
    ensure!(
        ask(&anna, &c2, "Pack the umbrella").await?.contains("[C2]"),
        "C2 does not answer"
    );
    ensure!(
        ask(&anna, &dm, "!rename C1 Daily notes")
            .await?
            .contains("Daily notes"),
        "!rename failed"
    );
    ensure!(
        ask(&anna, &dm, "!archive C2").await?.contains("C2"),
        "!archive failed"
    );
    ensure!(
        ask(&anna, &dm, "!chats").await?.contains("archived"),
        "!chats does not show the archive"
    );

    eprintln!("\n4. the bot stops and its database is deleted");
    stop(&mut process)?;
    let rooms_before = synapse.room_count().await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", bot.db().display()));
    }
    eprintln!(
        "        (deleted {}; {rooms_before} rooms on the homeserver)",
        bot.db().display()
    );

    eprintln!("\n5. restart: the cache is rebuilt from the homeserver");
    let mut process = bot.start("run-2.log")?;
    bot.wait_ready(&mut process).await?;
    let report = reconcile_report(&bot.dir.path().join("run-2.log"))?;
    eprintln!(
        "        reconcile report: {} joined rooms; restored {} people, {} rooms, {} chats; {} repaired; {} ms",
        report["joined_rooms"], report["restored_user_meta"], report["restored_room_meta"], report["restored_chat_rows"], report["repaired"], report["duration_ms"]
    );
    ensure!(
        report["restored_chat_rows"] == 2,
        "expected both chats restored: {report}"
    );

    eprintln!("\n6. everything works in the recovered rooms");
    ensure!(
        ask(&anna, &c1, "!rename Notes").await?.contains("Notes"),
        "!rename after recovery failed"
    );
    ensure!(
        ask(&anna, &c1, "Still there?").await? == "[C1] echo: Still there?",
        "no answer after recovery"
    );
    ensure!(
        ask(&anna, &dm, "!unarchive C2").await?.contains("C2"),
        "!unarchive after recovery failed"
    );
    let rooms_after = synapse.room_count().await?;
    ensure!(
        rooms_after == rooms_before,
        "rooms were created during recovery: {rooms_before} -> {rooms_after}"
    );
    eprintln!("        ({rooms_after} rooms on the homeserver: none created)");
    stop(&mut process)?;
    eprintln!("\ndemo passed");
    Ok(())
}
