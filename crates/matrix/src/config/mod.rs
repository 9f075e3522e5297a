//! Settings: read from the environment, `.env` and flags, then validated as a whole before any
//! network call. Every problem is reported on its own line naming the variable.

pub mod defaults;
mod glob;
mod parse;
mod raw;
mod read;
mod secret;
pub mod vars;

pub use glob::Glob;
pub use raw::RawSettings;
pub use secret::Secret;

use lambda_matrix_platform::{MockConfig, OpenAiConfig};
use matrix_sdk::ruma::OwnedUserId;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The log filter when `RUST_LOG` is unset: the bot's own steps at `info`, other libraries at
/// `warn`, and matrix-sdk (every `matrix_sdk*` crate) at `error` only: its info lines come with
/// every long-poll, and its warnings are for its developers (a first start alone prints a few:
/// its own device "might have been deleted" before its keys are uploaded, "no backup key"
/// before the bot turns the backup on, a room key received twice). Its line per failed request
/// is off (it logs expected 404s, e.g. for absent account data, as errors; the bot logs real
/// failures itself, with context). `RUST_LOG=info` shows everything. Its value is in
/// [`defaults`].
pub const DEFAULT_LOG_FILTER: &str =
    "warn,lambda_matrix=info,matrix_sdk=error,matrix_sdk::http_client=off";

/// Which platform answers messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformKind {
    /// The deterministic mock (the default).
    Mock,
    /// An OpenAI-compatible chat-completions server.
    OpenAi,
}

/// How the first snapshot of every room is fetched when the SDK store holds no sync position
/// (`MATRIX_SYNC`; docs/DESIGN.md "Sync"). The live loop is `/sync` v2 in every mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Simplified sliding sync (MSC4186) when the homeserver offers it, else v2.
    #[default]
    Auto,
    /// Simplified sliding sync; starting fails on a homeserver without it.
    Sliding,
    /// A v2 initial sync (slower at many rooms; for homeservers without MSC4186).
    V2,
}

/// The language of the bot's own text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For a person at a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Validated settings, in groups. Built only by [`Settings::from_raw`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the bot logs in, as whom, and who may use it.
    pub identity: Identity,
    /// The bot's files.
    pub files: Files,
    /// How the bot uses Matrix: its rooms and its first sync.
    pub matrix: MatrixSettings,
    /// Every bound: counts, rates, durations, sizes.
    pub limits: Limits,
    /// What answers messages.
    pub platform: PlatformSettings,
    /// Language, metrics and logs.
    pub output: Output,
}

/// Where the bot logs in, as whom, and who may use it.
#[derive(Clone, Debug)]
pub struct Identity {
    /// `MATRIX_HOMESERVER`.
    pub homeserver: Url,
    /// `MATRIX_USER`.
    pub user_id: OwnedUserId,
    /// `MATRIX_PASSWORD`; needed only when no saved session or token can be used.
    pub password: Option<Secret>,
    /// `MATRIX_ACCESS_TOKEN` with `MATRIX_DEVICE_ID`: a session given by the operator.
    pub token: Option<TokenLogin>,
    /// `MATRIX_RECOVERY_KEY`.
    pub recovery_key: Option<Secret>,
    /// `MATRIX_ALLOWED_USERS`.
    pub allowed_users: Vec<Glob>,
}

/// A session the operator gives the bot instead of a password: an access token and the device
/// it belongs to.
#[derive(Clone, Debug)]
pub struct TokenLogin {
    /// `MATRIX_ACCESS_TOKEN`.
    pub access_token: Secret,
    /// `MATRIX_DEVICE_ID`.
    pub device_id: matrix_sdk::ruma::OwnedDeviceId,
}

/// The bot's files.
#[derive(Clone, Debug)]
pub struct Files {
    /// `MATRIX_DB_PATH`.
    pub db_path: PathBuf,
    /// `MATRIX_STORE_PATH`.
    pub store_path: PathBuf,
}

/// How the bot uses Matrix.
#[derive(Clone, Debug)]
pub struct MatrixSettings {
    /// `MATRIX_ENCRYPT_ROOMS`.
    pub encrypt_rooms: bool,
    /// `MATRIX_SYNC`.
    pub sync: SyncMode,
}

