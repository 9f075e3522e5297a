//! `lambda-matrix`: parses settings, sets up logging, and hands over to the library.

use clap::Parser;
use lambda_matrix::cli::{Cli, Command};
use lambda_matrix::config::Settings;
use std::process::ExitCode;

/// Exit code for a configuration problem.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Everything the bot writes (cache, -wal/-shm, session, SDK store) is private to its user.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => {
            eprintln!("configuration: cannot read .env: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    // Crash points for tests, configured by FAILPOINTS (no-op without the `failpoints` feature).
    let _crash_points = fail::FailScenario::setup();
    let cli = Cli::parse();
    let settings = match Settings::from_raw(cli.settings) {
        Ok(settings) => settings,
        Err(problems) => {
            if let Command::Check { json } = cli.command {
                let report = lambda_matrix::check::unreadable_settings(&problems);
                if let Err(e) = lambda_matrix::app::print_check(&report, json) {
                    eprintln!("error: cannot print the report: {e}");
                }
            } else {
                eprintln!("{problems}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = lambda_matrix::logging::init(&settings) {
        eprintln!("configuration: cannot set up logging: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lambda_matrix::execute(
        cli.command,
        settings,
        shutdown_signal(),
    )) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "lambda-matrix stopped with an error"
            );
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}
