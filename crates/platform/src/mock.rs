//! The deterministic mock platform, with optional seeded chaos ([`MockChaos`]).

use crate::{
    Answer, AttachmentKind, Platform, PlatformError, Progress, Refusal, Request,
    DEFAULT_MAX_ANSWER_CHARS,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::str::FromStr;
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
    /// The models the mock offers (`LAMBDA_MOCK_MODELS`), its default first; never empty.
    pub models: Vec<String>,
}

/// The mock's model when none other is named.
pub const DEFAULT_MOCK_MODEL: &str = "mock";

impl Default for MockConfig {
    /// No delay, no failures, [`DEFAULT_MAX_ANSWER_CHARS`], one model ([`DEFAULT_MOCK_MODEL`]).
    fn default() -> Self {
        MockConfig {
            models: vec![DEFAULT_MOCK_MODEL.to_owned()],
            delay: Duration::ZERO,
            slow_when_contains: None,
            slow_delay: Duration::ZERO,
            fail_when_contains: None,
            fail_every: None,
            max_answer_chars: DEFAULT_MAX_ANSWER_CHARS,
        }
    }
}

/// Seeded platform faults: a share of the messages is failed or never answered (stalled
/// until the bot's `LAMBDA_PLATFORM_TIMEOUT` gives up). Which ones depends only on the seed and
/// the message (person, chat, text), so a message picked once is picked again when a restarted
/// bot asks again, and a run can be repeated.
///
/// Written `SEED` or `SEED/PER_MILLE` (e.g. `42/50`: seed 42, 5 %); the share defaults to 5 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockChaos {
    /// The seed.
    pub seed: u64,
    /// The share of messages that fail or stall, in thousandths (50 = 5 %).
    pub per_mille: u32,
}

/// What [`MockChaos`] does to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockFault {
    /// The answer fails ([`PlatformError::Failed`]).
    Fail,
    /// No answer ever comes.
    Stall,
}

impl MockChaos {
    /// The fault for `request`, if it gets one.
    pub fn fault_for(&self, request: &Request) -> Option<MockFault> {
        let mut hash = fnv1a(FNV_OFFSET ^ self.seed, request.user_id.as_bytes());
        hash = fnv1a(hash, request.chat_id.to_string().as_bytes());
        let roll = mix(fnv1a(hash, request.text.as_bytes()));
        if roll % 1000 >= u64::from(self.per_mille) {
            return None;
        }
        Some(if mix(roll).is_multiple_of(2) {
            MockFault::Fail
        } else {
            MockFault::Stall
        })
    }
}

impl FromStr for MockChaos {
    type Err = String;

    /// `SEED` or `SEED/PER_MILLE`.
    fn from_str(text: &str) -> Result<MockChaos, String> {
        let (seed, share) = match text.trim().split_once('/') {
            Some((seed, share)) => (seed.trim(), Some(share.trim())),
            None => (text.trim(), None),
        };
        let seed = seed
            .parse()
            .map_err(|_| format!("{seed:?} is not a seed (a number)"))?;
        let per_mille = match share {
            None => 50,
            Some(share) => match share.parse::<u32>() {
                Ok(n) if n <= 1000 => n,
                _ => return Err(format!("{share:?} is not a share in thousandths (0-1000)")),
            },
        };
        Ok(MockChaos { seed, per_mille })
    }
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash` (stable across builds, unlike std's hasher).
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01B3);
    }
    hash
}

/// splitmix64's finaliser.
fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Answers `[C<n>] echo: <text>`, so a person and a test can see which chat answered what (and,
/// for a reply, `in reply to: <the first 40 characters of the message replied to>` on a line of
/// its own after it); an
/// attachment is answered `[C<n>] got <kind> <mime>, <n> bytes, sha256 <16 hex digits>` (one
/// line each), so a test can prove the bytes arrived intact, with a caption on the next line as
/// `echo: <caption>`. It takes every kind of attachment. A chat's own model (one the mock
/// offers, [`MockConfig::models`]) adds a line `model: <name>`, a chat's instructions a line
/// `instructions: <their first 40 characters>`.
/// It remembers how many messages each person sent (its "data about a person"), so erasing a
/// person through [`Platform::forget_person`] can be observed.
#[derive(Debug, Default)]
pub struct MockPlatform {
    config: MockConfig,
    chaos: Option<MockChaos>,
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

    /// The same mock with seeded faults (`None`: none, the deterministic mock).
    pub fn with_chaos(self, chaos: Option<MockChaos>) -> Self {
        MockPlatform { chaos, ..self }
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
        let mut answer = Self::echo(request);
        if let Some(replied) = &request.replied_to {
            let start: String = replied.chars().take(40).collect();
            answer.push_str(&format!("\nin reply to: {}", start.trim_end()));
        }
        if let Some(model) = &request.model {
            answer.push_str(&format!("\nmodel: {model}"));
        }
        if let Some(instructions) = &request.instructions {
            let start: String = instructions.chars().take(40).collect();
            answer.push_str(&format!("\ninstructions: {}", start.trim_end()));
        }
        answer
    }

    /// The echo of the text and the attachments.
    fn echo(request: &Request) -> String {
        if request.attachments.is_empty() {
            return format!("[{}] echo: {}", request.chat_id, request.text);
        }
        let mut lines: Vec<String> = request
            .attachments
            .iter()
            .map(|a| {
                format!(
                    "[{}] got {} {}, {} bytes, sha256 {}",
                    request.chat_id,
                    a.kind,
                    a.mime,
                    a.size(),
                    a.sha256_prefix()
                )
            })
            .collect();
        if !request.text.is_empty() {
            lines.push(format!("echo: {}", request.text));
        }
        lines.join("\n")
    }
}

#[async_trait]
impl Platform for MockPlatform {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn accepts(&self, _kind: AttachmentKind, _mime: &str) -> Result<(), Refusal> {
        Ok(())
    }

    async fn answer(
        &self,
        mut request: Request,
        _progress: &Progress,
    ) -> Result<Answer, PlatformError> {
        // A model the mock does not offer (the list changed since the chat chose it): its own.
        if !request
            .model
            .as_ref()
            .is_some_and(|model| self.config.models.contains(model))
        {
            request.model = None;
        }
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
        match self.chaos.and_then(|chaos| chaos.fault_for(&request)) {
            Some(MockFault::Fail) => {
                return Err(PlatformError::Failed(
                    "mock failure injected (chaos)".to_owned(),
                ))
            }
            Some(MockFault::Stall) => std::future::pending::<()>().await,
            None => {}
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

    fn model(&self) -> &str {
        self.config
            .models
            .first()
            .map_or(DEFAULT_MOCK_MODEL, String::as_str)
    }

    async fn models(&self) -> Result<Vec<String>, PlatformError> {
        Ok(self.config.models.clone())
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
}
