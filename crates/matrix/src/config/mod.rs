//! Settings: read from the environment, `.env` and flags, then validated as a whole before any
//! network call. Every problem is reported on its own line naming the variable.

mod glob;
mod raw;
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

/// The log filter when `RUST_LOG` is unset: `info`, without matrix-sdk's line per failed request
/// (it logs expected 404s, e.g. for absent account data, as errors; the bot logs real failures
/// itself, with context). `RUST_LOG=info` shows them.
pub const DEFAULT_LOG_FILTER: &str = "info,matrix_sdk::http_client=off";

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

/// Validated settings. Built only by [`Settings::from_raw`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// `MATRIX_HOMESERVER`.
    pub homeserver: Url,
    /// `MATRIX_USER`.
    pub user_id: OwnedUserId,
    /// `MATRIX_PASSWORD`; needed only when no saved session can be used.
    pub password: Option<Secret>,
    /// `MATRIX_DB_PATH`.
    pub db_path: PathBuf,
    /// `MATRIX_STORE_PATH`.
    pub store_path: PathBuf,
    /// `MATRIX_RECOVERY_KEY`.
    pub recovery_key: Option<Secret>,
    /// `MATRIX_ALLOWED_USERS`.
    pub allowed_users: Vec<Glob>,
    /// `MATRIX_ENCRYPT_ROOMS`.
    pub encrypt_rooms: bool,
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
    /// `MATRIX_ROOM_WORKER_IDLE`.
    pub room_worker_idle: Duration,
    /// `MATRIX_SYNC`.
    pub sync: SyncMode,
    /// `MATRIX_MAX_ATTACHMENT_BYTES`.
    pub max_attachment_bytes: u64,
    /// `MATRIX_MEDIA_TIMEOUT`.
    pub media_timeout: Duration,
    /// `MATRIX_SHUTDOWN_GRACE`.
    pub shutdown_grace: Duration,
    /// `LAMBDA_PLATFORM`.
    pub platform: PlatformKind,
    /// `LAMBDA_PLATFORM_TIMEOUT`.
    pub platform_timeout: Duration,
    /// `LAMBDA_MAX_ANSWER_CHARS`.
    pub max_answer_chars: usize,
    /// `LAMBDA_MOCK_*`: the mock platform's delays and failure injection.
    pub mock: MockConfig,
    /// `LAMBDA_OPENAI_*`: set when `LAMBDA_PLATFORM=openai` (its Debug hides the API key).
    pub openai: Option<OpenAiConfig>,
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
        self.allowed_users.iter().any(|glob| glob.matches(user_id))
    }

    /// Validates every setting and reports all problems at once.
    pub fn from_raw(raw: RawSettings) -> Result<Settings, ConfigErrors> {
        let mut check = Check::default();
        let identity = identity(&raw, &mut check);
        let limits = limits(&raw, &mut check);
        let platform = platform(&raw, &limits, &mut check);
        let output = output(&raw, &mut check);
        let settings = Settings {
            homeserver: identity.homeserver,
            user_id: identity.user_id,
            password: non_empty(raw.password).map(Secret::from),
            db_path: check.or(
                path_or(&raw.db_path, vars::DB_PATH, "lambda_matrix.db"),
                PathBuf::new,
            ),
            store_path: check.or(
                path_or(&raw.store_path, vars::STORE_PATH, "matrix_store"),
                PathBuf::new,
            ),
            recovery_key: non_empty(raw.recovery_key).map(Secret::from),
            allowed_users: identity.allowed_users,
            encrypt_rooms: check.or(
                parse_bool(raw.encrypt_rooms.as_deref(), vars::ENCRYPT_ROOMS, true),
                || true,
            ),
            catchup_max_age: limits.catchup_max_age,
            max_chats_per_user: limits.max_chats_per_user,
            max_new_per_minute: limits.max_new_per_minute,
            send_retry_for: limits.send_retry_for,
            max_messages_per_minute: limits.max_messages_per_minute,
            max_dms_per_user: limits.max_dms_per_user,
            max_concurrent_provisioning: limits.max_concurrent_provisioning,
            room_worker_idle: limits.room_worker_idle,
            sync: check.or(parse_sync(raw.sync.as_deref()), SyncMode::default),
            max_attachment_bytes: limits.max_attachment_bytes,
            media_timeout: limits.media_timeout,
            shutdown_grace: limits.shutdown_grace,
            platform: platform.kind,
            platform_timeout: limits.platform_timeout,
            max_answer_chars: limits.max_answer_chars,
            mock: platform.mock,
            openai: platform.openai,
            lang: output.lang,
            metrics_addr: output.metrics_addr,
            log_format: output.log_format,
            log_filter: output.log_filter,
        };
        check.done(settings)
    }
}

