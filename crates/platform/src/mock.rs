//! The deterministic mock platform.

use crate::{Answer, Platform, PlatformError, Progress, Request, DEFAULT_MAX_ANSWER_CHARS};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How the mock behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockConfig {
    /// Time each answer takes.
    pub delay: Duration,
    /// A message containing this text takes [`MockConfig::slow_delay`] instead.
    pub slow_when_contains: Option<String>,
    /// Time a "slow" answer takes.
    pub slow_delay: Duration,
    /// A message containing this text fails instead of being answered (failure injection).
    pub fail_when_contains: Option<String>,
    /// Every n-th call fails (1 = every call); `None` or `Some(0)` never.
    pub fail_every: Option<u64>,
    /// An answer longer than this many characters is cut there ([`Answer::cut`] set); 0 is not
    /// a cap and means [`DEFAULT_MAX_ANSWER_CHARS`].
    pub max_answer_chars: usize,
}

impl Default for MockConfig {
    /// No delay, no failures, [`DEFAULT_MAX_ANSWER_CHARS`].
    fn default() -> Self {
        MockConfig {
            delay: Duration::ZERO,
            slow_when_contains: None,
            slow_delay: Duration::ZERO,
            fail_when_contains: None,
            fail_every: None,
            max_answer_chars: DEFAULT_MAX_ANSWER_CHARS,
        }
    }
}

/// Answers `[C<n>] echo: <text>`, so a person and a test can see which chat answered what.
/// It remembers how many messages each person sent (its "data about a person"), so erasing a
/// person through [`Platform::forget_person`] can be observed.
#[derive(Debug, Default)]
pub struct MockPlatform {
    config: MockConfig,
    calls: AtomicU64,
    people: Mutex<HashMap<String, u64>>,
}

impl MockPlatform {
    /// A mock with `config`.
    pub fn new(config: MockConfig) -> Self {
        MockPlatform {
            config,
            ..MockPlatform::default()
        }
    }

    /// Whether the mock holds anything about `user_id`.
    pub fn knows(&self, user_id: &str) -> bool {
        self.people().contains_key(user_id)
    }

    fn people(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.people
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many times [`Platform::answer`] was called.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The answer the mock gives to `request` when it does not fail (before the cap of
    /// [`MockConfig::max_answer_chars`]).
    pub fn expected_answer(request: &Request) -> String {
        format!("[{}] echo: {}", request.chat_id, request.text)
    }
}

#[async_trait]
impl Platform for MockPlatform {
    fn name(&self) -> &'static str {
        "mock"
    }

    async fn answer(
        &self,
        request: Request,
        _progress: &Progress,
    ) -> Result<Answer, PlatformError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        *self.people().entry(request.user_id.clone()).or_default() += 1;
        let slow = self
            .config
            .slow_when_contains
            .as_deref()
            .is_some_and(|needle| request.text.contains(needle));
        let delay = if slow {
            self.config.slow_delay
        } else {
            self.config.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(needle) = &self.config.fail_when_contains {
            if request.text.contains(needle.as_str()) {
                return Err(PlatformError::Failed(format!(
                    "mock failure injected (message contains {needle:?})"
                )));
            }
        }
        if let Some(n) = self.config.fail_every.filter(|n| *n > 0) {
            if call.is_multiple_of(n) {
                return Err(PlatformError::Failed(format!(
                    "mock failure injected (call {call} of every {n})"
                )));
            }
        }
        Ok(Answer::capped(
            Self::expected_answer(&request),
            self.config.max_answer_chars,
        ))
    }

    async fn forget_person(&self, user_id: &str) -> Result<(), PlatformError> {
        self.people().remove(user_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_matrix_core::ChatId;
    use std::time::Instant;

    fn request(chat: u32, text: &str) -> Request {
        Request {
            user_id: "@anna:x".into(),
            chat_id: ChatId::new(chat).expect("id"),
            text: text.into(),
            context: Vec::new(),
        }
    }

    async fn ask(mock: &MockPlatform, request: Request) -> Result<Answer, PlatformError> {
        mock.answer(request, &Progress::new(String::new())).await
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
}
