//! What each subcommand does, in order.

use crate::bot::{Bot, UnwrittenUsage};
use crate::cli::Command;
use crate::config::PlatformKind;
use crate::config::Settings;
use crate::lock::StoreLock;
use crate::metrics::{self, Metrics};
use crate::session::Login;
use crate::strings::Texts;
use crate::{identity, reconcile, reset, session, sync};
use anyhow::Context;
use lambda_matrix_core::{SqliteStore, Store};
use lambda_matrix_platform::{MockPlatform, OpenAiPlatform, Platform};
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs one subcommand until it finishes or `shutdown` resolves.
pub async fn execute(
    command: Command,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run => match run(settings, shutdown).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(error) if session::lost_in(&error).is_some() => {
                tracing::error!(
                    code = session::EXIT_SESSION_LOST,
                    "{error:#}; without {} the bot cannot log in again: set it, or give the bot a new {} with {}, and start it",
                    crate::config::vars::PASSWORD,
                    crate::config::vars::ACCESS_TOKEN,
                    crate::config::vars::DEVICE_ID,
                );
                Ok(ExitCode::from(session::EXIT_SESSION_LOST))
            }
            Err(error) => Err(error),
        },
        Command::Check { json } => {
            let report = crate::check::check(&settings).await;
            print_check(&report, json)?;
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Reconcile { dry_run, json } => reconcile_once(settings, dry_run, json).await,
        Command::Usage { json } => {
            let people = crate::usage::usage_once(&settings).await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&people)?)?;
            } else {
                write!(out, "{}", crate::usage::render(&people))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::LiftBudget { person } => {
            let day = crate::lift::lift(&settings, &person).await?;
            writeln!(
                std::io::stdout().lock(),
                "{person}'s token budgets are lifted for {day} (UTC)"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset {
            mode,
            dry_run,
            yes,
            confirm,
            json,
        } => {
            // Before the lock, which is a file beside the store folder.
            reset::refuse_wrong_store(&settings.files.store_path)?;
            let _lock = StoreLock::acquire(&settings.files.store_path)?;
            let options = reset::ResetOptions {
                mode,
                dry_run,
                yes,
                confirm,
            };
            let report = reset::reset(&settings, &options, reset::ask_on_terminal).await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                write!(out, "{}", reset::render(&report))?;
            }
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Prints the `check` report on standard output, as text or JSON.
pub fn print_check(report: &crate::check::Report, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(report)?)
    } else {
        write!(out, "{}", crate::check::render(report))
    }
}

/// `lambda-matrix run`: lock the store, open the cache, log in or restore, register the
/// handlers (paused), load every room (first sync), reconcile (reads only), resume (finishes
/// crash leftovers), catch up (queue what was sent while away), go live (pending invites
/// first), then keep syncing until `shutdown`.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let platform = platform(&settings).await?;
    run_with_platform(settings, platform, shutdown).await
}

/// The platform `settings` select.
pub async fn platform(settings: &Settings) -> anyhow::Result<Arc<dyn Platform>> {
    Ok(match (settings.platform.kind, &settings.platform.openai) {
        (PlatformKind::OpenAi, Some(config)) => {
            let platform = OpenAiPlatform::connect(config.clone())
                .await
                .context("cannot use the OpenAI-compatible platform")?;
            tracing::info!(
                model = platform.model(),
                "platform: OpenAI-compatible server"
            );
            Arc::new(platform)
        }
        _ => Arc::new(MockPlatform::new(settings.platform.mock.clone())),
    })
}

