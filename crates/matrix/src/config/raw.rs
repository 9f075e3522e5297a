//! The settings as given: environment (after `.env`) and flags, unvalidated.

use super::vars;
use clap::Args;

/// Every setting as text, from a flag or its environment variable (flags win).
/// `.env` in the working directory fills variables the environment does not set.
#[derive(Args, Clone, Default)]
pub struct RawSettings {
    /// Homeserver base URL.
    #[arg(long, env = vars::HOMESERVER, global = true, value_name = "URL")]
    pub homeserver: Option<String>,
    /// The bot's user id (@bot:example.org).
    #[arg(long = "user", env = vars::USER, global = true, value_name = "USER_ID")]
    pub user: Option<String>,
    /// The bot's password; needed for the first login. Prefer the environment to a flag.
    #[arg(long, env = vars::PASSWORD, global = true, hide_env_values = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// An access token for the bot's device (a login service's compatibility token, or one an
    /// admin minted), used instead of a password login; needs the device id. Prefer the
    /// environment to a flag.
    #[arg(long, env = vars::ACCESS_TOKEN, global = true, hide_env_values = true, value_name = "TOKEN")]
    pub access_token: Option<String>,
    /// The device the access token belongs to.
    #[arg(long, env = vars::DEVICE_ID, global = true, value_name = "DEVICE_ID")]
    pub device_id: Option<String>,
    /// The bot's own SQLite cache [default: lambda_matrix.db].
    #[arg(long, env = vars::DB_PATH, global = true, value_name = "FILE")]
    pub db_path: Option<String>,
    /// The SDK's store folder (state, crypto) and the saved session [default: matrix_store].
    #[arg(long, env = vars::STORE_PATH, global = true, value_name = "DIR")]
    pub store_path: Option<String>,
    /// Secret-storage recovery key.
    #[arg(long, env = vars::RECOVERY_KEY, global = true, hide_env_values = true, value_name = "KEY")]
    pub recovery_key: Option<String>,
    /// Comma-separated glob patterns of who may use the bot [default: users on the bot's server].
    #[arg(long, env = vars::ALLOWED_USERS, global = true, value_name = "PATTERNS")]
    pub allowed_users: Option<String>,
    /// Whether rooms the bot creates are end-to-end encrypted [default: true].
    #[arg(long, env = vars::ENCRYPT_ROOMS, global = true, value_name = "BOOL")]
    pub encrypt_rooms: Option<String>,
    /// How the first snapshot of every room is fetched when the SDK store is new: auto, sliding
    /// or v2 [default: auto]. The live loop is always `/sync` v2.
    #[arg(long, env = vars::SYNC, global = true, value_name = "auto|sliding|v2")]
    pub sync: Option<String>,
    /// How far back unanswered messages are caught up after downtime [default: 24h].
    #[arg(long, env = vars::CATCHUP_MAX_AGE, global = true, value_name = "DURATION")]
    pub catchup_max_age: Option<String>,
    /// Cap on chats per person [default: 100].
    #[arg(long, env = vars::MAX_CHATS_PER_USER, global = true, value_name = "N")]
    pub max_chats_per_user: Option<String>,
    /// Cap on room-creating commands per person per minute [default: 5].
    #[arg(long, env = vars::MAX_NEW_PER_MINUTE, global = true, value_name = "N")]
    pub max_new_per_minute: Option<String>,
    /// How long a failed send is tried again before the room is left for the next start [default: 2m].
    #[arg(long, env = vars::SEND_RETRY_FOR, global = true, value_name = "DURATION")]
    pub send_retry_for: Option<String>,
    /// Cap on messages per person per minute; more are refused with a notice [default: 30].
    #[arg(long, env = vars::MAX_MESSAGES_PER_MINUTE, global = true, value_name = "N")]
    pub max_messages_per_minute: Option<String>,
    /// Cap on direct chats per person; the bot leaves a further one with a notice [default: 3].
    #[arg(long, env = vars::MAX_DMS_PER_USER, global = true, value_name = "N")]
    pub max_dms_per_user: Option<String>,
    /// How many first contacts are provisioned at once [default: 4].
    #[arg(long, env = vars::MAX_CONCURRENT_PROVISIONING, global = true, value_name = "N")]
    pub max_concurrent_provisioning: Option<String>,
    /// Attachment bodies held in memory at once, shared fairly between people [default: 4].
    #[arg(long, env = vars::MAX_CONCURRENT_DOWNLOADS, global = true, value_name = "N")]
    pub max_concurrent_downloads: Option<String>,
    /// Platform calls at once, shared fairly between people [default: 4].
    #[arg(long, env = vars::MAX_CONCURRENT_ANSWERS, global = true, value_name = "N")]
    pub max_concurrent_answers: Option<String>,
    /// How long a room's worker waits idle before it exits (and frees its memory) [default: 10m].
    #[arg(long, env = vars::ROOM_WORKER_IDLE, global = true, value_name = "DURATION")]
    pub room_worker_idle: Option<String>,
    /// How long each typing notice lasts; renewed three times in that while an answer is made
    /// [default: 15s].
    #[arg(long, env = vars::TYPING_NOTICE, global = true, value_name = "DURATION")]
    pub typing_notice: Option<String>,
    /// Largest attachment (image, voice message, file) in bytes; a larger one gets a reply
    /// instead of an answer [default: 20971520].
    #[arg(long, env = vars::MAX_ATTACHMENT_BYTES, global = true, value_name = "BYTES")]
    pub max_attachment_bytes: Option<String>,
    /// How long fetching one attachment from the media repository may take [default: 60s].
    #[arg(long, env = vars::MEDIA_TIMEOUT, global = true, value_name = "DURATION")]
    pub media_timeout: Option<String>,
    /// On a stop (SIGTERM, Ctrl-C), how long answers in progress may take to finish before
    /// the bot exits; 0 exits at once (they are finished at the next start) [default: 8s].
    #[arg(long, env = vars::SHUTDOWN_GRACE, global = true, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Which platform answers [default: mock].
    #[arg(long, env = vars::PLATFORM, global = true, value_name = "NAME")]
    pub platform: Option<String>,
    /// How long one answer may take [default: 120s].
    #[arg(long, env = vars::PLATFORM_TIMEOUT, global = true, value_name = "DURATION")]
    pub platform_timeout: Option<String>,
    /// Longest answer, in characters; longer ones are cut with a note [default: 64000].
    #[arg(long, env = vars::MAX_ANSWER_CHARS, global = true, value_name = "N")]
    pub max_answer_chars: Option<String>,
    /// Longest instructions a chat may have (`!instructions`), in characters [default: 2000].
    #[arg(long, env = vars::MAX_INSTRUCTIONS_CHARS, global = true, value_name = "N")]
    pub max_instructions_chars: Option<String>,
    /// Tokens one person may use per UTC day (prompt and completion, every model) [default: no budget].
    #[arg(long, env = vars::MAX_TOKENS_PER_DAY, global = true, value_name = "TOKENS")]
    pub max_tokens_per_day: Option<String>,
    /// Tokens one person may use per UTC month [default: no budget].
    #[arg(long, env = vars::MAX_TOKENS_PER_MONTH, global = true, value_name = "TOKENS")]
    pub max_tokens_per_month: Option<String>,
    /// The model that answers a person over a budget, marked so [default: none; they get a notice].
    #[arg(long, env = vars::BUDGET_FALLBACK_MODEL, global = true, value_name = "MODEL")]
    pub budget_fallback_model: Option<String>,
    /// How often changed token totals are written to the homeserver; a kill -9 loses at most
    /// this much of them [default: 60s].
    #[arg(long, env = vars::USAGE_WRITE_EVERY, global = true, value_name = "DURATION")]
    pub usage_write_every: Option<String>,
    /// OpenAI-compatible platform: base URL, e.g. http://127.0.0.1:11434/v1 (required for openai).
    #[arg(long, env = vars::OPENAI_BASE_URL, global = true, value_name = "URL")]
    pub openai_base_url: Option<String>,
    /// OpenAI-compatible platform: API key, if the server needs one. Prefer the environment.
    #[arg(long, env = vars::OPENAI_API_KEY, global = true, value_name = "KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    /// OpenAI-compatible platform: model [default: the server's only model].
    #[arg(long, env = vars::OPENAI_MODEL, global = true, value_name = "MODEL")]
    pub openai_model: Option<String>,
    /// OpenAI-compatible platform: system prompt [default: none].
    #[arg(long, env = vars::OPENAI_SYSTEM_PROMPT, global = true, value_name = "TEXT")]
    pub openai_system_prompt: Option<String>,
    /// OpenAI-compatible platform: the models a chat may choose with `!model`, comma-separated
    /// [default: every model the server lists].
    #[arg(long, env = vars::OPENAI_MODELS, global = true, value_name = "MODELS")]
    pub openai_models: Option<String>,
    /// OpenAI-compatible platform: earlier messages of the chat sent as context [default: 20].
    #[arg(long, env = vars::OPENAI_CONTEXT_MESSAGES, global = true, value_name = "N")]
    pub openai_context_messages: Option<String>,
    /// OpenAI-compatible platform: stream answers by editing the reply [default: true].
    #[arg(long, env = vars::OPENAI_STREAM, global = true, value_name = "BOOL")]
    pub openai_stream: Option<String>,
    /// OpenAI-compatible platform: whether the model sees images [default: true].
    #[arg(long, env = vars::OPENAI_VISION, global = true, value_name = "BOOL")]
    pub openai_vision: Option<String>,
    /// OpenAI-compatible platform: model for /audio/transcriptions; `none` refuses audio [default: whisper-1].
    #[arg(long, env = vars::OPENAI_TRANSCRIPTION_MODEL, global = true, value_name = "MODEL")]
    pub openai_transcription_model: Option<String>,
    /// OpenAI-compatible platform: characters of one text file put into the message [default: 32000].
    #[arg(long, env = vars::OPENAI_MAX_FILE_CHARS, global = true, value_name = "N")]
    pub openai_max_file_chars: Option<String>,
    /// Mock platform: time each answer takes [default: 0s].
    #[arg(long, env = vars::MOCK_DELAY, global = true, value_name = "DURATION")]
    pub mock_delay: Option<String>,
    /// Mock platform: the models it offers, comma-separated, its default first [default: mock].
    #[arg(long, env = vars::MOCK_MODELS, global = true, value_name = "MODELS")]
    pub mock_models: Option<String>,
    /// Mock platform: messages containing this text fail (failure injection).
    #[arg(long, env = vars::MOCK_FAIL_MATCH, global = true, value_name = "TEXT")]
    pub mock_fail_match: Option<String>,
    /// Mock platform: messages containing this text take LAMBDA_MOCK_SLOW_DELAY.
    #[arg(long, env = vars::MOCK_SLOW_MATCH, global = true, value_name = "TEXT")]
    pub mock_slow_match: Option<String>,
    /// Mock platform: time a "slow" answer takes [default: 30s].
    #[arg(long, env = vars::MOCK_SLOW_DELAY, global = true, value_name = "DURATION")]
    pub mock_slow_delay: Option<String>,
    /// Language of the bot's own text: en or ru [default: en].
    #[arg(long, env = vars::LANG, global = true, value_name = "LANG")]
    pub lang: Option<String>,
    /// host:port for /metrics and /health [default: off].
    #[arg(long, env = vars::METRICS_ADDR, global = true, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// How long the sync may fail before /health answers 503 [default: 2m].
    #[arg(long, env = vars::UNHEALTHY_AFTER, global = true, value_name = "DURATION")]
    pub unhealthy_after: Option<String>,
    /// pretty or json [default: pretty].
    #[arg(long, env = vars::LOG_FORMAT, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter [default: info].
    #[arg(long = "log", env = vars::RUST_LOG, global = true, value_name = "FILTER")]
    pub rust_log: Option<String>,
}

impl std::fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, the recovery key or the API key.
        f.debug_struct("RawSettings")
            .field("homeserver", &self.homeserver)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}
