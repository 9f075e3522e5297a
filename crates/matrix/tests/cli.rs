//! The binary as a person or script meets it: help, configuration errors, the store lock.

use lambda_matrix::lock::StoreLock;
use std::process::{Command, Output};

fn lambda_matrix(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-matrix"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn version_names_the_version_and_the_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = lambda_matrix(dir.path(), &["--version"], &[]);
    assert!(out.status.success());
    let line = text(&out);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        line.starts_with(&format!("lambda-matrix {version} (commit ")),
        "{line}"
    );
    let commit = line
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_default();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
}

#[test]
fn help_lists_the_subcommands_and_their_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let top = lambda_matrix(dir.path(), &["--help"], &[]);
    assert!(top.status.success());
    for word in ["run", "reconcile", "reset", "MATRIX_HOMESERVER"] {
        assert!(
            text(&top).contains(word),
            "--help lacks {word}:\n{}",
            text(&top)
        );
    }
    let reset = lambda_matrix(dir.path(), &["reset", "--help"], &[]);
    for word in [
        "--mode",
        "local-only",
        "server-leave-forget",
        "--dry-run",
        "--yes",
        "--confirm",
        "--json",
    ] {
        assert!(text(&reset).contains(word), "reset --help lacks {word}");
    }
    let reconcile = lambda_matrix(dir.path(), &["reconcile", "--help"], &[]);
    assert!(text(&reconcile).contains("--dry-run") && text(&reconcile).contains("--json"));
}

#[test]
fn missing_and_bad_settings_fail_fast_naming_each_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = lambda_matrix(dir.path(), &["run"], &[("MATRIX_ENCRYPT_ROOMS", "perhaps")]);
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<String> = text(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("MATRIX_HOMESERVER is required"));
    assert!(lines[1].contains("MATRIX_USER is required"));
    assert!(lines[2].contains("MATRIX_ENCRYPT_ROOMS"));
    // Nothing was created before validation failed.
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn dotenv_fills_settings_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".env"),
        "MATRIX_HOMESERVER=http://127.0.0.1:1\nMATRIX_USER=@bot:localhost\nLAMBDA_LANG=de\n",
    )
    .expect("write .env");
    // From .env alone: LAMBDA_LANG=de is the only problem.
    let out = lambda_matrix(dir.path(), &["run"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("LAMBDA_LANG") && !text(&out).contains("MATRIX_USER"),
        "{}",
        text(&out)
    );
    // The environment overrides .env; a flag overrides both.
    let out = lambda_matrix(
        dir.path(),
        &["run", "--lang", "xx"],
        &[("LAMBDA_LANG", "en")],
    );
    assert!(text(&out).contains("\"xx\""), "{}", text(&out));
}

#[test]
fn first_login_without_a_password_is_refused_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 1 on loopback: any network call would fail with a connection error instead.
    let out = lambda_matrix(
        dir.path(),
        &["run"],
        &[
            ("MATRIX_HOMESERVER", "http://127.0.0.1:1"),
            ("MATRIX_USER", "@bot:localhost"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    assert!(
        all.contains(
            "MATRIX_PASSWORD (or MATRIX_ACCESS_TOKEN with MATRIX_DEVICE_ID) is required for the first login"
        ),
        "{all}"
    );
    assert!(!all.to_lowercase().contains("connect"), "{all}");
}

#[test]
fn a_second_process_on_the_same_store_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _held = StoreLock::acquire(&dir.path().join("matrix_store")).expect("lock");
    let env = [
        ("MATRIX_HOMESERVER", "http://127.0.0.1:1"),
        ("MATRIX_USER", "@bot:localhost"),
        ("MATRIX_PASSWORD", "pw"),
    ];
    for args in [&["run"][..], &["reconcile"], &["reset", "--yes"]] {
        let out = lambda_matrix(dir.path(), args, &env);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out).contains("another lambda-matrix process"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

fn offline_env() -> [(&'static str, &'static str); 2] {
    [
        ("MATRIX_HOMESERVER", "http://127.0.0.1:1"),
        ("MATRIX_USER", "@bot:localhost"),
    ]
}

fn local_files(dir: &std::path::Path) {
    std::fs::write(dir.join("lambda_matrix.db"), b"cache").expect("db");
    std::fs::write(dir.join("lambda_matrix.db-wal"), b"wal").expect("wal");
    std::fs::create_dir_all(dir.join("matrix_store")).expect("store");
    std::fs::write(dir.join("matrix_store/matrix-sdk-state.sqlite3"), b"state").expect("state");
}

#[test]
fn reset_server_mode_needs_the_bots_user_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["reset", "--mode", "server-leave-forget", "--yes"][..],
        &[
            "reset",
            "--mode",
            "server-leave-forget",
            "--yes",
            "--confirm",
            "@other:localhost",
        ],
    ] {
        let out = lambda_matrix(dir.path(), args, &offline_env());
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out).contains("--confirm @bot:localhost"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn reset_without_yes_and_without_a_terminal_refuses_and_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    local_files(dir.path());
    let out = lambda_matrix(dir.path(), &["reset"], &offline_env());
    assert!(!out.status.success());
    assert!(text(&out).contains("needs --yes"), "{}", text(&out));
    assert!(
        dir.path().join("lambda_matrix.db").exists() && dir.path().join("matrix_store").exists()
    );
}

#[test]
fn reset_dry_run_lists_the_plan_and_local_only_removes_exactly_that() {
    let dir = tempfile::tempdir().expect("tempdir");
    local_files(dir.path());
    let plan = lambda_matrix(dir.path(), &["reset", "--dry-run"], &offline_env());
    assert!(plan.status.success(), "{}", text(&plan));
    let shown = text(&plan);
    for item in [
        "would remove lambda_matrix.db",
        "would remove lambda_matrix.db-wal",
        "would remove matrix_store",
        "left to do by hand",
    ] {
        assert!(shown.contains(item), "{item}: {shown}");
    }
    assert!(
        dir.path().join("lambda_matrix.db").exists(),
        "a dry run changes nothing"
    );

    std::fs::write(dir.path().join("keep.txt"), b"unrelated").expect("unrelated file");
    let done = lambda_matrix(dir.path(), &["reset", "--yes", "--json"], &offline_env());
    assert!(done.status.success(), "{}", text(&done));
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).expect("json report");
    assert_eq!(
        report["files"],
        serde_json::json!([
            "lambda_matrix.db",
            "lambda_matrix.db-wal",
            "matrix_store/matrix-sdk-state.sqlite3",
            "matrix_store"
        ]),
        "the SDK's files, then the folder they leave empty"
    );
    assert_eq!(report["dry_run"], false);
    assert!(
        !dir.path().join("lambda_matrix.db").exists()
            && !dir.path().join("lambda_matrix.db-wal").exists()
    );
    assert!(!dir.path().join("matrix_store").exists());
    assert!(!dir.path().join("matrix_store.lock").exists());
    assert!(
        dir.path().join("keep.txt").exists(),
        "nothing else is touched"
    );

    let again = lambda_matrix(dir.path(), &["reset", "--yes"], &offline_env());
    assert!(text(&again).contains("nothing there"), "{}", text(&again));
}
