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
    let world = World::new().await;
    let addr = format!("127.0.0.1:{}", free_port().expect("port"));
    let bot = world
        .start_bot(world.settings(|raw| raw.metrics_addr = Some(addr.clone())))
        .await;
    let (status, body) = get(&format!("http://{addr}/health")).await;
    assert_eq!((status, body.trim()), (200, "ready"), "ready once serving");

    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    assert_eq!(
        anna.ask(&p.c1, "count me").await.expect("answer"),
        "[C1] echo: count me"
    );
    assert!(anna
        .ask(&p.dm, "!chats")
        .await
        .expect("chats")
        .contains("C1"));

    let (status, text) = get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("lambda_matrix_messages_answered_total 1"),
        "{text}"
    );
    assert!(text.contains("lambda_matrix_commands_total 1"), "{text}");
    assert!(
        text.contains("lambda_matrix_platform_latency_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("lambda_matrix_ready 1"), "{text}");
    assert_eq!(get(&format!("http://{addr}/other")).await.0, 404);
    bot.stop().await;
}
