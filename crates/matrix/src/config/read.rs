//! Reading each group of settings from the raw values; every problem goes to the [`Check`],
//! and a setting with a problem gets a stand-in value that is never used.

use super::parse::{self, non_empty, required};
use super::{
    defaults, vars, Check, Files, Identity, Lang, Limits, LogFormat, MatrixSettings, Output,
    PlatformKind, PlatformSettings, RawSettings, Secret, SyncMode, TokenLogin,
};
use lambda_matrix_platform::{MockConfig, OpenAiConfig};
use matrix_sdk::ruma::OwnedUserId;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

pub(super) fn identity(raw: &RawSettings, check: &mut Check) -> Identity {
    let homeserver = required(
        &raw.homeserver,
        vars::HOMESERVER,
        "the homeserver URL, e.g. http://127.0.0.1:8008",
    )
    .and_then(|s| parse::homeserver(&s));
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
        (Some(list), _) => parse::globs(list),
        (None, Ok(user)) => parse::globs(&format!("@*:{}", user.server_name())),
        (None, Err(_)) => Ok(Vec::new()), // reported under MATRIX_USER
    };
    let token = token_login(raw);
    let stand_in_url = || Url::parse("http://invalid.invalid").unwrap_or_else(|_| unreachable!());
    let stand_in_user = || matrix_sdk::ruma::user_id!("@invalid:invalid").to_owned();
    Identity {
        homeserver: check.or(homeserver, stand_in_url),
        user_id: check.or(user_id, stand_in_user),
        password: non_empty(raw.password.clone()).map(Secret::from),
        token: check.or(token, || None),
        recovery_key: non_empty(raw.recovery_key.clone()).map(Secret::from),
        allowed_users: check.or(allowed_users, Vec::new),
    }
}

/// `MATRIX_ACCESS_TOKEN` and `MATRIX_DEVICE_ID`: both or neither.
fn token_login(raw: &RawSettings) -> Result<Option<TokenLogin>, String> {
    match (
        non_empty(raw.access_token.clone()),
        non_empty(raw.device_id.clone()),
    ) {
        (None, None) => Ok(None),
        (Some(token), Some(device)) => Ok(Some(TokenLogin {
            access_token: Secret::from(token),
            device_id: device.trim().into(),
        })),
        (Some(_), None) => Err(format!(
            "{}: needed with {} (the device the token belongs to)",
            vars::DEVICE_ID,
            vars::ACCESS_TOKEN
        )),
        (None, Some(_)) => Err(format!(
            "{}: {} is set but no token; set both, or neither to log in with {}",
            vars::ACCESS_TOKEN,
            vars::DEVICE_ID,
            vars::PASSWORD
        )),
    }
}

pub(super) fn files(raw: &RawSettings, check: &mut Check) -> Files {
    Files {
        db_path: check.or(parse::path(&raw.db_path, vars::DB_PATH), PathBuf::new),
        store_path: check.or(parse::path(&raw.store_path, vars::STORE_PATH), PathBuf::new),
    }
}

pub(super) fn matrix(raw: &RawSettings, check: &mut Check) -> MatrixSettings {
    let sync = parse::choice(
        raw.sync.as_deref(),
        vars::SYNC,
        "sync",
        &["auto", "sliding", "v2"],
    )
    .map(|mode| match mode {
        "sliding" => SyncMode::Sliding,
        "v2" => SyncMode::V2,
        _ => SyncMode::Auto,
    });
    MatrixSettings {
        encrypt_rooms: check.or(
            parse::bool(raw.encrypt_rooms.as_deref(), vars::ENCRYPT_ROOMS),
            || true,
        ),
        sync: check.or(sync, SyncMode::default),
    }
}

