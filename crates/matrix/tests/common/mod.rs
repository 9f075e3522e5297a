//! Shared set-up for end-to-end tests: a Synapse, a recording proxy, the bot's account, and the
//! bot itself running in this process through its library `run`.
#![allow(dead_code)] // each test binary uses part of this

use lambda_matrix::config::{RawSettings, Settings};
use lambda_matrix_testkit::{Person, RecordingProxy, Registered, Synapse};
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

/// The bot running in this process.
pub struct RunningBot {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl World {
    pub async fn new() -> World {
        if let Ok(filter) = std::env::var("LM_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let synapse = Synapse::start().await.expect("synapse starts");
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

    /// Starts the bot and waits until it is serving (its first long-poll sync is in flight).
    pub async fn start_bot(&self, settings: Settings) -> RunningBot {
        let before = self.proxy.matching("GET", "/sync").len();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(lambda_matrix::run(settings, async {
            let _ = stopped.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.proxy.matching("GET", "/sync").len() < before + 2 {
            assert!(
                !task.is_finished(),
                "the bot stopped early: {:?}",
                task.await
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bot did not start syncing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        RunningBot {
            stop: Some(stop),
            task,
        }
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
