//! Every setting's default, written once, as a person would write it in `.env`. The settings
//! are read with these ([`super::Settings::from_raw`]), and a test holds docs/DESIGN.md's settings table
//! to them. Settings without a default of their own (required ones, secrets, or a default
//! that depends on another setting) are not listed.

use super::vars;

/// `(variable, default)`.
pub const DEFAULTS: &[(&str, &str)] = &[
    (vars::DB_PATH, "lambda_matrix.db"),
    (vars::STORE_PATH, "matrix_store"),
    (vars::ENCRYPT_ROOMS, "true"),
    (vars::CATCHUP_MAX_AGE, "24h"),
    (vars::MAX_CHATS_PER_USER, "100"),
    (vars::MAX_NEW_PER_MINUTE, "5"),
    (vars::MAX_MESSAGES_PER_MINUTE, "30"),
    (vars::MAX_DMS_PER_USER, "3"),
    (vars::MAX_CONCURRENT_PROVISIONING, "4"),
    (vars::MAX_CONCURRENT_DOWNLOADS, "4"),
    (vars::MAX_CONCURRENT_ANSWERS, "4"),
    (vars::ROOM_WORKER_IDLE, "10m"),
    (vars::TYPING_NOTICE, "15s"),
    (vars::SYNC, "auto"),
    (vars::SEND_RETRY_FOR, "2m"),
    (vars::MAX_ATTACHMENT_BYTES, "20971520"),
    (vars::MEDIA_TIMEOUT, "60s"),
    (vars::SHUTDOWN_GRACE, "8s"),
    (vars::PLATFORM, "mock"),
    (vars::PLATFORM_TIMEOUT, "120s"),
    (vars::MAX_ANSWER_CHARS, "64000"),
    (vars::MAX_INSTRUCTIONS_CHARS, "2000"),
    (vars::USAGE_WRITE_EVERY, "60s"),
    (vars::OPENAI_CONTEXT_MESSAGES, "20"),
    (vars::OPENAI_STREAM, "true"),
    (vars::OPENAI_VISION, "true"),
    (vars::OPENAI_TRANSCRIPTION_MODEL, "whisper-1"),
    (vars::OPENAI_MAX_FILE_CHARS, "32000"),
    (vars::MOCK_DELAY, "0s"),
    (vars::MOCK_MODELS, "mock"),
    (vars::MOCK_SLOW_DELAY, "30s"),
    (vars::UNHEALTHY_AFTER, "2m"),
    (vars::LANG, "en"),
    (vars::LOG_FORMAT, "pretty"),
    (
        vars::RUST_LOG,
        "warn,lambda_matrix=info,matrix_sdk=error,matrix_sdk::http_client=off",
    ),
];

/// The default of `var`; empty for a variable without one (a bug caught by the tests, which
/// read every default).
pub fn of(var: &str) -> &'static str {
    DEFAULTS
        .iter()
        .find(|(name, _)| *name == var)
        .map_or("", |(_, default)| default)
}