pub(super) fn limits(raw: &RawSettings, check: &mut Check) -> Limits {
    let mut duration = |value: &Option<String>, var, nonzero| {
        check.or(parse::duration(value.as_deref(), var, nonzero), || {
            Duration::ZERO
        })
    };
    let catchup_max_age = duration(&raw.catchup_max_age, vars::CATCHUP_MAX_AGE, false);
    let send_retry_for = duration(&raw.send_retry_for, vars::SEND_RETRY_FOR, false);
    let room_worker_idle = duration(&raw.room_worker_idle, vars::ROOM_WORKER_IDLE, true);
    let typing_notice = duration(&raw.typing_notice, vars::TYPING_NOTICE, true);
    let platform_timeout = duration(&raw.platform_timeout, vars::PLATFORM_TIMEOUT, true);
    let media_timeout = duration(&raw.media_timeout, vars::MEDIA_TIMEOUT, true);
    let shutdown_grace = duration(&raw.shutdown_grace, vars::SHUTDOWN_GRACE, false);
    let usage_write_every = duration(&raw.usage_write_every, vars::USAGE_WRITE_EVERY, true);
    let unhealthy_after = duration(&raw.unhealthy_after, vars::UNHEALTHY_AFTER, true);
    let mut count =
        |value: &Option<String>, var| check.or(parse::count(value.as_deref(), var), || 1);
    let max_chats_per_user = count(&raw.max_chats_per_user, vars::MAX_CHATS_PER_USER);
    let max_new_per_minute = count(&raw.max_new_per_minute, vars::MAX_NEW_PER_MINUTE);
    let max_messages_per_minute =
        count(&raw.max_messages_per_minute, vars::MAX_MESSAGES_PER_MINUTE);
    let max_dms_per_user = count(&raw.max_dms_per_user, vars::MAX_DMS_PER_USER);
    let max_concurrent_provisioning = count(
        &raw.max_concurrent_provisioning,
        vars::MAX_CONCURRENT_PROVISIONING,
    );
    let max_concurrent_downloads = count(
        &raw.max_concurrent_downloads,
        vars::MAX_CONCURRENT_DOWNLOADS,
    );
    let max_concurrent_answers = count(&raw.max_concurrent_answers, vars::MAX_CONCURRENT_ANSWERS);
    let max_attachment_bytes =
        u64::from(count(&raw.max_attachment_bytes, vars::MAX_ATTACHMENT_BYTES));
    let max_answer_chars = count(&raw.max_answer_chars, vars::MAX_ANSWER_CHARS) as usize;
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
    let (max_instructions_chars, max_tokens_per_day, max_tokens_per_month) =
        per_chat_and_person(raw, check);
    Limits {
        catchup_max_age,
        max_chats_per_user,
        max_new_per_minute,
        send_retry_for,
        max_messages_per_minute,
        max_dms_per_user,
        max_concurrent_provisioning,
        max_concurrent_downloads,
        max_concurrent_answers,
        room_worker_idle,
        typing_notice,
        max_attachment_bytes,
        media_timeout,
        shutdown_grace,
        platform_timeout,
        max_answer_chars,
        max_instructions_chars,
        max_tokens_per_day,
        max_tokens_per_month,
        budget_fallback_model: non_empty(raw.budget_fallback_model.clone())
            .map(|model| model.trim().to_owned()),
        usage_write_every,
        unhealthy_after,
    }
}

/// `LAMBDA_MAX_INSTRUCTIONS_CHARS`, `LAMBDA_MAX_TOKENS_PER_DAY`, `LAMBDA_MAX_TOKENS_PER_MONTH`.
fn per_chat_and_person(raw: &RawSettings, check: &mut Check) -> (usize, Option<u64>, Option<u64>) {
    let max_instructions_chars = check.or(
        parse::up_to(
            raw.max_instructions_chars.as_deref(),
            vars::MAX_INSTRUCTIONS_CHARS,
            4000,
        )
        .and_then(|n| match n {
            0 => Err(format!(
                "{}: 0 is too small; use 1 to 4000",
                vars::MAX_INSTRUCTIONS_CHARS
            )),
            n => Ok(n),
        }),
        || 1,
    );
    let day = parse::budget(raw.max_tokens_per_day.as_deref(), vars::MAX_TOKENS_PER_DAY);
    let month = parse::budget(
        raw.max_tokens_per_month.as_deref(),
        vars::MAX_TOKENS_PER_MONTH,
    );
    (
        max_instructions_chars,
        check.or(day, || None),
        check.or(month, || None),
    )
}

