//! The names of every setting, in one place. They are part of the product contract
//! (DESIGN.md "Configuration"): users and scripts rely on them.

pub const HOMESERVER: &str = "MATRIX_HOMESERVER";
pub const USER: &str = "MATRIX_USER";
pub const PASSWORD: &str = "MATRIX_PASSWORD";
pub const DB_PATH: &str = "MATRIX_DB_PATH";
pub const STORE_PATH: &str = "MATRIX_STORE_PATH";
pub const RECOVERY_KEY: &str = "MATRIX_RECOVERY_KEY";
pub const ALLOWED_USERS: &str = "MATRIX_ALLOWED_USERS";
pub const ENCRYPT_ROOMS: &str = "MATRIX_ENCRYPT_ROOMS";
pub const CATCHUP_MAX_AGE: &str = "MATRIX_CATCHUP_MAX_AGE";
pub const MAX_CHATS_PER_USER: &str = "MATRIX_MAX_CHATS_PER_USER";
pub const MAX_NEW_PER_MINUTE: &str = "MATRIX_MAX_NEW_PER_MINUTE";
pub const SEND_RETRY_FOR: &str = "MATRIX_SEND_RETRY_FOR";
pub const PLATFORM: &str = "LAMBDA_PLATFORM";
pub const PLATFORM_TIMEOUT: &str = "LAMBDA_PLATFORM_TIMEOUT";
pub const MAX_ANSWER_CHARS: &str = "LAMBDA_MAX_ANSWER_CHARS";
pub const LANG: &str = "LAMBDA_LANG";
pub const OPENAI_BASE_URL: &str = "LAMBDA_OPENAI_BASE_URL";
pub const OPENAI_API_KEY: &str = "LAMBDA_OPENAI_API_KEY";
pub const OPENAI_MODEL: &str = "LAMBDA_OPENAI_MODEL";
pub const OPENAI_SYSTEM_PROMPT: &str = "LAMBDA_OPENAI_SYSTEM_PROMPT";
pub const OPENAI_CONTEXT_MESSAGES: &str = "LAMBDA_OPENAI_CONTEXT_MESSAGES";
pub const OPENAI_STREAM: &str = "LAMBDA_OPENAI_STREAM";
pub const MOCK_DELAY: &str = "LAMBDA_MOCK_DELAY";
pub const MOCK_FAIL_MATCH: &str = "LAMBDA_MOCK_FAIL_MATCH";
pub const MOCK_SLOW_MATCH: &str = "LAMBDA_MOCK_SLOW_MATCH";
pub const MOCK_SLOW_DELAY: &str = "LAMBDA_MOCK_SLOW_DELAY";
pub const METRICS_ADDR: &str = "METRICS_ADDR";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const RUST_LOG: &str = "RUST_LOG";

/// Every variable, for checks that `.env.example` and the docs name them all.
pub const ALL: &[&str] = &[
    HOMESERVER,
    USER,
    PASSWORD,
    DB_PATH,
    STORE_PATH,
    RECOVERY_KEY,
    ALLOWED_USERS,
    ENCRYPT_ROOMS,
    CATCHUP_MAX_AGE,
    MAX_CHATS_PER_USER,
    MAX_NEW_PER_MINUTE,
    SEND_RETRY_FOR,
    PLATFORM,
    PLATFORM_TIMEOUT,
    MAX_ANSWER_CHARS,
    LANG,
    OPENAI_BASE_URL,
    OPENAI_API_KEY,
    OPENAI_MODEL,
    OPENAI_SYSTEM_PROMPT,
    OPENAI_CONTEXT_MESSAGES,
    OPENAI_STREAM,
    MOCK_DELAY,
    MOCK_FAIL_MATCH,
    MOCK_SLOW_MATCH,
    MOCK_SLOW_DELAY,
    METRICS_ADDR,
    LOG_FORMAT,
    RUST_LOG,
];
