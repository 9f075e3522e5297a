use super::*;
use lambda_matrix_core::ChatId;
use std::time::Instant;

fn request(chat: u32, text: &str) -> Request {
    Request {
        user_id: "@anna:x".into(),
        chat_id: ChatId::new(chat).expect("id"),
        text: text.into(),
        attachments: Vec::new(),
        context: Vec::new(),
        replied_to: None,
        model: None,
        instructions: None,
    }
}

async fn ask(mock: &MockPlatform, request: Request) -> Result<Answer, PlatformError> {
    mock.answer(request, &Progress::new(String::new())).await
}

#[tokio::test]
async fn a_reply_names_the_start_of_what_it_replied_to_on_a_line_of_its_own() {
    let mock = MockPlatform::default();
    let mut asked = request(2, "explain this");
    asked.replied_to = Some("[C2] echo: ünïcode and a long tail that goes past forty".into());
    let answer = ask(&mock, asked).await.expect("answer");
    assert_eq!(
        answer.text,
        "[C2] echo: explain this\nin reply to: [C2] echo: ünïcode and a long tail that"
    );
}

#[tokio::test]
async fn a_chats_model_and_instructions_show_and_a_model_not_offered_falls_back() {
    let mock = MockPlatform::new(MockConfig {
        models: vec!["mock".into(), "fast".into()],
        ..MockConfig::default()
    });
    assert_eq!(mock.model(), "mock");
    assert_eq!(mock.models().await.expect("models"), ["mock", "fast"]);
    let mut asked = request(1, "hi");
    asked.model = Some("fast".into());
    asked.instructions = Some("Answer like a pirate, always, in every single reply".into());
    assert_eq!(
        ask(&mock, asked.clone()).await.expect("answer").text,
        "[C1] echo: hi\nmodel: fast\ninstructions: Answer like a pirate, always, in every s"
    );
    asked.model = Some("gone".into());
    asked.instructions = None;
    assert_eq!(
        ask(&mock, asked).await.expect("answer").text,
        "[C1] echo: hi"
    );
}

#[tokio::test]
async fn the_usage_counts_words_of_what_was_asked_and_answered() {
    let mock = MockPlatform::new(MockConfig {
        models: vec!["mock".into(), "fast".into()],
        ..MockConfig::default()
    });
    let mut asked = request(2, "how are you");
    asked.context = vec![crate::Turn {
        role: crate::Role::User,
        text: "hello there".into(),
        attachments: Vec::new(),
    }];
    asked.instructions = Some("be brief".into());
    let answer = ask(&mock, asked.clone()).await.expect("answer");
    assert_eq!(
        answer.usage,
        [Usage {
            model: "mock".into(),
            prompt: 3 + 2 + 2,
            completion: answer.text.split_whitespace().count() as u64,
            estimated: false,
        }]
    );
    asked.model = Some("fast".into());
    let answer = ask(&mock, asked).await.expect("answer");
    assert_eq!(answer.usage[0].model, "fast");
}

#[tokio::test]
async fn answers_show_the_chat_and_the_text() {
    let mock = MockPlatform::default();
    let answer = ask(&mock, request(3, "hello *world*"))
        .await
        .expect("answer");
    assert_eq!(answer.text, "[C3] echo: hello *world*");
    assert!(!answer.cut);
    assert_eq!(
        ask(&mock, request(3, "hello *world*"))
            .await
            .expect("again")
            .text,
        answer.text
    );
    assert_eq!(mock.calls(), 2);
}

#[tokio::test]
async fn attachments_are_answered_with_kind_type_size_and_hash() {
    use crate::Attachment;
    let mock = MockPlatform::default();
    let png = Attachment {
        kind: AttachmentKind::Image,
        mime: "image/png".into(),
        name: "cat.png".into(),
        bytes: std::sync::Arc::from(&b"abc"[..]),
    };
    let mut with_caption = request(2, "look");
    with_caption.attachments = vec![png.clone()];
    assert_eq!(
        ask(&mock, with_caption).await.expect("answer").text,
        "[C2] got image image/png, 3 bytes, sha256 ba7816bf8f01cfea\necho: look"
    );
    let mut bare = request(2, "");
    bare.attachments = vec![png];
    assert_eq!(
        ask(&mock, bare).await.expect("answer").text,
        "[C2] got image image/png, 3 bytes, sha256 ba7816bf8f01cfea"
    );
    for kind in [
        AttachmentKind::Image,
        AttachmentKind::Audio,
        AttachmentKind::Voice,
        AttachmentKind::File,
    ] {
        assert_eq!(mock.accepts(kind, "application/pdf"), Ok(()));
    }
}