pub(super) fn platform(raw: &RawSettings, limits: &Limits, check: &mut Check) -> PlatformSettings {
    let kind = parse::choice(
        raw.platform.as_deref(),
        vars::PLATFORM,
        "platform",
        &["mock", "openai"],
    )
    .map(|kind| match kind {
        "openai" => PlatformKind::OpenAi,
        _ => PlatformKind::Mock,
    });
    let kind = check.or(kind, || PlatformKind::Mock);
    let openai = match kind {
        PlatformKind::OpenAi => check.or(openai(raw, limits).map(Some), || None),
        PlatformKind::Mock => None,
    };
    let mut duration = |value: &Option<String>, var| {
        check.or(parse::duration(value.as_deref(), var, false), || {
            Duration::ZERO
        })
    };
    let mock = MockConfig {
        delay: duration(&raw.mock_delay, vars::MOCK_DELAY),
        fail_when_contains: non_empty(raw.mock_fail_match.clone()),
        fail_every: None,
        slow_when_contains: non_empty(raw.mock_slow_match.clone()),
        slow_delay: duration(&raw.mock_slow_delay, vars::MOCK_SLOW_DELAY),
        max_answer_chars: limits.max_answer_chars,
        models: check.or(
            parse::names(raw.mock_models.as_deref(), vars::MOCK_MODELS),
            || vec![defaults::of(vars::MOCK_MODELS).to_owned()],
        ),
    };
    PlatformSettings { kind, mock, openai }
}

pub(super) fn output(raw: &RawSettings, check: &mut Check) -> Output {
    let lang =
        parse::choice(raw.lang.as_deref(), vars::LANG, "language", &["en", "ru"]).map(|lang| {
            match lang {
                "ru" => Lang::Ru,
                _ => Lang::En,
            }
        });
    let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(addr) => addr.parse::<SocketAddr>().map(Some).map_err(|_| {
            format!(
                "{}: {addr:?} is not host:port, e.g. 127.0.0.1:9100",
                vars::METRICS_ADDR
            )
        }),
    };
    let log_format = parse::choice(
        raw.log_format.as_deref(),
        vars::LOG_FORMAT,
        "format",
        &["pretty", "json"],
    )
    .map(|format| match format {
        "json" => LogFormat::Json,
        _ => LogFormat::Pretty,
    });
    let log_filter = raw
        .rust_log
        .clone()
        .unwrap_or_else(|| defaults::of(vars::RUST_LOG).to_owned());
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
fn openai(raw: &RawSettings, limits: &Limits) -> Result<OpenAiConfig, String> {
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
    let context_messages = parse::up_to(
        raw.openai_context_messages.as_deref(),
        vars::OPENAI_CONTEXT_MESSAGES,
        1000,
    )?;
    let stream = parse::bool(raw.openai_stream.as_deref(), vars::OPENAI_STREAM)?;
    let vision = parse::bool(raw.openai_vision.as_deref(), vars::OPENAI_VISION)?;
    let transcription_model = match raw.openai_transcription_model.as_deref().map(str::trim) {
        Some("none") => None,
        Some(model) if !model.is_empty() => Some(model.to_owned()),
        _ => Some(defaults::of(vars::OPENAI_TRANSCRIPTION_MODEL).to_owned()),
    };
    let max_file_chars = parse::count(
        raw.openai_max_file_chars.as_deref(),
        vars::OPENAI_MAX_FILE_CHARS,
    )? as usize;
    let mut config = OpenAiConfig::new(base_url);
    config.api_key = non_empty(raw.openai_api_key.clone()).map(|k| k.trim().to_owned());
    config.model = non_empty(raw.openai_model.clone()).map(|m| m.trim().to_owned());
    config.system_prompt = non_empty(raw.openai_system_prompt.clone());
    config.allowed_models = parse::names(raw.openai_models.as_deref(), vars::OPENAI_MODELS)?;
    config.timeout = limits.platform_timeout;
    config.context_messages = context_messages;
    config.stream = stream;
    config.max_answer_chars = limits.max_answer_chars;
    config.vision = vision;
    config.transcription_model = transcription_model;
    config.max_file_chars = max_file_chars;
    Ok(config)
}
