use super::*;

fn minimal() -> RawSettings {
    RawSettings {
        homeserver: Some("http://127.0.0.1:8008".into()),
        user: Some("@bot:example.org".into()),
        ..RawSettings::default()
    }
}

fn problems(raw: RawSettings) -> Vec<String> {
    match Settings::from_raw(raw) {
        Ok(_) => Vec::new(),
        Err(ConfigErrors(lines)) => lines,
    }
}

#[test]
fn defaults_match_the_design() {
    let s = Settings::from_raw(minimal()).expect("valid");
    assert_eq!(s.files.db_path, PathBuf::from("lambda_matrix.db"));
    assert_eq!(s.files.store_path, PathBuf::from("matrix_store"));
    assert!(s.matrix.encrypt_rooms);
    assert_eq!(s.limits.catchup_max_age, Duration::from_secs(24 * 3600));
    assert_eq!(
        (s.limits.max_chats_per_user, s.limits.max_new_per_minute),
        (100, 5)
    );
    assert_eq!(s.platform.kind, PlatformKind::Mock);
    assert_eq!(s.limits.platform_timeout, Duration::from_secs(120));
    assert_eq!(s.limits.send_retry_for, Duration::from_secs(120));
    assert_eq!(s.limits.max_answer_chars, 64_000);
    assert_eq!(
        (
            s.limits.max_messages_per_minute,
            s.limits.max_dms_per_user,
            s.limits.max_concurrent_provisioning
        ),
        (30, 3, 4)
    );
    assert_eq!(s.limits.room_worker_idle, Duration::from_secs(600));
    assert_eq!(s.matrix.sync, SyncMode::Auto);
    assert_eq!(s.limits.max_attachment_bytes, 20 * 1024 * 1024);
    assert_eq!(s.limits.media_timeout, Duration::from_secs(60));
    assert_eq!(s.limits.shutdown_grace, Duration::from_secs(8));
    assert_eq!(s.platform.mock.max_answer_chars, 64_000);
    assert_eq!(s.output.lang, Lang::En);
    assert_eq!(s.output.metrics_addr, None);
    assert_eq!(s.output.log_format, LogFormat::Pretty);
    assert_eq!(s.output.log_filter, DEFAULT_LOG_FILTER);
    assert!(s.identity.password.is_none());
    // Default access: people on the bot's own server, nobody else.
    assert!(s.is_allowed("@anna:example.org"));
    assert!(!s.is_allowed("@eve:elsewhere.org"));
}

#[test]
fn missing_required_settings_are_all_named_at_once() {
    let lines = problems(RawSettings::default());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("MATRIX_HOMESERVER is required"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("MATRIX_USER is required"), "{lines:?}");
}