/// Every bound (counts, rates, durations, sizes).
#[derive(Clone, Debug)]
pub struct Limits {
    /// `MATRIX_CATCHUP_MAX_AGE`.
    pub catchup_max_age: Duration,
    /// `MATRIX_MAX_CHATS_PER_USER`.
    pub max_chats_per_user: u32,
    /// `MATRIX_MAX_NEW_PER_MINUTE`.
    pub max_new_per_minute: u32,
    /// `MATRIX_SEND_RETRY_FOR`.
    pub send_retry_for: Duration,
    /// `MATRIX_MAX_MESSAGES_PER_MINUTE`.
    pub max_messages_per_minute: u32,
    /// `MATRIX_MAX_DMS_PER_USER`.
    pub max_dms_per_user: u32,
    /// `MATRIX_MAX_CONCURRENT_PROVISIONING`.
    pub max_concurrent_provisioning: u32,
    /// `MATRIX_MAX_CONCURRENT_DOWNLOADS`.
    pub max_concurrent_downloads: u32,
    /// `LAMBDA_MAX_CONCURRENT_ANSWERS`.
    pub max_concurrent_answers: u32,
    /// `MATRIX_ROOM_WORKER_IDLE`.
    pub room_worker_idle: Duration,
    /// `MATRIX_TYPING_NOTICE`.
    pub typing_notice: Duration,
    /// `MATRIX_MAX_ATTACHMENT_BYTES`.
    pub max_attachment_bytes: u64,
    /// `MATRIX_MEDIA_TIMEOUT`.
    pub media_timeout: Duration,
    /// `MATRIX_SHUTDOWN_GRACE`.
    pub shutdown_grace: Duration,
    /// `LAMBDA_PLATFORM_TIMEOUT`.
    pub platform_timeout: Duration,
    /// `LAMBDA_MAX_ANSWER_CHARS`.
    pub max_answer_chars: usize,
    /// `LAMBDA_MAX_INSTRUCTIONS_CHARS`.
    pub max_instructions_chars: usize,
    /// `LAMBDA_MAX_TOKENS_PER_DAY` (`None`: no budget).
    pub max_tokens_per_day: Option<u64>,
    /// `LAMBDA_MAX_TOKENS_PER_MONTH` (`None`: no budget).
    pub max_tokens_per_month: Option<u64>,
    /// `LAMBDA_BUDGET_FALLBACK_MODEL`.
    pub budget_fallback_model: Option<String>,
    /// `LAMBDA_USAGE_WRITE_EVERY`.
    pub usage_write_every: Duration,
    /// `METRICS_UNHEALTHY_AFTER`.
    pub unhealthy_after: Duration,
}

/// Which platform answers, and its settings.
#[derive(Clone, Debug)]
pub struct PlatformSettings {
    /// `LAMBDA_PLATFORM`.
    pub kind: PlatformKind,
    /// `LAMBDA_MOCK_*`: the mock platform's delays and failure injection.
    pub mock: MockConfig,
    /// `LAMBDA_OPENAI_*`: set when `LAMBDA_PLATFORM=openai` (its Debug hides the API key).
    pub openai: Option<OpenAiConfig>,
}

/// Language, metrics and logs.
#[derive(Clone, Debug)]
pub struct Output {
    /// `LAMBDA_LANG`.
    pub lang: Lang,
    /// `METRICS_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `RUST_LOG`.
    pub log_filter: String,
}

/// Everything wrong with the settings, one line per problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "configuration: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Settings {
    /// Whether `user_id` may use the bot.
    pub fn is_allowed(&self, user_id: &str) -> bool {
        self.identity
            .allowed_users
            .iter()
            .any(|glob| glob.matches(user_id))
    }

    /// Validates every setting and reports all problems at once.
    pub fn from_raw(raw: RawSettings) -> Result<Settings, ConfigErrors> {
        let mut check = Check::default();
        let identity = read::identity(&raw, &mut check);
        let files = read::files(&raw, &mut check);
        let matrix = read::matrix(&raw, &mut check);
        let limits = read::limits(&raw, &mut check);
        let platform = read::platform(&raw, &limits, &mut check);
        let output = read::output(&raw, &mut check);
        check.done(Settings {
            identity,
            files,
            matrix,
            limits,
            platform,
            output,
        })
    }
}

/// Collects every problem while the settings are read; a setting with a problem gets a
/// stand-in value that is never used (the settings are refused as a whole).
#[derive(Default)]
pub(crate) struct Check {
    problems: Vec<String>,
}

impl Check {
    /// The value, or the stand-in `fallback` with the problem recorded.
    pub(crate) fn or<T>(&mut self, result: Result<T, String>, fallback: impl FnOnce() -> T) -> T {
        result.unwrap_or_else(|problem| {
            self.problems.push(problem);
            fallback()
        })
    }

    fn done(self, settings: Settings) -> Result<Settings, ConfigErrors> {
        if self.problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(self.problems))
        }
    }
}

#[cfg(test)]
mod tests;