/// [`run`] with a given platform (tests keep a handle on it). The store lock, the cache and
/// `/metrics` last for the whole run; the Matrix side ([`serve`]) starts over when the session is
/// lost and a password can log in again (docs/DESIGN.md "Sessions").
pub async fn run_with_platform(
    settings: Settings,
    platform: Arc<dyn Platform>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let _lock = StoreLock::acquire(&settings.files.store_path)?;
    let cache: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&settings.files.db_path).with_context(|| {
            format!("cannot open the cache {}", settings.files.db_path.display())
        })?);
    let metrics = Arc::new(Metrics::default());
    metrics.set_unhealthy_after(settings.limits.unhealthy_after);
    let metrics_server = match settings.output.metrics_addr {
        Some(addr) => Some(
            metrics::serve(addr, metrics.clone())
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?,
        ),
        None => None,
    };
    let shutdown = futures_util::FutureExt::shared(shutdown);
    let mut unwritten = UnwrittenUsage::default();
    let outcome = loop {
        let served = serve(
            &settings,
            &cache,
            &platform,
            &metrics,
            &mut unwritten,
            shutdown.clone(),
        )
        .await;
        match served {
            Err(error)
                if session::lost_in(&error).is_some() && settings.identity.password.is_some() =>
            {
                // `session::connect` logs in again, with one WARN line.
                metrics.set_not_ready();
            }
            other => break other,
        }
    };
    if let Some(server) = metrics_server {
        server.abort();
    }
    tracing::info!("stopped");
    outcome
}

/// One life of the Matrix side: log in or restore, register the handlers (paused), the first
/// sync, identity and reconcile, resume, catch-up, live, then the sync loop until `shutdown`
/// (`Ok`) or until a request meets `M_UNKNOWN_TOKEN` (`Err`, a [`session::SessionLost`] in it).
/// A stop before the bot is live ends the start where it is (the start's position is saved only
/// after catch-up, so the next start does it again). On a stop, or a soft logout, the answers
/// in progress get `MATRIX_SHUTDOWN_GRACE` to finish; when the session is gone for good they
/// cannot be sent, so the next life finishes them, and writes the usage this one had not
/// (`unwritten`: taken over at the start, left there at the end).
async fn serve(
    settings: &Settings,
    cache: &Arc<dyn Store>,
    platform: &Arc<dyn Platform>,
    metrics: &Arc<Metrics>,
    unwritten: &mut UnwrittenUsage,
    shutdown: impl Future<Output = ()> + Clone,
) -> anyhow::Result<()> {
    let (client, login) = session::connect(settings).await?;
    if login != Login::Restored {
        metrics.login();
    }
    let lost = session::lost(client.subscribe_to_session_changes());
    let bot = Bot::new(
        client.clone(),
        settings.clone(),
        cache.clone(),
        platform.clone(),
        metrics.clone(),
    );
    bot.take_over_usage(std::mem::take(unwritten));
    bot.register();
    let stop = shutdown.clone();
    let live = async {
        let started = sync::start(&client, settings.matrix.sync)
            .await
            .context("the first sync failed")?;
        tracing::info!(
            joined_rooms = client.joined_rooms().len(),
            requests = started.requests,
            how = ?started.how,
            ?login,
            platform = platform.name(),
            "first sync done"
        );
        let plan = identity_and_reconcile(&client, settings, cache.as_ref(), metrics).await?;
        bot.resume(&plan.resume).await;
        bot.catch_up(plan.adopted()).await;
        bot.go_live().await;
        sync::save_after_catch_up(&client, &started).await;
        metrics.set_ready();
        tracing::info!("serving");
        // A live gap is noted before its response's position is saved (its room in flight).
        let processed = || bot.after_response();
        sync::forever(
            &client,
            started.position,
            started.filter,
            metrics,
            processed,
            stop,
        )
        .await;
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        outcome = live => outcome,
        lost = lost => Err(lost.into()),
        () = shutdown => Ok(()),
    };
    match outcome.as_ref().map_err(session::lost_in) {
        Err(Some(lost)) if !lost.soft_logout => *unwritten = bot.abandon().await,
        _ => bot.drain(settings.limits.shutdown_grace).await,
    }
    bot.stop();
    outcome
}

