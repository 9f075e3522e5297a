//! Tokens and budgets per person (issue 35): a daily budget reached is told once with when it
//! resets, then each message gets a short notice while commands keep working; the totals hold
//! after a restart that lost the cache and the SDK store; the fallback model answers, marked;
//! `!usage` in both languages; a kill -9 loses at most `LAMBDA_USAGE_WRITE_EVERY` of counts.
//!
//! The mock's usage (docs/DESIGN.md): prompt tokens are the words of the message (no context,
//! no instructions here), completion tokens the words of the answer. "hi" costs 1 + 3
//! ("[C1] echo: hi") = 4 tokens.

use super::common::World;
use lambda_matrix::config::RawSettings;

fn budget(raw: &mut RawSettings) {
    raw.max_tokens_per_day = Some("8".into());
    raw.mock_models = Some("mock,small".into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_told_once_kept_on_the_server_and_the_fallback_answers_marked() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(budget)).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;

    let first = anna.send(&c1, "hi").await.expect("send");
    let answer = anna.replies_to(&c1, &first).await.expect("1")[0].clone();
    assert_eq!(answer.body, "[C1] echo: hi");
    // The answer records what it cost (C1 is encrypted: the mark is in the clear relation).
    assert_eq!(
        answer.usage,
        Some(serde_json::json!([{"model": "mock", "prompt": 1, "completion": 3}]))
    );
    assert_eq!(anna.ask(&c1, "hi").await.expect("2"), "[C1] echo: hi");
    let told = anna.ask(&c1, "hi").await.expect("3");
    let resets = format!("{} 00:00 UTC", tomorrow());
    assert!(
        told.contains("today's token budget (8 tokens)") && told.contains(&resets),
        "{told}"
    );
    let short = anna.ask(&c1, "hi").await.expect("4");
    assert!(short.starts_with("Token budget used up until"), "{short}");
    let usage = anna.ask(&c1, "!usage").await.expect("!usage");
    assert!(
        usage.contains("**Today**: 8 (budget 8)") && usage.contains("mock: 8 (2 answers)"),
        "{usage}"
    );

    bot.stop().await;
    world.lose_cache();
    world.lose_store();
    let bot = world
        .start_bot(world.settings(|raw| {
            budget(raw);
            raw.lang = Some("ru".into());
        }))
        .await;
    let usage = anna.ask(&c1, "!usage").await.expect("!usage in Russian");
    assert!(
        usage.contains("Сегодня**: 8 (лимит 8)") && usage.contains("mock: 8 (ответов: 2)"),
        "the totals came back from the server: {usage}"
    );
    let short = anna.ask(&c1, "hi").await.expect("still over");
    assert!(
        short.starts_with("Лимит токенов исчерпан до"),
        "told once only: {short}"
    );
    bot.stop().await;

    let bot = world
        .start_bot(world.settings(|raw| {
            budget(raw);
            raw.budget_fallback_model = Some("small".into());
        }))
        .await;
    let answer = anna.ask(&c1, "hi").await.expect("fallback");
    assert_eq!(
        answer,
        "[C1] echo: hi\nmodel: small\n\n*(answered by **small**: your token budget is used up)*"
    );
    let usage = anna.ask(&c1, "!usage").await.expect("!usage");
    assert!(usage.contains("small: 6 (1 answer)"), "{usage}");
    bot.stop().await;
}

/// Tomorrow's UTC day (`YYYY-MM-DD`), when today's budget resets.
fn tomorrow() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let midnight = (now / 86_400 + 1) * 86_400;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(midnight);
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}

/// Kills the bot's process (SIGKILL) and waits for it.
fn kill(mut child: std::process::Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_loses_at_most_what_was_not_written_yet() {
    let world = World::new().await;
    let anna = world.person("anna").await;
    // Written every second: a kill after two seconds loses nothing.
    let child = world
        .binary()
        .arg("run")
        .env("LAMBDA_USAGE_WRITE_EVERY", "1s")
        .spawn()
        .expect("spawn");
    let c1 = world.first_contact(&anna, false).await.c1;
    assert_eq!(anna.ask(&c1, "hi").await.expect("answer"), "[C1] echo: hi");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    kill(child);
    // Written every hour: a kill loses what came since the last write.
    let child = world
        .binary()
        .arg("run")
        .env("LAMBDA_USAGE_WRITE_EVERY", "1h")
        .spawn()
        .expect("spawn");
    assert_eq!(anna.ask(&c1, "hi").await.expect("answer"), "[C1] echo: hi");
    kill(child);
    let bot = world.start_bot(world.settings(|_| {})).await;
    let usage = anna.ask(&c1, "!usage").await.expect("!usage");
    assert!(
        usage.contains("**Today**: 4 (no budget)") && usage.contains("mock: 4 (1 answer)"),
        "the first answer's usage was kept, the second's lost with the kill: {usage}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lifts_a_budget_while_the_bot_runs_and_reads_everyones_usage() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(budget)).await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    for _ in 0..2 {
        assert_eq!(anna.ask(&c1, "hi").await.expect("answer"), "[C1] echo: hi");
    }
    let told = anna.ask(&c1, "hi").await.expect("over");
    assert!(told.contains("token budget"), "{told}");

    // The bot holds the store: `usage` refuses, `lift-budget` works beside it.
    let refused = world.binary().arg("usage").output().expect("usage");
    assert!(
        !refused.status.success(),
        "usage refuses while the bot runs"
    );
    let lifted = world
        .binary()
        .args(["lift-budget", anna.user_id().as_str()])
        .output()
        .expect("lift-budget");
    let said = String::from_utf8_lossy(&lifted.stdout);
    assert!(
        lifted.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&lifted.stderr)
    );
    assert!(said.contains("lifted for"), "{said}");
    anna.until("the lift seen by the bot", || async {
        let answer = anna.ask(&c1, "hi").await.ok()?;
        (answer == "[C1] echo: hi").then_some(())
    })
    .await
    .expect("answered again today");
    bot.stop().await;

    let report = world
        .binary()
        .args(["usage", "--json"])
        .output()
        .expect("usage");
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let people: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(people[0]["person"], anna.user_id().as_str());
    let today = people[0]["today"]["mock"].as_u64().expect("mock tokens");
    assert!(today >= 12, "three answers of 4 tokens at least: {people}");
}
