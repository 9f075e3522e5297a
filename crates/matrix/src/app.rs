//! What each subcommand does, in order.

use crate::bot::Bot;
use crate::cli::Command;
use crate::config::PlatformKind;
use crate::config::Settings;
use crate::lock::StoreLock;
use crate::{session, sync};
use anyhow::Context;
use lambda_matrix_core::SqliteStore;
use lambda_matrix_platform::{MockPlatform, Platform};
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code of a subcommand whose work is not built yet.
pub const EXIT_NOT_BUILT: u8 = 3;

/// Runs one subcommand until it finishes or `shutdown` resolves.
pub async fn execute(
    command: Command,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run => run(settings, shutdown).await.map(|()| ExitCode::SUCCESS),
        Command::Reconcile { .. } => not_built(&settings, "reconcile", "reconciliation"),
        Command::Reset { .. } => not_built(&settings, "reset", "the reset tool"),
    }
}

/// Refuses plainly, after the same lock check the real command will make.
fn not_built(settings: &Settings, command: &str, what: &str) -> anyhow::Result<ExitCode> {
    let _lock = StoreLock::acquire(&settings.store_path)?;
    tracing::error!(
        command,
        "`lambda-matrix {command}` is not built yet ({what} lands in a later release); nothing was done"
    );
    Ok(ExitCode::from(EXIT_NOT_BUILT))
}

/// `lambda-matrix run`: lock the store, open the cache, log in or restore, sync once, start
/// handling events (pending invites first), then keep syncing until `shutdown`.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let _lock = StoreLock::acquire(&settings.store_path)?;
    let cache = SqliteStore::open(&settings.db_path)
        .with_context(|| format!("cannot open the cache {}", settings.db_path.display()))?;
    let platform: Arc<dyn Platform> = match settings.platform {
        PlatformKind::Mock => Arc::new(MockPlatform::new(settings.mock.clone())),
    };
    let (client, login) = session::connect(&settings).await?;
    let token = sync::initial(&client)
        .await
        .context("the initial sync failed")?;
    tracing::info!(
        joined_rooms = client.joined_rooms().len(),
        ?login,
        platform = platform.name(),
        "initial sync done"
    );
    let bot = Bot::new(client.clone(), settings, Arc::new(cache), platform);
    bot.start().await;
    tracing::info!("serving");
    sync::forever(&client, token, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}
