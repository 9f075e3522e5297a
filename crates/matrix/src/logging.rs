//! Log set-up: `pretty` for people, `json` for machines (one object per line), both on stderr.
//! Beside the log output, and whatever its filter, the layer that times each job's requests to
//! the homeserver (`bot::runtime::waits`; it prints nothing).

use crate::config::{LogFormat, Settings};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the global subscriber. Fails if one is already installed.
pub fn init(settings: &Settings) -> Result<(), String> {
    let filter = EnvFilter::try_new(&settings.output.log_filter).map_err(|e| e.to_string())?;
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let output = match settings.output.log_format {
        LogFormat::Pretty => output.with_target(false).boxed(),
        LogFormat::Json => output
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(crate::bot::homeserver_waits())
        .try_init()
        .map_err(|e| e.to_string())
}

/// Installs only the layer that times each job's requests to the homeserver, with no log
/// output: for a process that runs the bot in-process (the tests). Fails if a subscriber is
/// already installed.
pub fn init_waits_only() -> Result<(), String> {
    tracing_subscriber::registry()
        .with(crate::bot::homeserver_waits())
        .try_init()
        .map_err(|e| e.to_string())
}
