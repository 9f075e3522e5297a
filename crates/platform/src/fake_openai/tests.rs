//! The fake server's chaos, through the OpenAI platform.

use super::{FakeChaos, FakeFault, FakeOpenAi, FakeOptions};
use crate::openai::{OpenAiConfig, OpenAiPlatform};
use crate::{Platform, PlatformError, Progress, Request};
use lambda_matrix_core::ChatId;
use std::time::Duration;

/// A seed whose first request gets `fault` when every request gets one.
fn seed_for(fault: FakeFault) -> u64 {
    (1..10_000)
        .find(|seed| every(*seed).fault_for(0) == Some(fault))
        .expect("a seed")
}

fn every(seed: u64) -> FakeChaos {
    FakeChaos {
        seed,
        per_mille: 1000,
    }
}

/// Asks once, streaming or not, against a fake whose first request gets `fault`.
async fn first_answer(fault: FakeFault, stream: bool) -> (Result<String, PlatformError>, String) {
    let fake = FakeOpenAi::start(FakeOptions {
        chaos: Some(every(seed_for(fault))),
        ..FakeOptions::default()
    })
    .await
    .expect("fake server");
    let platform = OpenAiPlatform::connect(OpenAiConfig {
        stream,
        timeout: Duration::from_secs(2),
        ..OpenAiConfig::new(fake.url())
    })
    .await
    .expect("connect");
    let progress = Progress::new(String::new());
    let request = Request {
        user_id: "@anna:x".into(),
        chat_id: ChatId::new(1).expect("id"),
        text: "one two three four five six seven eight".into(),
        attachments: Vec::new(),
        context: Vec::new(),
        replied_to: None,
        model: None,
        instructions: None,
    };
    let answer = platform.answer(request, &progress).await;
    assert_eq!(fake.chaos_faults(), [(0, fault)]);
    let shown = progress.borrow().clone();
    (answer.map(|a| a.text), shown)
}

#[tokio::test]
async fn each_fault_reaches_the_client_as_it_should() {
    for stream in [false, true] {
        let (answer, _) = first_answer(FakeFault::Status500, stream).await;
        assert!(answer.is_err(), "500: {answer:?}");
        let (answer, _) = first_answer(FakeFault::Status429, stream).await;
        assert!(
            matches!(answer, Err(PlatformError::RateLimited { .. })),
            "429: {answer:?}"
        );
        let (answer, _) = first_answer(FakeFault::Hang, stream).await;
        assert!(
            matches!(answer, Err(PlatformError::Timeout(_))),
            "hang: {answer:?}"
        );
        let (answer, shown) = first_answer(FakeFault::Cut, stream).await;
        assert!(answer.is_err(), "cut: {answer:?}");
        if stream {
            assert!(
                shown.starts_with("openai: one"),
                "half was shown: {shown:?}"
            );
            assert!(!shown.contains("eight"), "but not all: {shown:?}");
        }
    }
}

#[test]
fn the_share_and_the_mix_of_faults_follow_the_seed() {
    let chaos = FakeChaos {
        seed: 5,
        per_mille: 100,
    };
    let faults: Vec<Option<FakeFault>> = (0..4000).map(|i| chaos.fault_for(i)).collect();
    let hit = faults.iter().flatten().count();
    assert!((300..500).contains(&hit), "{hit} of 4,000");
    for fault in [
        FakeFault::Status500,
        FakeFault::Status429,
        FakeFault::Hang,
        FakeFault::Cut,
    ] {
        assert!(faults.contains(&Some(fault)), "{fault:?}");
    }
    let again: Vec<Option<FakeFault>> = (0..4000).map(|i| chaos.fault_for(i)).collect();
    assert_eq!(faults, again);
}

/// Sends a raw chat-completions request saying `text` and returns the socket.
async fn raw_chat(fake: &FakeOpenAi, text: &str, stream: bool) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = fake.url().trim_start_matches("http://").replace("/v1", "");
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let body = serde_json::json!({
        "model": "fake-model",
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    })
    .to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("write");
    socket
}

/// Everything the server sends until it closes the connection (or `limit` passes).
async fn read_all(socket: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    tokio::time::timeout(limit, socket.read_to_end(&mut all))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&all).into_owned())
}

#[tokio::test]
async fn replies_close_their_connection_and_whole_bodies_are_counted_exactly() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let mut socket = raw_chat(&fake, "hi", false).await;
    let reply = read_all(&mut socket, Duration::from_secs(5))
        .await
        .expect("closed");
    let (head, body) = reply.split_once("\r\n\r\n").expect("head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    assert_eq!(fake.bytes_sent(), body.len() as u64);

    let mut socket = raw_chat(&fake, "one two three cut", true).await;
    let reply = read_all(&mut socket, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(reply.contains("transfer-encoding: chunked"), "{reply}");
    assert!(reply.contains("\"content\":\"one \""), "{reply}");
    assert!(!reply.contains("[DONE]"), "{reply}");
}

#[tokio::test]
async fn a_hanging_reply_stays_open_until_the_server_is_dropped() {
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let mut socket = raw_chat(&fake, "hang", true).await;
    assert_eq!(
        read_all(&mut socket, Duration::from_millis(300)).await,
        None,
        "still open"
    );
    drop(fake);
    let reply = read_all(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(reply.as_deref(), Some(""), "closed without a reply");
}

#[tokio::test]
async fn a_chaos_cut_of_a_whole_reply_closes_without_a_byte() {
    let fake = FakeOpenAi::start(FakeOptions {
        chaos: Some(every(seed_for(FakeFault::Cut))),
        ..FakeOptions::default()
    })
    .await
    .expect("fake");
    let mut socket = raw_chat(&fake, "hi", false).await;
    let reply = read_all(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(reply.as_deref(), Some(""));
    assert_eq!(fake.bytes_sent(), 0);
}

#[tokio::test]
async fn a_flood_stops_when_the_client_goes_away() {
    use tokio::io::AsyncReadExt;
    let fake = FakeOpenAi::start(FakeOptions::default())
        .await
        .expect("fake");
    let mut socket = raw_chat(&fake, "flood", true).await;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read = 0;
    while read < 1_000_000 {
        read += socket.read(&mut buffer).await.expect("read");
    }
    drop(socket);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = fake.bytes_sent();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.bytes_sent(), sent, "stopped");
    assert!(sent < 5_000_000, "{sent} bytes");
}
