//! Live traffic in three states, each bot in turn on the same people and rooms (issue 34): the
//! first minutes after a cold start (round 1: the yardstick logs in and syncs every room, the
//! bot comes from its cold start), after a warm restart (later rounds: each restarts from its
//! saved position) and steady state (the last round measured a second time by the same
//! processes). For each: the round trip p50 of one person's messages one after the other, the
//! p99 of many people at once, and the bot's own stage breakdown for its answers to that
//! state's sequential messages.

use crate::roundtrip::{self, Measured};
use crate::startup::{self, BotRunner, Startup};
use crate::{mean, median, quantile, yardstick, Args};
use anyhow::Context as _;
use lambda_matrix_testkit::{Registered, Synapse};
use std::fmt::Write as _;

/// The states, in the order they are measured.
pub const STATES: [&str; 3] = ["cold start", "warm restart", "steady"];

/// One state's samples (the bot's carry its stages).
#[derive(Default)]
pub struct Sample {
    pub yardstick: Measured,
    pub bot: Measured,
}

/// One size's live-traffic comparison.
pub struct Live {
    pub size: usize,
    /// In [`STATES`] order.
    pub states: [Sample; 3],
    /// The yardstick's cold start (round 1).
    pub yardstick_ready: f64,
    pub bot_ready: f64,
    /// Each round's first p50, yardstick and bot.
    pub per_round: Vec<(f64, f64)>,
}

/// The yardstick and lambda-matrix in turn, `rounds` times, answering the same people.
pub async fn run(
    args: &Args,
    synapse: &Synapse,
    account: &Registered,
    runner: &BotRunner,
    ready: &[roundtrip::Ready],
    size: usize,
    cold: &Startup,
) -> anyhow::Result<Live> {
    let mut live = Live {
        size,
        states: Default::default(),
        yardstick_ready: 0.0,
        bot_ready: cold.seconds,
        per_round: Vec::new(),
    };
    let mut echo: Option<yardstick::Yardstick> = None;
    for round in 0..args.rounds {
        let state = usize::from(round > 0);
        let last = round + 1 == args.rounds;
        let seconds = match echo.as_mut() {
            None => {
                let (started, seconds) =
                    yardstick::Yardstick::start(&synapse.url(), account).await?;
                echo = Some(started);
                live.yardstick_ready = seconds;
                seconds
            }
            Some(echo) => echo.resume().await?,
        };
        let tag = |what: &str| format!("{what}{size}.{round}");
        let echo_pid = echo
            .as_ref()
            .and_then(|e| e.pid())
            .context("no yardstick")?;
        let yardstick = roundtrip::measure(ready, args.messages, &tag("y"), echo_pid, None).await?;
        let yardstick_p50 = median(&yardstick.sequential);
        live.states[state].yardstick.extend(yardstick);
        if last {
            let steady = tag("ys");
            let steady = roundtrip::measure(ready, args.messages, &steady, echo_pid, None).await?;
            live.states[2].yardstick.extend(steady);
        }
        if let Some(echo) = echo.as_mut() {
            echo.pause();
        }
        let started = std::time::Instant::now();
        let (mut bot, metrics) = runner.serve(&synapse.url()).await?;
        let bot_seconds = started.elapsed().as_secs_f64();
        let pid = bot.id();
        let measured =
            roundtrip::measure(ready, args.messages, &tag("b"), pid, Some(&metrics)).await?;
        let bot_p50 = median(&measured.sequential);
        live.states[state].bot.extend(measured);
        if last {
            let steady = tag("bs");
            let steady =
                roundtrip::measure(ready, args.messages, &steady, pid, Some(&metrics)).await?;
            live.states[2].bot.extend(steady);
        }
        startup::stop(&mut bot)?;
        live.per_round.push((yardstick_p50, bot_p50));
        eprintln!(
            "{size} rooms, round {round} ({}): yardstick ready in {seconds:.2} s, bot in {bot_seconds:.2} s; p50 yardstick {yardstick_p50:.0} ms, bot {bot_p50:.0} ms ({:.2}x)",
            STATES[state],
            bot_p50 / yardstick_p50,
        );
    }
    if let Some(echo) = echo {
        echo.stop().await?;
    }
    Ok(live)
}

/// The round trips and the bot's stages, by size and state.
pub fn write(out: &mut String, args: &Args, live: &[Live]) -> std::fmt::Result {
    writeln!(out, "\n| rooms | state | round trip p50, yardstick (ms) | lambda-matrix (ms) | ratio | {} people at once p99, yardstick (ms) | lambda-matrix (ms) | ratio | CPU per answer, yardstick / lambda-matrix (ms) |", args.people)?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for row in live {
        for (state, sample) in STATES.iter().zip(&row.states) {
            if sample.bot.sequential.is_empty() {
                continue;
            }
            let p50 = |m: &Measured| median(&m.sequential);
            let p99 = |m: &Measured| quantile(&m.burst, 0.99);
            let (y, b) = (&sample.yardstick, &sample.bot);
            writeln!(
                out,
                "| {} | {state} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {:.2}x | {:.0} | {:.0} | {:.2}x | {:.1} / {:.1} |",
                row.size,
                p50(y), quantile(&y.sequential, 0.0), quantile(&y.sequential, 1.0),
                p50(b), quantile(&b.sequential, 0.0), quantile(&b.sequential, 1.0),
                p50(b) / p50(y),
                p99(y), p99(b), p99(b) / p99(y),
                mean(&y.cpu), mean(&b.cpu),
            )?;
        }
    }
    writeln!(out, "\nEach bot in turn, {} rounds, same people and rooms: {} messages one after the other from one person, then one message from each of {} people at the same moment (after a warm-up message each). Cold start: round 1 (the yardstick logs in and syncs every room; lambda-matrix comes from its cold start). Warm restart: later rounds, each bot restarted from its saved position. Steady: the last round measured again by the same processes. Each bot runs in a process of its own; CPU per answer is that process's user + system time over the sequential messages divided by their number (clock ticks of 10 ms).", args.rounds, args.messages, args.people)?;
    for row in live {
        writeln!(out, "Ready after start at {} rooms: yardstick {:.2} s, lambda-matrix cold {:.2} s ({:.2}x).", row.size, row.yardstick_ready, row.bot_ready, row.bot_ready / row.yardstick_ready)?;
    }
    writeln!(out, "\n| rooms | state | bot: received | queued | prepared | platform | first sent | delivered | read | homeserver | own (p50 (mean) ms, the bot's own /metrics) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for row in live {
        for (state, sample) in STATES.iter().zip(&row.states) {
            if sample.bot.stages.is_empty() {
                continue;
            }
            write!(out, "| {} | {state} |", row.size)?;
            for stage in sample.bot.stages.summary() {
                write!(out, " {:.1} ({:.1}) |", stage.p50, stage.mean)?;
            }
            writeln!(out)?;
        }
    }
    writeln!(out, "\nreceived: from the homeserver's timestamp to the sync handing the message over; queued: to its room's worker; prepared: to the platform call (history, download, turn); platform: the call; first sent / delivered: from the answer to the homeserver acknowledging its first / last event; read: from the sync's response arriving to the message queued (the SDK reading the response: the bot's part of received); homeserver: the answer's waits on the homeserver's answers to the bot's requests, until the first event was acknowledged; own: the bot's own work (read + queued + prepared + first sent - homeserver). Over the sequential messages only (the histograms read before and after them), so a single message's stages; p50 from the histogram's buckets (linear within one).")
}
