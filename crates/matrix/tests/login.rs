//! Against a real Synapse behind the recording proxy: the bot logs in once, saves its session
//! privately, and a restart restores the same device without logging in again.

use lambda_matrix::config::{RawSettings, Settings};
use lambda_matrix_testkit::{RecordingProxy, Synapse};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;

fn settings(proxy: &RecordingProxy, dir: &Path, password: Option<&str>) -> Settings {
    Settings::from_raw(RawSettings {
        homeserver: Some(proxy.url()),
        user: Some("@lambda:localhost".into()),
        password: password.map(str::to_owned),
        db_path: Some(dir.join("lambda_matrix.db").display().to_string()),
        store_path: Some(dir.join("matrix_store").display().to_string()),
        ..RawSettings::default()
    })
    .expect("valid settings")
}

/// Starts `run`, waits until the proxy saw a sync after the initial one, then stops it.
async fn run_until_syncing(settings: Settings, proxy: &RecordingProxy) {
    let (stop, stopped) = oneshot::channel::<()>();
    let bot = tokio::spawn(lambda_matrix::run(settings, async {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Serving (its live long-poll in flight): a stop before would end the start mid-request,
    // and that request could still be recorded after the caller clears the proxy.
    while !proxy
        .syncs()
        .iter()
        .any(|r| r.query.contains("timeout=30000"))
    {
        assert!(!bot.is_finished(), "the bot stopped early: {:?}", bot.await);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sync seen: {:?}",
            proxy.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(10), bot)
        .await
        .expect("the bot stops promptly on shutdown")
        .expect("the bot task does not panic");
    result.expect("the bot ran without error");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_once_and_a_restart_keeps_the_device() {
    let synapse = Synapse::start().await.expect("synapse");
    let bot = synapse.register("lambda").await.expect("register bot");
    let proxy = RecordingProxy::start(&synapse.url()).await.expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let devices_before = synapse.devices(&bot.user_id).await.expect("devices");

    run_until_syncing(settings(&proxy, dir.path(), Some(&bot.password)), &proxy).await;
    let logins = proxy.matching("POST", "/login");
    assert_eq!(logins.len(), 1, "one login: {:?}", proxy.requests());
    assert_eq!(logins[0].status, 200);
    let session = dir.path().join("matrix_store/session.json");
    assert_eq!(mode(&session), 0o600, "the session file is private");
    assert_eq!(
        mode(&dir.path().join("lambda_matrix.db")),
        0o600,
        "the cache is private"
    );
    let saved = std::fs::read_to_string(&session).expect("session saved");
    let devices_after = synapse.devices(&bot.user_id).await.expect("devices");
    assert_eq!(
        devices_after.len(),
        devices_before.len() + 1,
        "one new device"
    );
    let new_device = devices_after
        .iter()
        .find(|d| !devices_before.contains(d))
        .expect("the bot's device")
        .clone();
    assert!(
        saved.contains(&new_device),
        "the saved session is for the new device"
    );

    // Restart without the password: the saved session is enough, and no login happens.
    proxy.clear();
    run_until_syncing(settings(&proxy, dir.path(), None), &proxy).await;
    assert!(
        proxy.matching("POST", "/login").is_empty(),
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        synapse.devices(&bot.user_id).await.expect("devices"),
        devices_after
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_means_a_fresh_login_not_a_broken_device() {
    let synapse = Synapse::start().await.expect("synapse");
    let bot = synapse.register("lambda").await.expect("register bot");
    let proxy = RecordingProxy::start(&synapse.url()).await.expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    run_until_syncing(settings(&proxy, dir.path(), Some(&bot.password)), &proxy).await;

    // The SDK's databases are lost, the session file survives: restoring it would pair an old
    // device id with a new crypto account. The bot logs in again instead.
    for entry in std::fs::read_dir(dir.path().join("matrix_store")).expect("ls") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("matrix-sdk-"))
        {
            std::fs::remove_file(path).expect("remove");
        }
    }
    proxy.clear();
    run_until_syncing(settings(&proxy, dir.path(), Some(&bot.password)), &proxy).await;
    assert_eq!(
        proxy.matching("POST", "/login").len(),
        1,
        "{:?}",
        proxy.requests()
    );
    // Uploads still in flight (status 0) are waited for, not judged.
    let mut uploads = proxy.matching("POST", "/keys/upload");
    for _ in 0..100 {
        if uploads.iter().all(|r| r.status != 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        uploads = proxy.matching("POST", "/keys/upload");
    }
    assert!(!uploads.is_empty(), "the new device uploads its keys");
    assert!(
        uploads.iter().all(|r| r.status == 200),
        "no key-upload errors: {uploads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error() {
    let synapse = Synapse::start().await.expect("synapse");
    synapse.register("lambda").await.expect("register bot");
    let proxy = RecordingProxy::start(&synapse.url()).await.expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = lambda_matrix::run(
        settings(&proxy, dir.path(), Some("wrong")),
        std::future::pending(),
    )
    .await
    .expect_err("login must fail");
    let message = format!("{err:#}");
    assert!(
        message.contains("login as @lambda:localhost failed"),
        "{message}"
    );
    assert!(
        !message.contains("wrong"),
        "the password is not echoed: {message}"
    );
    assert!(!dir.path().join("matrix_store/session.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_even_at_trace_level() {
    let synapse = Synapse::start().await.expect("synapse");
    let bot = synapse.register("lambda").await.expect("register bot");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |filter: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lambda-matrix"))
            .args(["reconcile", "--json"])
            .env_clear()
            .env("MATRIX_HOMESERVER", synapse.url())
            .env("MATRIX_USER", &bot.user_id)
            .env("MATRIX_PASSWORD", &bot.password)
            .env("MATRIX_DB_PATH", dir.path().join("lambda_matrix.db"))
            .env("MATRIX_STORE_PATH", dir.path().join("matrix_store"))
            .env("RUST_LOG", filter)
            .env("LOG_FORMAT", "json")
            .output()
            .expect("runs")
    };
    // A one-shot logs in (password) and out (token) at trace level: both secrets are in play.
    let out = run("trace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = String::from_utf8_lossy(&out.stderr).to_string();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        logs.lines().count() > 50,
        "trace logging is on: {} lines",
        logs.lines().count()
    );
    assert!(
        logs.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "LOG_FORMAT=json: one object per line"
    );
    for (name, secret) in [
        ("password", bot.password.as_str()),
        ("registration token", bot.access_token.as_str()),
    ] {
        assert!(
            !logs.contains(secret) && !report.contains(secret),
            "the {name} leaked"
        );
    }
    // The bot's own access token: from a run that keeps its session, then read from the file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-matrix"))
        .arg("run")
        .env_clear()
        .env("MATRIX_HOMESERVER", synapse.url())
        .env("MATRIX_USER", &bot.user_id)
        .env("MATRIX_PASSWORD", &bot.password)
        .env("MATRIX_DB_PATH", dir.path().join("lambda_matrix.db"))
        .env("MATRIX_STORE_PATH", dir.path().join("matrix_store"))
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(dir.path().join("run.log")).expect("log file"),
        ))
        .spawn()
        .expect("runs");
    let session = dir.path().join("matrix_store/session.json");
    let key_file = dir.path().join("lambda_matrix.db.recovery-key");
    // Wait until the bot has logged in and set up its identity (the key file is written after
    // the initial sync), however slow the machine; then let it run a moment longer.
    for _ in 0..600 {
        if session.exists() && key_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut child = out;
    let _ = child.kill();
    let _ = child.wait();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&session).expect("session")).expect("json");
    let token = saved["session"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let logs = std::fs::read_to_string(dir.path().join("run.log")).expect("logs");
    assert!(!logs.is_empty());
    assert!(!logs.contains(&token), "the access token leaked");
    let key = std::fs::read_to_string(&key_file).expect("the recovery key went to its file");
    let key = key.lines().last().expect("key line");
    assert!(!logs.contains(key), "the recovery key leaked");
    assert!(
        logs.contains("lambda_matrix.db.recovery-key"),
        "the log says where the key is"
    );
    assert!(!logs.contains(&bot.password), "the password leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_the_homeserver_knows_in_other_case_stops_before_any_room_is_read() {
    let synapse = Synapse::start().await.expect("synapse");
    let bot = synapse.register("lambda").await.expect("register bot");
    let proxy = RecordingProxy::start(&synapse.url()).await.expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let devices_before = synapse.devices(&bot.user_id).await.expect("devices");
    // Synapse matches a login's localpart without regard to case: `@Lambda` logs in as `@lambda`.
    let miscased = |password: Option<&str>| {
        let mut settings = settings(&proxy, dir.path(), password);
        settings.identity.user_id = "@Lambda:localhost".try_into().expect("a user id");
        settings
    };
    let stopped = |settings: Settings| async {
        let run = lambda_matrix::run(settings, std::future::pending());
        let outcome = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the bot stops by itself");
        format!("{:#}", outcome.expect_err("the bot refuses to run"))
    };
    let touched_rooms = |proxy: &RecordingProxy| -> Vec<String> {
        proxy
            .requests()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .filter(|r| {
                [
                    "/sync",
                    "/rooms/",
                    "/createRoom",
                    "/join",
                    "/device_signing/upload",
                ]
                .iter()
                .any(|p| r.contains(p))
            })
            .collect()
    };

    let message = stopped(miscased(Some(&bot.password))).await;
    assert!(
        message.contains("MATRIX_USER is @Lambda:localhost")
            && message.contains("@lambda:localhost"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(
        !proxy.matching("GET", "/account/whoami").is_empty(),
        "the homeserver was asked"
    );
    assert_eq!(
        touched_rooms(&proxy),
        Vec::<String>::new(),
        "no room read, no identity made"
    );
    assert_eq!(
        proxy.matching("POST", "/logout").len(),
        1,
        "the new device is logged out"
    );
    assert_eq!(
        synapse.devices(&bot.user_id).await.expect("devices"),
        devices_before,
        "no device left behind"
    );
    assert!(!dir.path().join("matrix_store/session.json").exists());

    // With a session saved by a correct run, the wrong case stops before anything is thrown away.
    run_until_syncing(settings(&proxy, dir.path(), Some(&bot.password)), &proxy).await;
    let session = dir.path().join("matrix_store/session.json");
    let saved = std::fs::read_to_string(&session).expect("saved");
    proxy.clear();
    let message = stopped(miscased(Some(&bot.password))).await;
    assert!(message.contains("@Lambda:localhost"), "{message}");
    assert_eq!(touched_rooms(&proxy), Vec::<String>::new());
    assert!(proxy.matching("POST", "/login").is_empty());
    assert_eq!(std::fs::read_to_string(&session).expect("kept"), saved);
    proxy.clear();
    run_until_syncing(settings(&proxy, dir.path(), None), &proxy).await;
    assert!(
        proxy.matching("POST", "/login").is_empty(),
        "restored as before"
    );
}
