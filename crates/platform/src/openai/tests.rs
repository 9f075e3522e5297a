//! The OpenAI platform against the fake server.

use super::*;
use crate::fake_openai::{code40k_answer, expected_answer, FakeOpenAi, FakeOptions};
use crate::{Role, Turn};
use lambda_matrix_core::ChatId;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

fn request(text: &str, context: Vec<Turn>) -> Request {
    Request {
        user_id: "@anna:x".into(),
        chat_id: ChatId::new(1).expect("id"),
        text: text.into(),
        attachments: Vec::new(),
        context,
        replied_to: None,
        model: None,
        instructions: None,
    }
}

fn turn(role: Role, text: &str) -> Turn {
    Turn {
        role,
        text: text.into(),
        attachments: Vec::new(),
    }
}

async fn fake(options: FakeOptions) -> FakeOpenAi {
    FakeOpenAi::start(options).await.expect("fake server")
}

fn config(fake: &FakeOpenAi, stream: bool) -> OpenAiConfig {
    OpenAiConfig {
        stream,
        timeout: Duration::from_secs(10),
        ..OpenAiConfig::new(fake.url())
    }
}

async fn connect(config: OpenAiConfig) -> OpenAiPlatform {
    OpenAiPlatform::connect(config).await.expect("connect")
}

async fn ask(platform: &OpenAiPlatform, text: &str) -> Result<Answer, PlatformError> {
    platform
        .answer(request(text, Vec::new()), &Progress::new(String::new()))
        .await
}

#[tokio::test]
async fn a_whole_answer_carries_system_prompt_context_and_key() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(OpenAiConfig {
        api_key: Some("sk-test".into()),
        system_prompt: Some("be brief".into()),
        model: Some("fake-model".into()),
        ..config(&fake, false)
    })
    .await;
    let context = vec![turn(Role::User, "hi"), turn(Role::Assistant, "hello")];
    let answer = platform
        .answer(request("and now?", context), &Progress::new(String::new()))
        .await
        .expect("answer");
    assert_eq!(answer.text, expected_answer("and now?", 2));
    assert_eq!(answer.text, "openai: and now? (context: 2)");

    let received = fake.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(
        received[0].body,
        json!({
            "model": "fake-model",
            "stream": false,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "and now?"},
            ],
        })
    );
}

#[tokio::test]
async fn without_a_key_no_authorization_is_sent() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(config(&fake, false)).await;
    assert_eq!(
        ask(&platform, "hi").await.expect("answer").text,
        "openai: hi (context: 0)"
    );
    assert_eq!(fake.requests()[0].authorization, None);
    assert_eq!(
        fake.requests()[0].body["messages"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn a_streamed_answer_is_published_as_it_grows() {
    let fake = fake(FakeOptions {
        chunk_delay: Duration::from_millis(20),
        ..FakeOptions::default()
    })
    .await;
    let platform = connect(config(&fake, true)).await;
    let progress = Progress::new(String::new());
    let mut receiver = progress.subscribe();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while receiver.changed().await.is_ok() {
            seen.push(receiver.borrow_and_update().clone());
        }
        seen
    });
    let text = "tell me a longer story please";
    let answer = platform
        .answer(request(text, vec![turn(Role::User, "before")]), &progress)
        .await
        .expect("answer");
    drop(progress);
    let seen = seen.await.expect("collector");
    assert_eq!(answer.text, expected_answer(text, 1));
    assert_eq!(fake.requests()[0].body["stream"], json!(true));
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(seen.last(), Some(&answer.text));
    assert!(seen
        .iter()
        .all(|partial| answer.text.starts_with(partial.as_str())));
    assert!(seen[0].len() < answer.text.len(), "{seen:?}");
}

#[tokio::test]
async fn the_only_served_model_is_discovered() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(config(&fake, true)).await;
    assert_eq!(platform.model(), "fake-model");
    assert_eq!(fake.model_list_requests(), 1);
    assert!(ask(&platform, "hi").await.is_ok());
}

#[tokio::test]
async fn several_models_without_a_choice_are_an_error_naming_them() {
    let fake = fake(FakeOptions {
        models: vec!["llama-3".into(), "qwen-2".into()],
        ..FakeOptions::default()
    })
    .await;
    let error = OpenAiPlatform::connect(config(&fake, true))
        .await
        .expect_err("ambiguous");
    let shown = error.to_string();
    assert!(
        shown.contains("llama-3") && shown.contains("qwen-2"),
        "{shown}"
    );
    let chosen = connect(OpenAiConfig {
        model: Some("qwen-2".into()),
        ..config(&fake, true)
    })
    .await;
    assert_eq!(
        ask(&chosen, "hi").await.expect("answer").text,
        "openai: hi (context: 0)"
    );
}