#[tokio::test]
async fn forgetting_a_person_erases_what_the_mock_holds() {
    let mock = MockPlatform::default();
    ask(&mock, request(1, "hi")).await.expect("answer");
    assert!(mock.knows("@anna:x"));
    mock.forget_person("@anna:x").await.expect("forget");
    assert!(!mock.knows("@anna:x"));
    mock.forget_person("@nobody:x")
        .await
        .expect("nothing to forget is fine");
}

#[tokio::test]
async fn delay_is_applied() {
    let mock = MockPlatform::new(MockConfig {
        delay: Duration::from_millis(150),
        ..MockConfig::default()
    });
    let started = Instant::now();
    ask(&mock, request(1, "x")).await.expect("answer");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn only_matching_messages_are_slow() {
    let mock = MockPlatform::new(MockConfig {
        slow_when_contains: Some("slow".into()),
        slow_delay: Duration::from_millis(300),
        ..MockConfig::default()
    });
    let started = Instant::now();
    ask(&mock, request(1, "quick")).await.expect("answer");
    let quick = started.elapsed();
    ask(&mock, request(1, "be slow")).await.expect("answer");
    assert!(started.elapsed() - quick >= Duration::from_millis(300));
}

#[tokio::test]
async fn injected_failures_fail_only_where_asked() {
    let mock = MockPlatform::new(MockConfig {
        fail_when_contains: Some("boom".into()),
        ..MockConfig::default()
    });
    assert!(ask(&mock, request(1, "fine")).await.is_ok());
    let err = ask(&mock, request(1, "please boom"))
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("boom"), "{err}");

    let every_second = MockPlatform::new(MockConfig {
        fail_every: Some(2),
        ..MockConfig::default()
    });
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(ask(&every_second, request(1, "x")).await.is_ok());
    }
    assert_eq!(outcomes, [true, false, true, false]);
}

#[tokio::test]
async fn chaos_fails_or_stalls_the_same_share_of_messages_every_time() {
    let chaos: MockChaos = "42/200".parse().expect("chaos");
    let mock = MockPlatform::default().with_chaos(Some(chaos));
    let texts: Vec<String> = (0..500).map(|n| format!("message {n}")).collect();
    let faults: Vec<Option<MockFault>> = texts
        .iter()
        .map(|t| chaos.fault_for(&request(1, t)))
        .collect();
    let failing = faults
        .iter()
        .filter(|f| **f == Some(MockFault::Fail))
        .count();
    let stalling = faults
        .iter()
        .filter(|f| **f == Some(MockFault::Stall))
        .count();
    assert!(
        (70..130).contains(&(failing + stalling)),
        "{failing} + {stalling} of 500"
    );
    assert!(failing > 0 && stalling > 0);
    for (text, fault) in texts.iter().zip(&faults).take(60) {
        let answer =
            tokio::time::timeout(Duration::from_millis(50), ask(&mock, request(1, text))).await;
        match fault {
            None => assert!(matches!(answer, Ok(Ok(_))), "{text}"),
            Some(MockFault::Fail) => assert!(matches!(answer, Ok(Err(_))), "{text}"),
            Some(MockFault::Stall) => assert!(answer.is_err(), "{text} stalls"),
        }
    }
    let other_seed: MockChaos = "43/200".parse().expect("chaos");
    let moved = texts
        .iter()
        .zip(&faults)
        .filter(|(t, f)| other_seed.fault_for(&request(1, t)) != **f)
        .count();
    assert!(moved > 0, "another seed picks other messages");
}

#[test]
fn chaos_is_written_seed_slash_share() {
    assert_eq!(
        "7".parse::<MockChaos>(),
        Ok(MockChaos {
            seed: 7,
            per_mille: 50
        })
    );
    assert_eq!(
        " 7 / 1000 ".parse::<MockChaos>(),
        Ok(MockChaos {
            seed: 7,
            per_mille: 1000
        })
    );
    for bad in ["", "x", "7/1001", "7/x", "-1/5"] {
        assert!(bad.parse::<MockChaos>().is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn long_answers_are_cut_at_the_cap() {
    let mock = MockPlatform::new(MockConfig {
        max_answer_chars: 14,
        ..MockConfig::default()
    });
    let answer = ask(&mock, request(1, "grüße 👋 und mehr"))
        .await
        .expect("answer");
    assert_eq!(answer.text, "[C1] echo: grü");
    assert!(answer.cut);
    assert_eq!(
        MockConfig::default().max_answer_chars,
        DEFAULT_MAX_ANSWER_CHARS
    );
}
