//! `lambda-matrix check` (issue 33, point 3): one line per part with what to do, `--json`,
//! a non-zero exit when something blocks a start, and nothing written anywhere — no file, no
//! login, no request that changes the server.

use super::common::World;
use lambda_matrix_platform::fake_openai::{FakeOpenAi, FakeOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::SystemTime;

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                let modified = meta.modified().expect("mtime");
                files.insert(entry.path().display().to_string(), (meta.len(), modified));
            }
        }
    }
    files
}

/// Runs `check --json` (with `extra` env) and returns its exit code and report.
fn check(world: &World, extra: &[(&str, &str)]) -> (Option<i32>, serde_json::Value, Output) {
    let mut command = world.binary();
    command.args(["check", "--json"]);
    for (key, value) in extra {
        command.env(key, value);
    }
    let output = command.output().expect("check runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report, output)
}

/// The requests through the proxy that could change the server.
fn writes_made(world: &World) -> Vec<lambda_matrix_testkit::Recorded> {
    world
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect()
}

/// The item `name` of a report: its status and detail.
fn item(report: &serde_json::Value, name: &str) -> (String, String) {
    let item = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"));
    (
        item["status"].as_str().unwrap_or_default().to_owned(),
        item["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_what_blocks_a_start_and_writes_nothing() {
    let world = World::new().await;
    // Before any start: a password is enough, nothing is created, the server is only read.
    let before = snapshot(world.dir.path());
    let (code, report, _) = check(&world, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        report["items"].as_array().map(Vec::len),
        Some(7),
        "{report}"
    );
    assert!(
        item(&report, "identity").1.contains("no saved session"),
        "{report}"
    );
    assert_eq!(snapshot(world.dir.path()), before, "nothing written");
    let writes = writes_made(&world);
    assert!(writes.is_empty(), "no login, no write: {writes:?}");
    let (code, report, _) = check(&world, &[("MATRIX_PASSWORD", "")]);
    assert_eq!(
        code,
        Some(1),
        "nothing to log in with blocks a start: {report}"
    );
    assert_eq!(item(&report, "identity").0, "fail");

    // After a start: the session, the store, the encryption identity, all read back.
    let settings = world.settings(|_| {});
    world.start_bot(settings.clone()).await.stop().await;
    let before = snapshot(world.dir.path());
    world.proxy.clear();
    let (code, report, output) = check(&world, &[]);
    assert_eq!(code, Some(0), "{report}");
    let device = lambda_matrix::session::saved_device(&settings).expect("device");
    assert!(item(&report, "identity").1.contains(&device), "{report}");
    let (status, detail) = item(&report, "encryption");
    assert!(
        detail.contains("this device is cross-signed") && detail.contains("key backup on"),
        "{report}"
    );
    assert_eq!(
        status, "warn",
        "the recovery key is still only in its file: {report}"
    );
    let (status, detail) = item(&report, "cache");
    assert!(
        status == "ok" && detail.contains("0 people, 0 rooms"),
        "{detail}"
    );
    assert_eq!(snapshot(world.dir.path()), before, "nothing written");
    let writes = writes_made(&world);
    assert!(writes.is_empty(), "no write: {writes:?}");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(&world.bot_account.password),
        "no secret in the output"
    );
    let text = world.binary().arg("check").output().expect("check");
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.lines().count(),
        8,
        "a summary and one line per item: {text}"
    );

    // While the bot runs, a second start would be refused.
    let bot = world.start_bot(settings).await;
    let (code, report, _) = check(&world, &[]);
    assert_eq!(code, Some(1), "{report}");
    let (status, detail) = item(&report, "store");
    assert_eq!(status, "fail");
    assert!(
        detail.contains(&format!("pid {}", std::process::id())),
        "{detail}"
    );
    bot.stop().await;

    // A model the server does not serve blocks a start; a missing transcription model warns.
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let url = fake.url();
    let openai = [
        ("LAMBDA_PLATFORM", "openai"),
        ("LAMBDA_OPENAI_BASE_URL", url.as_str()),
    ];
    let (code, report, _) = check(
        &world,
        &[openai[0], openai[1], ("LAMBDA_OPENAI_MODEL", "gpt-x")],
    );
    assert_eq!(code, Some(1), "{report}");
    let (status, detail) = item(&report, "platform");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("gpt-x") && detail.contains("fake-model"),
        "{detail}"
    );
    let (code, report, _) = check(
        &world,
        &[openai[0], openai[1], ("LAMBDA_OPENAI_MODEL", "fake-model")],
    );
    assert_eq!(code, Some(0), "{report}");
    let (status, detail) = item(&report, "platform");
    assert_eq!(status, "warn", "whisper-1 is not served: {detail}");

    // Settings that cannot be read: exit code 2, and still a report.
    let (code, report, _) = check(&world, &[("MATRIX_USER", "not-a-user-id")]);
    assert_eq!(code, Some(2));
    let (status, detail) = item(&report, "settings");
    assert_eq!(status, "fail");
    assert!(detail.contains("MATRIX_USER"), "{detail}");
}
