//! The proxy's chaos as a client sees it: answers, dropped connections before and after the
//! homeserver acted, held requests, and the same faults for the same seed.

use lambda_matrix_testkit::chaos::{Action, ChaosConfig, Kind};
use lambda_matrix_testkit::RecordingProxy;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A stand-in homeserver that answers `200 {}` to everything and counts the requests.
async fn upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buffer[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        counter.fetch_add(1, Ordering::SeqCst);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, count)
}

/// A chaos where every request of `kind` gets a fault.
fn always(seed: u64, kind: Kind) -> ChaosConfig {
    ChaosConfig {
        per_mille: 1000,
        kinds: vec![kind],
        hang: (Duration::from_millis(300), Duration::from_millis(400)),
        max_delay: Duration::from_millis(300),
        ..ChaosConfig::new(seed)
    }
}

/// A seed whose first fault for `kind` is `name`.
fn seed_for(kind: Kind, name: &str) -> u64 {
    (1..10_000)
        .find(|seed| always(*seed, kind).decide(kind, 0).map(Action::name) == Some(name))
        .expect("a seed")
}

async fn put(client: &reqwest::Client, proxy: &RecordingProxy) -> Result<u16, reqwest::Error> {
    let url = format!(
        "{}/_matrix/client/v3/rooms/!a:x/send/m.room.message/t1",
        proxy.url()
    );
    client
        .put(url)
        .body("{}")
        .send()
        .await
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn each_action_does_what_it_says() {
    let (url, count) = upstream().await;
    let proxy = RecordingProxy::start(&url).await.expect("proxy");
    // A fresh connection per request, so a dropped one is not retried on the next.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let cases: [(&str, Option<u16>, usize); 6] = [
        ("500", Some(500), 0),
        ("429", Some(429), 0),
        ("reset_before", None, 0),
        ("hang", None, 0),
        ("reset_after", None, 1),
        ("delay", Some(200), 1),
    ];
    for (name, status, forwarded) in cases {
        proxy.chaos(always(seed_for(Kind::Send, name), Kind::Send));
        let before = count.load(Ordering::SeqCst);
        let started = Instant::now();
        let answer = put(&client, &proxy).await;
        assert_eq!(answer.as_ref().ok().copied(), status, "{name}: {answer:?}");
        assert_eq!(
            count.load(Ordering::SeqCst) - before,
            forwarded,
            "{name}: forwarded"
        );
        if name == "hang" {
            assert!(
                started.elapsed() >= Duration::from_millis(300),
                "{name}: held"
            );
        }
    }
    proxy.chaos(always(seed_for(Kind::Send, "429"), Kind::Send));
    let answer = client
        .put(format!(
            "{}/_matrix/client/v3/rooms/!a:x/send/m/t",
            proxy.url()
        ))
        .send()
        .await
        .expect("answer");
    assert!(answer.headers().contains_key("retry-after"));
    assert_eq!(proxy.chaos_hits().len(), 7);
    proxy.heal();
    assert_eq!(put(&client, &proxy).await.expect("healed"), 200);
    assert_eq!(proxy.chaos_hits().len(), 7, "no chaos after heal");
}

#[tokio::test]
async fn other_kinds_pass_and_the_same_seed_fails_the_same_requests() {
    let (url, _) = upstream().await;
    let proxy = RecordingProxy::start(&url).await.expect("proxy");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    proxy.chaos(always(3, Kind::Sync));
    assert_eq!(put(&client, &proxy).await.expect("a send passes"), 200);

    let config = ChaosConfig {
        per_mille: 300,
        kinds: vec![Kind::Send],
        hang: (Duration::from_millis(10), Duration::from_millis(20)),
        max_delay: Duration::from_millis(10),
        ..ChaosConfig::new(99)
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        proxy.chaos(config.clone());
        let mut outcomes = Vec::new();
        for _ in 0..40 {
            outcomes.push(put(&client, &proxy).await.ok());
        }
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].iter().any(|o| *o != Some(200)), "some failed");
}