#[test]
fn each_bad_value_gets_one_line_naming_its_variable() {
    type Edit = fn(&mut RawSettings);
    let cases: &[(&str, Edit)] = &[
        ("MATRIX_HOMESERVER", |r| {
            r.homeserver = Some("matrix.example.org".into())
        }),
        ("MATRIX_HOMESERVER", |r| {
            r.homeserver = Some("ftp://x".into())
        }),
        ("MATRIX_USER", |r| r.user = Some("bot".into())),
        ("MATRIX_ALLOWED_USERS", |r| {
            r.allowed_users = Some(" , ".into())
        }),
        ("MATRIX_ALLOWED_USERS", |r| {
            r.allowed_users = Some("@a b:x".into())
        }),
        ("MATRIX_ENCRYPT_ROOMS", |r| {
            r.encrypt_rooms = Some("maybe".into())
        }),
        ("MATRIX_CATCHUP_MAX_AGE", |r| {
            r.catchup_max_age = Some("a day".into())
        }),
        ("MATRIX_MAX_CHATS_PER_USER", |r| {
            r.max_chats_per_user = Some("0".into())
        }),
        ("MATRIX_MAX_NEW_PER_MINUTE", |r| {
            r.max_new_per_minute = Some("-3".into())
        }),
        ("MATRIX_SEND_RETRY_FOR", |r| {
            r.send_retry_for = Some("forever".into())
        }),
        ("MATRIX_MAX_MESSAGES_PER_MINUTE", |r| {
            r.max_messages_per_minute = Some("0".into())
        }),
        ("MATRIX_MAX_DMS_PER_USER", |r| {
            r.max_dms_per_user = Some("lots".into())
        }),
        ("MATRIX_MAX_CONCURRENT_PROVISIONING", |r| {
            r.max_concurrent_provisioning = Some("0".into())
        }),
        ("MATRIX_ROOM_WORKER_IDLE", |r| {
            r.room_worker_idle = Some("0s".into())
        }),
        ("MATRIX_SYNC", |r| r.sync = Some("v3".into())),
        ("LAMBDA_MAX_ANSWER_CHARS", |r| {
            r.max_answer_chars = Some("10".into())
        }),
        ("LAMBDA_PLATFORM", |r| r.platform = Some("skynet".into())),
        ("LAMBDA_OPENAI_BASE_URL", |r| {
            r.platform = Some("openai".into())
        }),
        ("LAMBDA_OPENAI_BASE_URL", |r| {
            r.platform = Some("openai".into());
            r.openai_base_url = Some("localhost:11434".into());
        }),
        ("LAMBDA_OPENAI_CONTEXT_MESSAGES", |r| {
            r.platform = Some("openai".into());
            r.openai_base_url = Some("http://127.0.0.1:11434/v1".into());
            r.openai_context_messages = Some("many".into());
        }),
        ("LAMBDA_OPENAI_STREAM", |r| {
            r.platform = Some("openai".into());
            r.openai_base_url = Some("http://127.0.0.1:11434/v1".into());
            r.openai_stream = Some("sometimes".into());
        }),
        ("LAMBDA_PLATFORM_TIMEOUT", |r| {
            r.platform_timeout = Some("0s".into())
        }),
        ("LAMBDA_MOCK_DELAY", |r| r.mock_delay = Some("soon".into())),
        ("LAMBDA_LANG", |r| r.lang = Some("de".into())),
        ("METRICS_ADDR", |r| {
            r.metrics_addr = Some("localhost".into())
        }),
        ("LOG_FORMAT", |r| r.log_format = Some("xml".into())),
        ("RUST_LOG", |r| r.rust_log = Some("info,[=".into())),
        ("MATRIX_DB_PATH", |r| r.db_path = Some(" ".into())),
        ("MATRIX_STORE_PATH", |r| r.store_path = Some("".into())),
    ];
    for (var, edit) in cases {
        let mut raw = minimal();
        edit(&mut raw);
        let lines = problems(raw);
        assert_eq!(lines.len(), 1, "{var}: {lines:?}");
        assert!(lines[0].starts_with(var), "{var}: {lines:?}");
    }
}

#[test]
fn each_bad_attachment_value_gets_one_line_naming_its_variable() {
    type Edit = fn(&mut RawSettings);
    let cases: &[(&str, Edit)] = &[
        ("MATRIX_MAX_ATTACHMENT_BYTES", |r| {
            r.max_attachment_bytes = Some("0".into())
        }),
        ("MATRIX_MAX_ATTACHMENT_BYTES", |r| {
            r.max_attachment_bytes = Some("20MB".into())
        }),
        ("MATRIX_MEDIA_TIMEOUT", |r| {
            r.media_timeout = Some("0s".into())
        }),
        ("MATRIX_SHUTDOWN_GRACE", |r| {
            r.shutdown_grace = Some("soon".into())
        }),
        ("LAMBDA_OPENAI_VISION", |r| {
            r.platform = Some("openai".into());
            r.openai_base_url = Some("http://127.0.0.1:11434/v1".into());
            r.openai_vision = Some("maybe".into());
        }),
        ("LAMBDA_OPENAI_MAX_FILE_CHARS", |r| {
            r.platform = Some("openai".into());
            r.openai_base_url = Some("http://127.0.0.1:11434/v1".into());
            r.openai_max_file_chars = Some("0".into());
        }),
    ];
    for (var, edit) in cases {
        let mut raw = minimal();
        edit(&mut raw);
        let lines = problems(raw);
        assert_eq!(lines.len(), 1, "{var}: {lines:?}");
        assert!(lines[0].starts_with(var), "{var}: {lines:?}");
    }
}