fn parse_sync(value: Option<&str>) -> Result<SyncMode, String> {
    match value.map(str::trim).unwrap_or("auto") {
        "auto" | "" => Ok(SyncMode::Auto),
        "sliding" => Ok(SyncMode::Sliding),
        "v2" => Ok(SyncMode::V2),
        other => Err(format!(
            "{}: unknown sync {other:?}; use auto, sliding or v2",
            vars::SYNC
        )),
    }
}

/// Collects every problem while the settings are read; a setting with a problem gets a
/// stand-in value that is never used (the settings are refused as a whole).
#[derive(Default)]
struct Check {
    problems: Vec<String>,
}

impl Check {
    /// The value, or the stand-in `fallback` with the problem recorded.
    fn or<T>(&mut self, result: Result<T, String>, fallback: impl FnOnce() -> T) -> T {
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

/// Where the bot logs in, as whom, and who may use it.
struct Identity {
    homeserver: Url,
    user_id: OwnedUserId,
    allowed_users: Vec<Glob>,
}

fn identity(raw: &RawSettings, check: &mut Check) -> Identity {
    let homeserver = required(
        &raw.homeserver,
        vars::HOMESERVER,
        "the homeserver URL, e.g. http://127.0.0.1:8008",
    )
    .and_then(|s| parse_homeserver(&s));
    let user_id = required(
        &raw.user,
        vars::USER,
        "the bot's user id, e.g. @bot:example.org",
    )
    .and_then(|s| {
        OwnedUserId::try_from(s.as_str()).map_err(|_| {
            format!(
                "{}: {s:?} is not a Matrix user id like @bot:example.org",
                vars::USER
            )
        })
    });
    let allowed_users = match (&raw.allowed_users, &user_id) {
        (Some(list), _) => parse_globs(list),
        (None, Ok(user)) => parse_globs(&format!("@*:{}", user.server_name())),
        (None, Err(_)) => Ok(Vec::new()), // reported under MATRIX_USER
    };
    let stand_in_url = || Url::parse("http://invalid.invalid").unwrap_or_else(|_| unreachable!());
    let stand_in_user = || matrix_sdk::ruma::user_id!("@invalid:invalid").to_owned();
    Identity {
        homeserver: check.or(homeserver, stand_in_url),
        user_id: check.or(user_id, stand_in_user),
        allowed_users: check.or(allowed_users, Vec::new),
    }
}

/// Every bound (counts, rates, durations, sizes).
struct Limits {
    catchup_max_age: Duration,
    max_chats_per_user: u32,
    max_new_per_minute: u32,
    send_retry_for: Duration,
    max_messages_per_minute: u32,
    max_dms_per_user: u32,
    max_concurrent_provisioning: u32,
    room_worker_idle: Duration,
    platform_timeout: Duration,
    max_answer_chars: usize,
    max_attachment_bytes: u64,
    media_timeout: Duration,
    shutdown_grace: Duration,
}

/// `MATRIX_MAX_ATTACHMENT_BYTES`'s default: 20 MiB.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u32 = 20 * 1024 * 1024;

fn limits(raw: &RawSettings, check: &mut Check) -> Limits {
    let mut duration = |value: &Option<String>, var, default, nonzero| {
        check.or(
            parse_duration(value.as_deref(), var, default, nonzero),
            || Duration::ZERO,
        )
    };
    let catchup_max_age = duration(&raw.catchup_max_age, vars::CATCHUP_MAX_AGE, "24h", false);
    let send_retry_for = duration(&raw.send_retry_for, vars::SEND_RETRY_FOR, "2m", false);
    let room_worker_idle = duration(&raw.room_worker_idle, vars::ROOM_WORKER_IDLE, "10m", true);
    let platform_timeout = duration(&raw.platform_timeout, vars::PLATFORM_TIMEOUT, "120s", true);
    let media_timeout = duration(&raw.media_timeout, vars::MEDIA_TIMEOUT, "60s", true);
    let shutdown_grace = duration(&raw.shutdown_grace, vars::SHUTDOWN_GRACE, "8s", false);
    let mut count = |value: &Option<String>, var, default| {
        check.or(parse_count(value.as_deref(), var, default), || 1)
    };
    let max_chats_per_user = count(&raw.max_chats_per_user, vars::MAX_CHATS_PER_USER, 100);
    let max_new_per_minute = count(&raw.max_new_per_minute, vars::MAX_NEW_PER_MINUTE, 5);
    let max_messages_per_minute = count(
        &raw.max_messages_per_minute,
        vars::MAX_MESSAGES_PER_MINUTE,
        30,
    );
    let max_dms_per_user = count(&raw.max_dms_per_user, vars::MAX_DMS_PER_USER, 3);
    let max_concurrent_provisioning = count(
        &raw.max_concurrent_provisioning,
        vars::MAX_CONCURRENT_PROVISIONING,
        4,
    );
    let max_attachment_bytes = u64::from(count(
        &raw.max_attachment_bytes,
        vars::MAX_ATTACHMENT_BYTES,
        DEFAULT_MAX_ATTACHMENT_BYTES,
    ));
    let max_answer_chars = count(
        &raw.max_answer_chars,
        vars::MAX_ANSWER_CHARS,
        lambda_matrix_platform::DEFAULT_MAX_ANSWER_CHARS as u32,
    ) as usize;
    let max_answer_chars = check.or(
        if max_answer_chars < 100 {
            Err(format!(
                "{}: {max_answer_chars} is too small; use at least 100",
                vars::MAX_ANSWER_CHARS
            ))
        } else {
            Ok(max_answer_chars)
        },
        || 100,
    );
    Limits {
        catchup_max_age,
        max_chats_per_user,
        max_new_per_minute,
        send_retry_for,
        max_messages_per_minute,
        max_dms_per_user,
        max_concurrent_provisioning,
        room_worker_idle,
        platform_timeout,
        max_answer_chars,
        max_attachment_bytes,
        media_timeout,
        shutdown_grace,
    }
}

/// Which platform answers, and its settings.
struct PlatformSettings {
    kind: PlatformKind,
    mock: MockConfig,
    openai: Option<OpenAiConfig>,
}

fn platform(raw: &RawSettings, limits: &Limits, check: &mut Check) -> PlatformSettings {
    let kind = match raw.platform.as_deref().map(str::trim).unwrap_or("mock") {
        "mock" => Ok(PlatformKind::Mock),
        "openai" => Ok(PlatformKind::OpenAi),
        other => Err(format!(
            "{}: unknown platform {other:?}; use mock or openai",
            vars::PLATFORM
        )),
    };
    let kind = check.or(kind, || PlatformKind::Mock);
    let openai = match kind {
        PlatformKind::OpenAi => check.or(
            openai(raw, limits.platform_timeout, limits.max_answer_chars).map(Some),
            || None,
        ),
        PlatformKind::Mock => None,
    };
    let mut duration = |value: &Option<String>, var, default| {
        check.or(
            parse_duration(value.as_deref(), var, default, false),
            || Duration::ZERO,
        )
    };
    let mock = MockConfig {
        delay: duration(&raw.mock_delay, vars::MOCK_DELAY, "0s"),
        fail_when_contains: non_empty(raw.mock_fail_match.clone()),
        fail_every: None,
        slow_when_contains: non_empty(raw.mock_slow_match.clone()),
        slow_delay: duration(&raw.mock_slow_delay, vars::MOCK_SLOW_DELAY, "30s"),
        max_answer_chars: limits.max_answer_chars,
    };
    PlatformSettings { kind, mock, openai }
}

/// Language, metrics and logs.
struct Output {
    lang: Lang,
    metrics_addr: Option<SocketAddr>,
    log_format: LogFormat,
    log_filter: String,
}

fn output(raw: &RawSettings, check: &mut Check) -> Output {
    let lang = match raw.lang.as_deref().map(str::trim).unwrap_or("en") {
        "en" => Ok(Lang::En),
        "ru" => Ok(Lang::Ru),
        other => Err(format!(
            "{}: unknown language {other:?}; use en or ru",
            vars::LANG
        )),
    };
    let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(addr) => addr.parse::<SocketAddr>().map(Some).map_err(|_| {
            format!(
                "{}: {addr:?} is not host:port, e.g. 127.0.0.1:9100",
                vars::METRICS_ADDR
            )
        }),
    };
    let log_format = match raw.log_format.as_deref().map(str::trim).unwrap_or("pretty") {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "{}: unknown format {other:?}; use pretty or json",
            vars::LOG_FORMAT
        )),
    };
    let log_filter = raw
        .rust_log
        .clone()
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
    let filter_ok = tracing_subscriber::EnvFilter::try_new(&log_filter)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{}: {log_filter:?} is not a valid log filter: {e}",
                vars::RUST_LOG
            )
        });
    check.or(filter_ok, || ());
    Output {
        lang: check.or(lang, || Lang::En),
        metrics_addr: check.or(metrics_addr, || None),
        log_format: check.or(log_format, || LogFormat::Pretty),
        log_filter,
    }
}

