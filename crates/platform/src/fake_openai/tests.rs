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
        context: Vec::new(),
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
