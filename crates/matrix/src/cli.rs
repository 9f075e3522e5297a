//! The command line: `run`, `check`, `reconcile`, `usage`, `lift-budget`, `reset`, each with
//! `--help`.

use crate::config::RawSettings;
use clap::{Parser, Subcommand, ValueEnum};

/// lambda-matrix: the Matrix front door of the Lambda chat platform.
///
/// Settings come from the environment, from `.env` in the working directory, and from the flags
/// below (flags win). See .env.example for all of them.
#[derive(Debug, Parser)]
#[command(
    name = "lambda-matrix",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("LAMBDA_MATRIX_COMMIT"), ")"),
    propagate_version = true
)]
pub struct Cli {
    /// Settings (each also read from its environment variable).
    #[command(flatten)]
    pub settings: RawSettings,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each takes the store lock first, except `check`, which writes nothing.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Is this deployment fit to start? Settings, homeserver, who the bot is, cache, store,
    /// encryption identity, platform: one line each, with what to do. Writes nothing (no
    /// login); exits 1 when something blocks a start, 2 when the settings cannot be read.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Log in or restore the session, sync, reconcile, resume, catch up, then serve until stopped.
    Run,
    /// One-shot: sync, reconcile the local cache with the homeserver, print the report, exit.
    Reconcile {
        /// Compute the report without writing to the cache.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every person's tokens today and this month, by model, read from the homeserver; refuses
    /// while the bot runs (it holds the store).
    Usage {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lifts a person's token budgets for the rest of the UTC day, while the bot runs (its
    /// saved session writes the lift to the homeserver; the bot reads it at their next message).
    LiftBudget {
        /// The person, e.g. @anna:example.org.
        #[arg(value_name = "USER_ID")]
        person: String,
    },
    /// Dev/QA only: remove local state, optionally leaving the bot's rooms.
    Reset {
        /// What to remove.
        #[arg(long, value_enum, default_value_t = ResetMode::LocalOnly)]
        mode: ResetMode,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// The bot's user id, required for server-leave-forget.
        #[arg(long, value_name = "USER_ID")]
        confirm: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The reset modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResetMode {
    /// Remove the cache, the SDK store and the saved session.
    LocalOnly,
    /// Leave and forget the rooms the bot manages, then local-only.
    ServerLeaveForget,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_parse_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "lambda-matrix",
            "reconcile",
            "--dry-run",
            "--json",
            "--homeserver",
            "http://h",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Command::Reconcile {
                dry_run: true,
                json: true
            }
        ));
        assert_eq!(cli.settings.homeserver.as_deref(), Some("http://h"));
        let reset =
            Cli::try_parse_from(["lambda-matrix", "reset", "--mode", "server-leave-forget"])
                .expect("parses");
        assert!(matches!(
            reset.command,
            Command::Reset {
                mode: ResetMode::ServerLeaveForget,
                yes: false,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["lambda-matrix", "reset", "--mode", "everything"]).is_err());
    }
}