/// The `LAMBDA_OPENAI_*` settings; problems joined on one line each.
fn openai(
    raw: &RawSettings,
    timeout: Duration,
    max_answer_chars: usize,
) -> Result<OpenAiConfig, String> {
    let base_url = required(
        &raw.openai_base_url,
        vars::OPENAI_BASE_URL,
        "the chat-completions server, e.g. http://127.0.0.1:11434/v1 for Ollama",
    )
    .and_then(|s| match Url::parse(&s) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(s),
        _ => Err(format!(
            "{}: {s:?} is not an http(s) URL like http://127.0.0.1:8080/v1",
            vars::OPENAI_BASE_URL
        )),
    })?;
    let context_messages = match raw.openai_context_messages.as_deref().map(str::trim) {
        None | Some("") => lambda_matrix_platform::openai::DEFAULT_CONTEXT_MESSAGES,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 1000)
            .ok_or_else(|| {
                format!(
                    "{}: {n:?} is not a whole number from 0 to 1000",
                    vars::OPENAI_CONTEXT_MESSAGES
                )
            })?,
    };
    let stream = parse_bool(raw.openai_stream.as_deref(), vars::OPENAI_STREAM, true)?;
    let vision = parse_bool(raw.openai_vision.as_deref(), vars::OPENAI_VISION, true)?;
    let transcription_model = match raw.openai_transcription_model.as_deref().map(str::trim) {
        None | Some("") => {
            Some(lambda_matrix_platform::openai::DEFAULT_TRANSCRIPTION_MODEL.to_owned())
        }
        Some("none") => None,
        Some(model) => Some(model.to_owned()),
    };
    let max_file_chars = parse_count(
        raw.openai_max_file_chars.as_deref(),
        vars::OPENAI_MAX_FILE_CHARS,
        lambda_matrix_platform::openai::DEFAULT_MAX_FILE_CHARS as u32,
    )? as usize;
    let mut config = OpenAiConfig::new(base_url);
    config.api_key = non_empty(raw.openai_api_key.clone()).map(|k| k.trim().to_owned());
    config.model = non_empty(raw.openai_model.clone()).map(|m| m.trim().to_owned());
    config.system_prompt = non_empty(raw.openai_system_prompt.clone());
    config.timeout = timeout;
    config.context_messages = context_messages;
    config.stream = stream;
    config.max_answer_chars = max_answer_chars;
    config.vision = vision;
    config.transcription_model = transcription_model;
    config.max_file_chars = max_file_chars;
    Ok(config)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

