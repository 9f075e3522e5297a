//! The Matrix adapter of lambda-matrix, and the library behind its binary.
//!
//! - [`config`]: settings from environment, `.env` and flags, validated before the network.
//! - [`cli`]: the command line (`run`, `check`, `reconcile`, `reset`).
//! - [`check`]: `lambda-matrix check`, whether a deployment is fit to start (writes nothing).
//! - [`lock`]: one process per store.
//! - [`session`]: login, the saved session, and its coupling to the SDK store.
//! - [`identity`]: cross-signing, key backup and the recovery key.
//! - [`sync`]: the initial sync and the long-running sync loop with capped backoff.
//! - [`bot`]: the running bot: provisioning, commands, messages, replies.
//! - [`markers`]: the bot's records on the homeserver.
//! - [`reconcile`]: rebuilding the cache from the homeserver (a pure planner over snapshots).
//! - [`template`]: how the bot's rooms are made (power levels, markers, links).
//! - [`app`]: what each subcommand does, in order.
//! - [`command`]: the pure command parser.
//! - [`strings`]: every text a person sees, in English and Russian.
//! - [`render`]: Markdown to sanitised HTML, and splitting long answers.
//! - [`reset`]: the dev/QA reset tool.
//! - [`retry`]: the one retry policy (joins, sends, fetches, room creation, the sync loop).
//! - [`metrics`]: `/metrics` and `/health`.
//! - [`logging`]: pretty or JSON logs.

/// A named crash point: with the `failpoints` feature and `FAILPOINTS="<name>=return"`, the
/// process exits here at once (code 137, like SIGKILL), as a crash at that instant would.
/// Without the feature it compiles to nothing.
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| {
            tracing::error!(crash_point = $name, "crash point reached; exiting");
            std::process::exit(137)
        })
    };
}

pub mod app;
pub mod bot;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod identity;
pub mod lift;
pub mod lock;
pub mod logging;
pub mod markers;
pub mod metrics;
pub mod reconcile;
pub mod records;
pub mod render;
pub mod reset;
pub mod retry;
pub mod session;
pub mod strings;
pub mod sync;
pub mod template;
pub mod usage;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod house_tests;

pub use app::{execute, run, run_with_platform};
pub use config::Settings;