#[tokio::test]
async fn a_set_model_needs_no_model_list() {
    let fake = fake(FakeOptions {
        serve_models: false,
        ..FakeOptions::default()
    })
    .await;
    let platform = connect(OpenAiConfig {
        model: Some("fake-model".into()),
        ..config(&fake, false)
    })
    .await;
    assert!(ask(&platform, "hi").await.is_ok());
    assert_eq!(fake.model_list_requests(), 0);

    let error = OpenAiPlatform::connect(config(&fake, false))
        .await
        .expect_err("no model list, no model");
    assert!(
        matches!(error, PlatformError::Rejected { status: 404, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("set the model"), "{error}");
}

#[tokio::test]
async fn a_chat_asks_its_own_model_among_the_allowed_ones_with_its_instructions() {
    let fake = fake(FakeOptions {
        models: vec!["llama-3".into(), "qwen-2".into(), "huge".into()],
        ..FakeOptions::default()
    })
    .await;
    let platform = connect(OpenAiConfig {
        model: Some("llama-3".into()),
        system_prompt: Some("be brief".into()),
        allowed_models: vec!["llama-3".into(), "qwen-2".into()],
        ..config(&fake, false)
    })
    .await;
    assert_eq!(
        platform.models().await.expect("models"),
        ["llama-3", "qwen-2"]
    );
    let mut asked = request("hi", Vec::new());
    asked.model = Some("qwen-2".into());
    asked.instructions = Some("answer in French".into());
    let progress = Progress::new(String::new());
    platform
        .answer(asked.clone(), &progress)
        .await
        .expect("answer");
    // A model no longer allowed: the default answers.
    asked.model = Some("huge".into());
    platform.answer(asked, &progress).await.expect("answer");
    let sent: Vec<(String, String)> = fake
        .requests()
        .iter()
        .map(|r| {
            let system = &r.body["messages"][0];
            assert_eq!(system["role"], "system");
            (
                r.body["model"].as_str().unwrap_or_default().to_owned(),
                system["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = "be brief\n\nanswer in French".to_owned();
    assert_eq!(
        sent,
        [
            ("qwen-2".to_owned(), expected.clone()),
            ("llama-3".to_owned(), expected)
        ]
    );
}

#[tokio::test]
async fn a_trailing_slash_in_the_base_url_does_not_matter() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(OpenAiConfig {
        base_url: format!("{}/", fake.url()),
        ..config(&fake, false)
    })
    .await;
    assert!(ask(&platform, "hi").await.is_ok());
}

#[tokio::test]
async fn server_failures_map_to_error_kinds() {
    let fake = fake(FakeOptions::default()).await;
    for stream in [false, true] {
        let platform = connect(config(&fake, stream)).await;
        let error = ask(&platform, "status500").await.expect_err("500");
        assert!(
            matches!(&error, PlatformError::Unavailable(m) if m.contains("500")),
            "{error:?}"
        );

        let error = ask(&platform, "please status429").await.expect_err("429");
        assert!(
            matches!(error, PlatformError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)),
            "{error:?}"
        );

        let error = ask(&platform, "status401").await.expect_err("401");
        assert!(
            matches!(&error, PlatformError::Rejected { status: 401, message } if message == "Incorrect API key provided"),
            "{error:?}"
        );

        let error = ask(&platform, "malformed").await.expect_err("malformed");
        assert_eq!(error.kind(), "malformed", "{error:?}");
    }
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let fake = fake(FakeOptions::default()).await;
    let timeout = Duration::from_millis(300);
    let platform = connect(OpenAiConfig {
        timeout,
        ..config(&fake, true)
    })
    .await;
    let started = Instant::now();
    let error = ask(&platform, "hang").await.expect_err("hangs");
    assert!(
        matches!(error, PlatformError::Timeout(t) if t == timeout),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_timeout_bounds_a_slow_stream_too() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(OpenAiConfig {
        timeout: Duration::from_millis(1500),
        ..config(&fake, true)
    })
    .await;
    let progress = Progress::new(String::new());
    let error = platform
        .answer(request("slowstream", Vec::new()), &progress)
        .await
        .expect_err("too slow");
    assert_eq!(error.kind(), "timeout");
    assert!(
        progress.borrow().starts_with("openai: "),
        "{:?}",
        *progress.borrow()
    );
}

#[tokio::test]
async fn a_cut_or_failing_stream_is_an_error() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(config(&fake, true)).await;
    let error = ask(&platform, "cut").await.expect_err("cut");
    assert_eq!(error.kind(), "malformed", "{error:?}");
    assert!(error.to_string().contains("ended early"), "{error}");

    let error = ask(&platform, "streamerror")
        .await
        .expect_err("error event");
    assert_eq!(error.kind(), "failed", "{error:?}");
    assert!(error.to_string().contains("The model crashed"), "{error}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let platform = connect(OpenAiConfig {
        model: Some("m".into()),
        ..OpenAiConfig::new(format!("http://{address}/v1"))
    })
    .await;
    let error = ask(&platform, "hi").await.expect_err("nobody listens");
    assert_eq!(error.kind(), "unavailable", "{error:?}");
}

#[tokio::test]
async fn the_api_key_never_shows() {
    let secret = "sk-wrong-secret-123";
    let fake = fake(FakeOptions {
        required_api_key: Some("sk-right".into()),
        ..FakeOptions::default()
    })
    .await;
    let config = OpenAiConfig {
        api_key: Some(secret.into()),
        model: Some("fake-model".into()),
        ..config(&fake, true)
    };
    assert!(!format!("{config:?}").contains(secret));
    let platform = connect(config.clone()).await;
    assert!(!format!("{platform:?}").contains(secret));
    let error = ask(&platform, "hi").await.expect_err("wrong key");
    assert!(
        matches!(error, PlatformError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains(secret), "{error}");
    assert!(!format!("{error:?}").contains(secret), "{error:?}");
    // The fake echoed it; the platform removed it.
    assert!(error.to_string().contains("[redacted]"), "{error}");

    let error = OpenAiPlatform::connect(OpenAiConfig {
        model: None,
        ..config
    })
    .await
    .expect_err("wrong key when listing models");
    assert!(!error.to_string().contains(secret), "{error}");
}

#[tokio::test]
async fn the_platform_keeps_nothing_and_reports_its_settings() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(OpenAiConfig {
        context_messages: 7,
        ..config(&fake, true)
    })
    .await;
    assert_eq!(platform.name(), "openai");
    assert_eq!(platform.context_messages(), 7);
    platform
        .forget_person("@anna:x")
        .await
        .expect("nothing to forget");
}

#[tokio::test]
async fn an_unusable_base_url_is_refused() {
    for url in ["not a url", "ftp://example.org/v1"] {
        let error = OpenAiPlatform::connect(OpenAiConfig {
            model: Some("m".into()),
            ..OpenAiConfig::new(url)
        })
        .await
        .expect_err("bad url");
        assert!(error.to_string().contains("base URL"), "{error}");
    }
}

#[test]
fn endpoints_append_to_the_base_path() {
    let base = Url::parse("http://127.0.0.1:11434/v1").expect("url");
    let slash = Url::parse("http://127.0.0.1:11434/v1/").expect("url");
    for base in [base, slash] {
        assert_eq!(
            endpoint(&base, &["chat", "completions"]).as_str(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
    }
    let query = Url::parse("https://x.example/openai/v1?api-version=1").expect("url");
    assert_eq!(
        endpoint(&query, &["models"]).as_str(),
        "https://x.example/openai/v1/models?api-version=1"
    );
}

#[tokio::test]
async fn a_flood_is_cut_at_the_cap_and_the_connection_dropped() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(OpenAiConfig {
        max_answer_chars: 1_000,
        ..config(&fake, true)
    })
    .await;
    let progress = Progress::new(String::new());
    let answer = platform
        .answer(request("flood", Vec::new()), &progress)
        .await
        .expect("answer");
    assert!(answer.cut);
    assert_eq!(answer.text.chars().count(), 1_000);
    assert!(answer.text.starts_with(&format!("{}\n", "x".repeat(100))));
    assert_eq!(*progress.borrow(), answer.text);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = fake.bytes_sent();
    assert!(sent < 20_000_000, "the fake sent {sent} bytes");
}

#[tokio::test]
async fn a_whole_answer_over_the_cap_is_cut() {
    let fake = fake(FakeOptions::default()).await;
    let platform = connect(OpenAiConfig {
        max_answer_chars: 1_000,
        ..config(&fake, false)
    })
    .await;
    let answer = ask(&platform, "flood").await.expect("answer");
    assert!(answer.cut);
    assert_eq!(answer.text.chars().count(), 1_000);
    let short = ask(&platform, "hi").await.expect("answer");
    assert_eq!(short.text, "openai: hi (context: 0)");
    assert!(!short.cut);
}

#[tokio::test]
async fn a_long_code_block_arrives_whole() {
    let fake = fake(FakeOptions {
        chunk_delay: Duration::from_millis(5),
        ..FakeOptions::default()
    })
    .await;
    for stream in [true, false] {
        let platform = connect(config(&fake, stream)).await;
        let progress = Progress::new(String::new());
        let answer = platform
            .answer(request("code40k", Vec::new()), &progress)
            .await
            .expect("answer");
        assert_eq!(answer.text, code40k_answer(), "stream: {stream}");
        assert!(!answer.cut);
        if stream {
            assert_eq!(*progress.borrow(), answer.text);
        }
    }
}

/// A one-shot HTTP server on `127.0.0.1` that reads a request, then sends `head` and up to
/// `body_bytes` bytes of `{` (no `Content-Length`: the body ends when the connection closes),
/// stopping when a write fails. Returns its base URL and how many body bytes it wrote.
async fn raw_server(head: &'static str, body_bytes: usize) -> (String, JoinHandle<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        read_raw_request(&mut socket).await;
        let mut written = 0;
        if socket.write_all(head.as_bytes()).await.is_err() {
            return written;
        }
        let block = vec![b'{'; 64 * 1024];
        while written < body_bytes {
            match socket.write(&block).await {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        written
    });
    (url, task)
}

/// Reads a request's head and its `Content-Length` body.
async fn read_raw_request(socket: &mut tokio::net::TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn a_whole_reply_over_8_mib_is_malformed() {
    let (url, server) = raw_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        64 * 1024 * 1024,
    )
    .await;
    let platform = connect(OpenAiConfig {
        model: Some("m".into()),
        ..OpenAiConfig::new(url)
    })
    .await;
    let error = ask(&platform, "hi").await.expect_err("too large");
    assert!(
        matches!(&error, PlatformError::Malformed(m) if m == "the response is larger than 8 MiB"),
        "{error:?}"
    );
    drop(platform);
    let written = server.await.expect("server");
    assert!(
        written < 32 * 1024 * 1024,
        "the server wrote {written} bytes"
    );
}

#[tokio::test]
async fn a_whole_reply_with_a_too_large_length_is_not_read() {
    let (url, server) = raw_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\n\r\n",
        0,
    )
    .await;
    let platform = connect(OpenAiConfig {
        model: Some("m".into()),
        ..OpenAiConfig::new(url)
    })
    .await;
    let error = ask(&platform, "hi").await.expect_err("too large");
    assert!(error.to_string().contains("larger than 8 MiB"), "{error}");
    server.await.expect("server");
}

#[tokio::test]
async fn only_the_start_of_a_huge_error_reply_is_read() {
    let (url, server) = raw_server(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
        256 * 1024 * 1024,
    )
    .await;
    let platform = connect(OpenAiConfig {
        model: Some("m".into()),
        ..OpenAiConfig::new(url)
    })
    .await;
    let error = ask(&platform, "hi").await.expect_err("500");
    assert!(
        matches!(&error, PlatformError::Unavailable(m) if m.contains("500") && m.contains("{{{")),
        "{error:?}"
    );
    assert!(error.to_string().len() < 1_000, "{error}");
    drop(platform);
    let written = server.await.expect("server");
    assert!(
        written < 32 * 1024 * 1024,
        "the server wrote {written} bytes"
    );
}

#[tokio::test]
async fn the_usage_is_read_whole_and_streamed_and_estimated_when_the_server_says_none() {
    for stream in [false, true] {
        let fake = fake(FakeOptions::default()).await;
        let platform = connect(config(&fake, stream)).await;
        let answer = ask(&platform, "two words").await.expect("answer");
        // The fake counts words: "two words" asked; "openai: two words (context: 0)" answered.
        assert_eq!(
            answer.usage,
            [crate::Usage {
                model: "fake-model".into(),
                prompt: 2,
                completion: 5,
                estimated: false
            }],
            "stream: {stream}"
        );
        let silent = fake_with_no_usage().await;
        let platform = connect(config(&silent, stream)).await;
        let answer = ask(&platform, "two words").await.expect("answer");
        assert_eq!(
            answer.usage,
            [crate::Usage {
                model: "fake-model".into(),
                prompt: crate::estimate_tokens("two words"),
                completion: crate::estimate_tokens("openai: two words (context: 0)"),
                estimated: true
            }],
            "stream: {stream}"
        );
    }
}

async fn fake_with_no_usage() -> FakeOpenAi {
    fake(FakeOptions {
        usage: false,
        ..FakeOptions::default()
    })
    .await
}
