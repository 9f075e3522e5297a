//! Shared set-up for end-to-end tests: a Synapse, a recording proxy, the bot's account, and the
//! bot itself running in this process through its library `run`.
#![allow(dead_code)] // each test binary uses part of this

use lambda_matrix::config::{RawSettings, Settings};
use lambda_matrix_testkit::{Person, RecordingProxy, Registered, Synapse};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A homeserver with the bot's account, a proxy in front, and a folder for the bot's files.
pub struct World {
    pub synapse: Synapse,
    pub proxy: RecordingProxy,
    pub bot_account: Registered,
    pub dir: tempfile::TempDir,
}

/// What first contact gave a person.
pub struct Provisioned {
    /// The direct chat with the bot.
    pub dm: String,
    /// The person's Space.
    pub space: String,
    /// Chat room C1.
    pub c1: String,
}

/// The bot running in this process.
pub struct RunningBot {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl World {
    pub async fn new() -> World {
        Self::on(Synapse::start().await.expect("synapse starts")).await
    }

    /// A world on a given homeserver.
    pub async fn on(synapse: Synapse) -> World {
        if let Ok(filter) = std::env::var("LM_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let bot_account = synapse.register("lambda").await.expect("register the bot");
        let proxy = RecordingProxy::start(&synapse.url())
            .await
            .expect("proxy starts");
        World {
            synapse,
            proxy,
            bot_account,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Settings for the bot, with `edit` applied.
    pub fn settings(&self, edit: impl FnOnce(&mut RawSettings)) -> Settings {
        let mut raw = RawSettings {
            homeserver: Some(self.proxy.url()),
            user: Some(self.bot_account.user_id.clone()),
            password: Some(self.bot_account.password.clone()),
            db_path: Some(
                self.dir
                    .path()
                    .join("lambda_matrix.db")
                    .display()
                    .to_string(),
            ),
            store_path: Some(self.dir.path().join("matrix_store").display().to_string()),
            ..RawSettings::default()
        };
        edit(&mut raw);
        Settings::from_raw(raw).expect("valid settings")
    }

    /// Starts the bot and waits until it is serving (its first live long-poll is in flight).
    pub async fn start_bot(&self, settings: Settings) -> RunningBot {
        let platform = lambda_matrix::app::platform(&settings)
            .await
            .expect("platform");
        self.start_bot_with(settings, platform).await
    }

    /// [`World::start_bot`] with a given platform.
    pub async fn start_bot_with(
        &self,
        settings: Settings,
        platform: std::sync::Arc<dyn lambda_matrix_platform::Platform>,
    ) -> RunningBot {
        let before = self.proxy.syncs().len();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(lambda_matrix::run_with_platform(
            settings,
            platform,
            async {
                let _ = stopped.await;
            },
        ));
        if !self.serving(before, || !task.is_finished()).await {
            panic!("the bot stopped early: {:?}", task.await);
        }
        RunningBot {
            stop: Some(stop),
            task,
        }
    }

    /// Waits (at most 60 s) until a bot started when the proxy had seen `before` syncs is
    /// serving: its first live long-poll is in flight. `false` as soon as `running` says the bot
    /// has stopped.
    pub async fn serving(&self, before: usize, mut running: impl FnMut() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let syncs = self.proxy.syncs();
            if syncs[before.min(syncs.len())..]
                .iter()
                .any(|r| r.query.contains("timeout=30000"))
            {
                return true;
            }
            if !running() {
                return false;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bot did not start syncing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// First contact: `person` opens a direct chat with the bot (encrypted or not), then joins
    /// the Space and C1 the bot invites them to.
    pub async fn first_contact(&self, person: &Person, encrypted: bool) -> Provisioned {
        let dm = person
            .create_dm(&self.bot_account.user_id, encrypted)
            .await
            .expect("dm")
            .to_string();
        let invited = person
            .accept_invites(2)
            .await
            .expect("invited to the space and C1");
        let is_space = |id: &str| person.room(id).expect("room").is_space();
        let space = invited
            .iter()
            .find(|id| is_space(id.as_str()))
            .expect("a space")
            .to_string();
        let c1 = invited
            .iter()
            .find(|id| !is_space(id.as_str()))
            .expect("a chat room")
            .to_string();
        Provisioned { dm, space, c1 }
    }

    /// The `lambda-matrix` binary, set up like the in-process bot (proxy, account, files),
    /// with warnings-only logs and no standard input.
    pub fn binary(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-matrix"));
        cmd.env_clear()
            .env("MATRIX_HOMESERVER", self.proxy.url())
            .env("MATRIX_USER", &self.bot_account.user_id)
            .env("MATRIX_PASSWORD", &self.bot_account.password)
            .env("MATRIX_DB_PATH", self.dir.path().join("lambda_matrix.db"))
            .env("MATRIX_STORE_PATH", self.dir.path().join("matrix_store"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    /// The binary running `run` with one crash point armed (its output discarded).
    pub fn armed(&self, point: &str) -> Child {
        self.binary()
            .arg("run")
            .env("FAILPOINTS", format!("{point}=return"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    }

    /// The bot's devices on the homeserver, sorted.
    pub async fn bot_devices(&self) -> Vec<String> {
        let mut devices = self
            .synapse
            .devices(&self.bot_account.user_id)
            .await
            .expect("devices");
        devices.sort();
        devices
    }

    /// Deletes the bot's cache (with `-wal`/`-shm`), as a lost file would.
    pub fn lose_cache(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!(
                "{}{suffix}",
                self.dir.path().join("lambda_matrix.db").display()
            ));
        }
    }

    /// Deletes the bot's SDK store (session included).
    pub fn lose_store(&self) {
        std::fs::remove_dir_all(self.dir.path().join("matrix_store")).expect("remove the store");
    }

    /// Waits (as `person`'s helpers wait) until the homeserver no longer lists the bot among
    /// `room`'s members.
    pub async fn until_the_bot_left(&self, person: &Person, room: &str) {
        let bot = self.bot_account.user_id.clone();
        person
            .until("the bot to leave", || async {
                let members = self
                    .synapse
                    .admin_get(&format!("/_synapse/admin/v1/rooms/{room}/members"))
                    .await
                    .ok()?;
                let joined = members["members"]
                    .as_array()?
                    .iter()
                    .any(|m| m.as_str() == Some(bot.as_str()));
                (!joined).then_some(())
            })
            .await
            .expect("the bot left");
    }

    /// Registers a person and logs them in (directly, not through the proxy).
    pub async fn person(&self, localpart: &str) -> Person {
        let account = self
            .synapse
            .register(localpart)
            .await
            .expect("register person");
        Person::login(&self.synapse.url(), &account)
            .await
            .expect("person logs in")
    }
}

impl RunningBot {
    /// Stops the bot and waits for it to finish cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("the bot stops promptly")
            .expect("the bot task does not panic");
        result.expect("the bot ran without error");
    }
}

/// Waits for an armed bot ([`World::armed`]) to exit at its crash point (code 137).
pub async fn crashed(mut child: Child) {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert_eq!(status.code(), Some(137), "the crash point fired");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!("the crash point never fired");
}

/// Waits until `person` sees the bot typing in `room` (it is working on an answer).
pub async fn bot_typing(person: &Person, room: &str, bot: &str) {
    person
        .until("the bot typing", || async {
            let typing = person.typing(room).await.ok()?;
            typing.iter().any(|t| t == bot).then_some(())
        })
        .await
        .expect("the bot is working on it");
}
