//! `/metrics` and `/health` on METRICS_ADDR, scraped while the bot works.

mod common;

use common::World;
use lambda_matrix_testkit::synapse::free_port;

async fn get(url: &str) -> (u16, String) {
    let response = matrix_sdk::reqwest::get(url).await.expect("scrape");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_follow_what_the_bot_does() {
    // As the binary does: each job's requests to the homeserver are timed.
    lambda_matrix::logging::init_waits_only().expect("the only subscriber");
    let world = World::new().await;
    let addr = format!("127.0.0.1:{}", free_port().expect("port"));
    let bot = world
        .start_bot(world.settings(|raw| {
            raw.metrics_addr = Some(addr.clone());
            raw.mock_delay = Some("300ms".into());
        }))
        .await;
    let (status, body) = get(&format!("http://{addr}/health")).await;
    assert_eq!((status, body.trim()), (200, "ready"), "ready once serving");

    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    assert_eq!(
        anna.ask(&p.c1, "count me").await.expect("answer"),
        "[C1] echo: count me"
    );
    assert_eq!(
        anna.ask(&p.c1, "and me").await.expect("answer"),
        "[C1] echo: and me"
    );
    assert!(anna
        .ask(&p.dm, "!chats")
        .await
        .expect("chats")
        .contains("C1"));

    let (status, text) = get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("lambda_matrix_messages_answered_total 2"),
        "{text}"
    );
    assert!(text.contains("lambda_matrix_commands_total 1"), "{text}");
    assert!(
        text.contains("lambda_matrix_platform_latency_seconds_count 2"),
        "{text}"
    );
    assert!(text.contains("lambda_matrix_ready 1"), "{text}");
    // The answers' stages, one each per answer (the command is not an answer); the platform's
    // is the mock's. The second answer waited in no queue: its room's worker was idle (a time
    // from when the room's first job was queued would be over the first answer's 300 ms).
    let stage = |what: &str, stage: &str| -> f64 {
        let prefix = format!("lambda_matrix_answer_stage_seconds_{what}{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix}in {text}"))
    };
    for name in lambda_matrix_testkit::ANSWER_STAGES {
        assert_eq!(stage("count", name), 2.0, "{name}: {text}");
    }
    assert!(stage("sum", "platform") >= 0.6, "{text}");
    assert!(stage("sum", "queued") < 0.15, "{text}");
    // The homeserver, the sync and the SDK hand each message over well within a second; the
    // first (only) event of each answer is acknowledged before its last part is, or with it.
    assert!(stage("sum", "received") < 2.0, "{text}");
    assert!(
        stage("sum", "first_sent") <= stage("sum", "delivered"),
        "{text}"
    );
    // Each answer waited on the homeserver at least for its send; the SDK read each message's
    // sync response (a part of `received`); the bot's own time is the rest of its way from
    // that response to the send's answer, the platform's aside.
    let waited = stage("sum", "homeserver");
    assert!(waited > 0.0, "{text}");
    let read = stage("sum", "read");
    assert!(read > 0.0 && read <= stage("sum", "received"), "{text}");
    let way = stage("sum", "queued") + stage("sum", "prepared") + stage("sum", "first_sent");
    assert!(waited <= way, "{text}");
    assert!(
        (stage("sum", "own") - (read + way - waited)).abs() < 0.001,
        "own = read + queued + prepared + first_sent - homeserver: {text}"
    );
    assert_eq!(get(&format!("http://{addr}/other")).await.0, 404);
    bot.stop().await;
}
