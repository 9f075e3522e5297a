//! Quiet logs (issue 33, point 4): at the default level, a first start, ordinary traffic
//! (messages, commands, an encrypted chat), a stop and a restart print no ERROR line and a
//! WARN line only where the operator must act (the new recovery key to store), and every line
//! is the bot's own: no SDK line for each long-poll.

use super::common::World;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

/// The bot binary with the default log filter, as JSON lines, collected into `lines`.
fn start(world: &World, lines: &Arc<Mutex<Vec<String>>>) -> Child {
    let mut child = world
        .binary()
        .arg("run")
        .env("RUST_LOG", lambda_matrix::config::DEFAULT_LOG_FILTER)
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bot starts");
    let pipe = child.stderr.take().expect("stderr");
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().expect("lines").push(line);
        }
    });
    child
}

/// Stops the bot with SIGTERM and waits for a clean exit.
fn stop(mut child: Child) {
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert!(child.wait().expect("exit").success(), "a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_life_logs_no_error_and_only_the_warning_to_act_on() {
    let world = World::new().await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let before = world.proxy.syncs().len();
    let mut bot = start(&world, &lines);
    assert!(
        world
            .serving(before, || matches!(bot.try_wait(), Ok(None)))
            .await
    );
    let anna = world.person("anna").await;
    let provisioned = world.first_contact(&anna, true).await;
    let c1 = provisioned.c1;
    assert_eq!(
        anna.ask(&c1, "hello").await.expect("answer"),
        "[C1] echo: hello"
    );
    assert!(anna
        .ask(&provisioned.dm, "!chats")
        .await
        .expect("chats")
        .contains("C1"));
    assert!(anna
        .ask(&provisioned.dm, "!new Notes")
        .await
        .expect("new")
        .contains("C2"));
    anna.accept_invites(1).await.expect("C2");
    stop(bot);

    let before = world.proxy.syncs().len();
    let mut bot = start(&world, &lines);
    assert!(
        world
            .serving(before, || matches!(bot.try_wait(), Ok(None)))
            .await
    );
    assert_eq!(
        anna.ask(&c1, "again").await.expect("answer"),
        "[C1] echo: again"
    );
    stop(bot);

    let lines = lines.lock().expect("lines").clone();
    let mut unexpected = Vec::new();
    let mut recovery_warnings = 0;
    for line in &lines {
        let json: serde_json::Value = match serde_json::from_str(line) {
            Ok(json) => json,
            Err(_) => {
                unexpected.push(format!("not a JSON line: {line}"));
                continue;
            }
        };
        let level = json["level"].as_str().unwrap_or_default();
        let target = json["target"].as_str().unwrap_or_default();
        let message = json["message"].as_str().unwrap_or_default();
        if !target.starts_with("lambda_matrix") {
            unexpected.push(format!("not the bot's own line: {line}"));
        } else if level == "ERROR" {
            unexpected.push(format!("an ERROR: {line}"));
        } else if level == "WARN" {
            if message.contains("recovery key") {
                recovery_warnings += 1;
            } else {
                unexpected.push(format!("a WARN with nothing to act on: {line}"));
            }
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
    assert_eq!(recovery_warnings, 1, "the new recovery key, once");
}
