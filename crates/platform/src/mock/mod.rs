//! The deterministic mock platform, with optional seeded chaos ([`MockChaos`]).

use crate::{
    Answer, AttachmentKind, Platform, PlatformError, Progress, Refusal, Request, Usage,
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

    /// What the mock says an answer cost: prompt tokens are the words (runs of non-space) of
    /// the message, its context and the chat's instructions, completion tokens the words of
    /// the answer; the model is the one that answered.
    pub fn usage(&self, request: &Request, answer: &str) -> Usage {
        let words = |text: &str| text.split_whitespace().count() as u64;
        let context: u64 = request.context.iter().map(|turn| words(&turn.text)).sum();
        let instructions = request.instructions.as_deref().map_or(0, words);
        Usage {
            model: request
                .model
                .clone()
                .unwrap_or_else(|| self.model().to_owned()),
            prompt: words(&request.text) + context + instructions,
            completion: words(answer),
            estimated: false,
        }
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
        let mut answer = Answer::capped(
            Self::expected_answer(&request),
            self.config.max_answer_chars,
        );
        answer.usage = vec![self.usage(&request, &answer.text)];
        Ok(answer)
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
mod tests;