fn required(value: &Option<String>, var: &str, what: &str) -> Result<String, String> {
    non_empty(value.clone())
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| format!("{var} is required ({what})"))
}

fn parse_homeserver(s: &str) -> Result<Url, String> {
    match Url::parse(s) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(format!(
            "{}: {s:?} is not an http(s) URL like https://matrix.example.org",
            vars::HOMESERVER
        )),
    }
}

fn parse_globs(list: &str) -> Result<Vec<Glob>, String> {
    let globs: Vec<Glob> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            Glob::new(p).ok_or_else(|| {
                format!(
                    "{}: pattern {p:?} must not contain spaces",
                    vars::ALLOWED_USERS
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if globs.is_empty() {
        return Err(format!(
            "{}: no patterns given; use e.g. @*:example.org, or leave it unset for the bot's own server",
            vars::ALLOWED_USERS
        ));
    }
    Ok(globs)
}

fn parse_bool(value: Option<&str>, var: &str, default: bool) -> Result<bool, String> {
    match value.map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(s) => match s.as_str() {
            "" => Ok(default),
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("{var}: {s:?} is not true or false")),
        },
    }
}

fn parse_duration(
    value: Option<&str>,
    var: &str,
    default: &str,
    nonzero: bool,
) -> Result<Duration, String> {
    let text = value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(d) if nonzero && d.is_zero() => Err(format!("{var}: must be longer than zero")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "{var}: {text:?} is not a duration like 30s, 5m or 24h"
        )),
    }
}

fn parse_count(value: Option<&str>, var: &str, default: u32) -> Result<u32, String> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{var}: {s:?} is not a whole number of at least 1")),
        },
    }
}

fn path_or(value: &Option<String>, var: &str, default: &str) -> Result<PathBuf, String> {
    match value.as_deref() {
        None => Ok(PathBuf::from(default)),
        Some(s) if s.trim().is_empty() => {
            Err(format!("{var} is set but empty; unset it for {default}"))
        }
        Some(s) => Ok(PathBuf::from(s)),
    }
}

#[cfg(test)]
mod tests;