/// The encryption identity (requests to the homeserver) and reconcile (reads of the SDK store)
/// do not depend on each other: they run together. Returns the plan, its repairs counted.
async fn identity_and_reconcile(
    client: &matrix_sdk::Client,
    settings: &Settings,
    cache: &dyn Store,
    metrics: &Metrics,
) -> anyhow::Result<reconcile::plan::Plan> {
    let identity = async {
        match identity::ensure(client, settings).await {
            Ok(outcome) => tracing::info!(?outcome, "encryption identity"),
            Err(error) => tracing::error!(error = format!("{error:#}"), "encryption identity not set up; encrypted chats may not work for clients that require verified devices"),
        }
    };
    let texts = Texts::new(settings.output.lang);
    let names = |id| texts.chat_name(id);
    // `session::connect` made sure the homeserver knows the session as exactly this id
    // (`/whoami`), so records are trusted against the confirmed id.
    let bot_id = settings.identity.user_id.to_string();
    let current = cache.dump()?;
    let reconciled = reconcile::reconcile(client, &bot_id, Some(cache), current, &names);
    let ((), plan) = tokio::join!(identity, reconciled);
    let plan = plan?;
    let report = &plan.report;
    metrics.reconcile_repairs(
        report.restored_user_meta
            + report.restored_room_meta
            + report.restored_chat_rows
            + report.repaired,
    );
    Ok(plan)
}

/// `lambda-matrix reconcile`: sync once, reconcile (writing the cache unless `dry_run`), print
/// the report. Logs out again if it had to log in, so it leaves no device behind.
async fn reconcile_once(settings: Settings, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = StoreLock::acquire(&settings.files.store_path)?;
    let (client, login) = session::connect(&settings).await?;
    let texts = Texts::new(settings.output.lang);
    let bot_id = settings.identity.user_id.to_string(); // confirmed by `connect`
    let outcome = async {
        sync::load_once(&client, settings.matrix.sync)
            .await
            .context("the first sync failed")?;
        // A dry run reads the cache without creating, migrating or moving it aside.
        let (cache, current) = if dry_run {
            let current =
                SqliteStore::read_only_dump(&settings.files.db_path).unwrap_or_else(|error| {
                    tracing::warn!(%error, "cannot read the cache; planning as if it were empty");
                    Default::default()
                });
            (None, current)
        } else {
            let cache = SqliteStore::open(&settings.files.db_path)?;
            let current = cache.dump()?;
            (Some(cache), current)
        };
        let cache = cache.as_ref().map(|c| c as &dyn Store);
        let names = |id| texts.chat_name(id);
        Ok::<_, anyhow::Error>(
            reconcile::reconcile(&client, &bot_id, cache, current, &names).await?,
        )
    }
    .await;
    if login == Login::New {
        session::log_out(&client, &settings, login).await;
    }
    let plan = outcome?;
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::to_value(&plan.report)?;
        value["dry_run"] = dry_run.into();
        value["resume_pending"] = serde_json::to_value(&plan.resume)?;
        writeln!(out, "{value}")?;
    } else {
        let r = &plan.report;
        writeln!(
            out,
            "reconcile{}: {} joined rooms",
            if dry_run {
                " (dry run, nothing written)"
            } else {
                ""
            },
            r.joined_rooms
        )?;
        writeln!(
            out,
            "  restored: {} people, {} rooms, {} chats; repaired: {}",
            r.restored_user_meta, r.restored_room_meta, r.restored_chat_rows, r.repaired
        )?;
        for conflict in &r.conflicts {
            writeln!(out, "  conflict: {conflict}")?;
        }
        for skipped in &r.skipped_rooms {
            writeln!(out, "  skipped {}: {}", skipped.room_id, skipped.reason)?;
        }
        for task in &plan.resume {
            writeln!(out, "  left for the next run to finish: {task:?}")?;
        }
        writeln!(out, "  took {} ms", r.duration_ms)?;
    }
    Ok(ExitCode::SUCCESS)
}