#[test]
fn good_values_are_taken() {
    let raw = RawSettings {
        password: Some("pw".into()),
        allowed_users: Some("@anna:other.org, @*:example.org".into()),
        encrypt_rooms: Some("false".into()),
        catchup_max_age: Some("90m".into()),
        max_chats_per_user: Some("7".into()),
        lang: Some("ru".into()),
        metrics_addr: Some("127.0.0.1:9100".into()),
        log_format: Some("json".into()),
        mock_delay: Some("250ms".into()),
        mock_fail_match: Some("boom".into()),
        ..minimal()
    };
    let s = Settings::from_raw(raw).expect("valid");
    assert_eq!(s.identity.password.as_ref().map(Secret::expose), Some("pw"));
    assert!(s.is_allowed("@anna:other.org") && !s.is_allowed("@boris:other.org"));
    assert!(!s.matrix.encrypt_rooms);
    assert_eq!(s.limits.catchup_max_age, Duration::from_secs(90 * 60));
    assert_eq!(s.limits.max_chats_per_user, 7);
    assert_eq!(s.output.lang, Lang::Ru);
    assert_eq!(
        s.output.metrics_addr,
        Some("127.0.0.1:9100".parse().expect("addr"))
    );
    assert_eq!(s.output.log_format, LogFormat::Json);
    assert_eq!(s.platform.mock.delay, Duration::from_millis(250));
    assert_eq!(s.platform.mock.fail_when_contains.as_deref(), Some("boom"));
    assert!(
        s.platform.openai.is_none(),
        "the mock needs no OpenAI settings"
    );

    let openai = Settings::from_raw(RawSettings {
        platform: Some("openai".into()),
        openai_base_url: Some("http://127.0.0.1:11434/v1".into()),
        openai_model: Some(" llama3.2 ".into()),
        openai_context_messages: Some("0".into()),
        openai_stream: Some("off".into()),
        openai_vision: Some("false".into()),
        openai_transcription_model: Some("none".into()),
        openai_max_file_chars: Some("500".into()),
        platform_timeout: Some("45s".into()),
        ..minimal()
    })
    .expect("valid");
    let config = openai.platform.openai.expect("openai settings");
    assert_eq!(config.model.as_deref(), Some("llama3.2"));
    assert_eq!(config.context_messages, 0);
    assert!(!config.stream);
    assert_eq!(config.timeout, Duration::from_secs(45));
    assert!(config.api_key.is_none());
    assert!(!config.vision);
    assert_eq!(config.transcription_model, None);
    assert_eq!(config.max_file_chars, 500);
    let defaults = Settings::from_raw(RawSettings {
        platform: Some("openai".into()),
        openai_base_url: Some("http://127.0.0.1:11434/v1".into()),
        ..minimal()
    })
    .expect("valid")
    .platform
    .openai
    .expect("openai settings");
    assert!(defaults.vision);
    assert_eq!(defaults.transcription_model.as_deref(), Some("whisper-1"));
    assert_eq!(defaults.max_file_chars, 32_000);
}

#[test]
fn secrets_never_show_in_debug_output() {
    let raw = RawSettings {
        password: Some("hunter2-password".into()),
        recovery_key: Some("EsT0 recovery".into()),
        platform: Some("openai".into()),
        openai_base_url: Some("http://127.0.0.1:11434/v1".into()),
        openai_api_key: Some("sk-s3cr3t-key".into()),
        ..minimal()
    };
    let shown = format!("{raw:?}");
    let settings = Settings::from_raw(raw).expect("valid");
    assert_eq!(
        settings
            .platform
            .openai
            .as_ref()
            .and_then(|o| o.api_key.as_deref()),
        Some("sk-s3cr3t-key")
    );
    let shown = format!("{shown}{settings:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("EsT0") && !shown.contains("s3cr3t"),
        "{shown}"
    );
}

#[test]
fn env_example_lists_every_setting() {
    let example = include_str!("../../../../.env.example");
    for var in vars::ALL {
        assert!(
            example
                .lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{var}="))),
            "{var} is missing from .env.example"
        );
    }
}

#[test]
fn the_platforms_own_defaults_are_the_settings_defaults() {
    let s = Settings::from_raw(minimal()).expect("valid");
    assert_eq!(
        s.limits.max_answer_chars,
        lambda_matrix_platform::DEFAULT_MAX_ANSWER_CHARS
    );
    let mut raw = minimal();
    raw.platform = Some("openai".into());
    raw.openai_base_url = Some("http://127.0.0.1:1/v1".into());
    let read = Settings::from_raw(raw)
        .expect("valid")
        .platform
        .openai
        .expect("openai settings");
    let library = OpenAiConfig::new("http://127.0.0.1:1/v1");
    assert_eq!(read.context_messages, library.context_messages);
    assert_eq!(read.transcription_model, library.transcription_model);
    assert_eq!(read.max_file_chars, library.max_file_chars);
    assert_eq!(read.max_answer_chars, library.max_answer_chars);
    assert_eq!((read.stream, read.vision), (library.stream, library.vision));
}
