//! Live traffic in three states, the two bots in turn on the same people and rooms (issue 34),
//! in rounds that pair them: the machine's speed drifts by a quarter within an hour, so each
//! round compares the two bots measured minutes apart, and the report gives the rounds' ratios
//! with a confidence interval beside the pooled figures.
//!
//! - Even rounds start both bots cold (the yardstick logs its previous device out, logs in as a
//!   new device and syncs every room; lambda-matrix loses its cache and SDK store), odd rounds
//!   restart both warm from their saved positions: the first measurement after the start is
//!   that round's "cold start" or "warm restart", a second one by the same processes "steady".
//! - Which bot goes first alternates every two rounds (yardstick, yardstick, lambda-matrix,
//!   lambda-matrix, ...), so with a multiple of four rounds each kind of start has each order
//!   equally often.
//!
//! For each measurement: the round trip p50 of one person's messages one after the other, the
//! p99 of many people at once, the answering process's CPU per answer, and for lambda-matrix its
//! own stage breakdown for its answers to the sequential messages.

use crate::roundtrip::{self, Account, Measured};
use crate::startup::{self, BotRunner, Case, Startup};
use crate::{mean, median, quantile, yardstick, Args};
use anyhow::Context as _;
use lambda_matrix_testkit::{Registered, Synapse};
use std::fmt::Write as _;
use std::time::Instant;

/// The states, in the order they are reported.
pub const STATES: [&str; 3] = ["cold start", "warm restart", "steady"];

/// One round's figures for one state: (yardstick, lambda-matrix).
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// Round trip p50 of the sequential messages, ms.
    pub p50: (f64, f64),
    /// p99 of the people writing at once, ms.
    pub p99: (f64, f64),
    /// Mean own time per sequential message, ms (the yardstick's from its own times,
    /// lambda-matrix's from its `own` stage).
    pub own: (f64, f64),
}

/// One state's samples, pooled over its rounds (the bot's carry its stages), and each round's
/// pair.
#[derive(Default)]
pub struct Sample {
    pub yardstick: Measured,
    pub bot: Measured,
    pub pairs: Vec<Pair>,
}

impl Sample {
    fn add(&mut self, yardstick: Measured, bot: Measured) {
        self.pairs.push(Pair {
            p50: (median(&yardstick.sequential), median(&bot.sequential)),
            p99: (quantile(&yardstick.burst, 0.99), quantile(&bot.burst, 0.99)),
            own: (own_mean(&yardstick), bot_own_mean(&bot)),
        });
        self.yardstick.extend(yardstick);
        self.bot.extend(bot);
    }
}

/// The yardstick's mean own time per message, ms.
fn own_mean(yardstick: &Measured) -> f64 {
    mean(
        &yardstick
            .own
            .iter()
            .map(|(_, own)| *own)
            .collect::<Vec<_>>(),
    )
}

/// lambda-matrix's mean `own` stage, ms.
fn bot_own_mean(bot: &Measured) -> f64 {
    let summary = bot.stages.summary();
    crate::stages::STAGES
        .iter()
        .position(|stage| *stage == "own")
        .map_or(f64::NAN, |at| summary[at].mean)
}

/// One size's live-traffic comparison.
pub struct Live {
    pub size: usize,
    /// In [`STATES`] order.
    pub states: [Sample; 3],
    /// The yardstick's first cold start.
    pub yardstick_ready: f64,
    pub bot_ready: f64,
}

/// One bot's turn in a round: the measurement right after its start and the steady one, and
/// the seconds from its start to ready.
struct Turn {
    first: Measured,
    steady: Measured,
    seconds: f64,
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
    };
    let mut echo: Option<yardstick::Yardstick> = None;
    for round in 0..args.rounds {
        let cold = round % 2 == 0;
        let tag = |what: &str| format!("{what}{size}.{round}");
        let yardstick_first = (round / 2) % 2 == 0;
        let (y, b) = if yardstick_first {
            let y = yardstick_turn(&mut echo, cold, synapse, account, ready, args, &tag).await?;
            (y, bot_turn(runner, cold, synapse, ready, args, &tag).await?)
        } else {
            let b = bot_turn(runner, cold, synapse, ready, args, &tag).await?;
            (
                yardstick_turn(&mut echo, cold, synapse, account, ready, args, &tag).await?,
                b,
            )
        };
        if round == 0 {
            live.yardstick_ready = y.seconds;
        }
        let (y_p50, b_p50) = (median(&y.first.sequential), median(&b.first.sequential));
        let (ys_p50, bs_p50) = (median(&y.steady.sequential), median(&b.steady.sequential));
        eprintln!(
            "{size} rooms, round {round} ({}, {} first): ready in {:.2} s / {:.2} s; p50 {y_p50:.0} / {b_p50:.0} ms ({:.2}x), steady {ys_p50:.0} / {bs_p50:.0} ms ({:.2}x)",
            STATES[usize::from(!cold)],
            if yardstick_first { "yardstick" } else { "lambda-matrix" },
            y.seconds,
            b.seconds,
            b_p50 / y_p50,
            bs_p50 / ys_p50,
        );
        live.states[usize::from(!cold)].add(y.first, b.first);
        live.states[2].add(y.steady, b.steady);
    }
    if let Some(echo) = echo {
        echo.stop().await?;
    }
    Ok(live)
}

/// The yardstick's turn: started anew (its previous device logged out) or restarted from its
/// saved position, measured twice, then stopped.
async fn yardstick_turn(
    echo: &mut Option<yardstick::Yardstick>,
    cold: bool,
    synapse: &Synapse,
    account: &Registered,
    ready: &[roundtrip::Ready],
    args: &Args,
    tag: &impl Fn(&str) -> String,
) -> anyhow::Result<Turn> {
    let seconds = match echo.as_mut() {
        Some(running) if !cold => running.resume().await?,
        _ => {
            if let Some(previous) = echo.take() {
                previous.stop().await?;
            }
            let (started, seconds) = yardstick::Yardstick::start(&synapse.url(), account).await?;
            *echo = Some(started);
            seconds
        }
    };
    let running = echo.as_mut().context("no yardstick")?;
    let pid = running.pid().context("no yardstick process")?;
    let store = running.store().to_owned();
    let account = Account::OwnTimes(&store);
    let first = roundtrip::measure(ready, args.messages, &tag("y"), pid, account).await?;
    let steady = roundtrip::measure(ready, args.messages, &tag("ys"), pid, account).await?;
    running.pause();
    Ok(Turn {
        first,
        steady,
        seconds,
    })
}

/// lambda-matrix's turn: started after losing its cache and SDK store (cold) or with both
/// (warm), measured twice, then stopped.
async fn bot_turn(
    runner: &BotRunner,
    cold: bool,
    synapse: &Synapse,
    ready: &[roundtrip::Ready],
    args: &Args,
    tag: &impl Fn(&str) -> String,
) -> anyhow::Result<Turn> {
    if cold {
        runner.lose(Case::Cold);
    }
    let started = Instant::now();
    let (mut bot, metrics) = runner.serve(&synapse.url()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let pid = bot.id();
    let account = Account::Metrics(&metrics);
    let first = roundtrip::measure(ready, args.messages, &tag("b"), pid, account).await?;
    let steady = roundtrip::measure(ready, args.messages, &tag("bs"), pid, account).await?;
    startup::stop(&mut bot)?;
    Ok(Turn {
        first,
        steady,
        seconds,
    })
}

/// Student's t at 97.5 % for 1 to 30 degrees of freedom (a 95 % two-sided interval).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The rounds' ratios (lambda-matrix / yardstick) as their geometric mean and its 95 %
/// confidence interval (Student's t over the logarithms), e.g. "0.97x (0.91–1.04)"; one round
/// has no interval.
pub fn by_round(pairs: impl Iterator<Item = (f64, f64)>) -> String {
    let logs: Vec<f64> = pairs.map(|(y, b)| (b / y).ln()).collect();
    let n = logs.len();
    let centre = mean(&logs);
    if n < 2 {
        return format!("{:.2}x", centre.exp());
    }
    let variance = logs.iter().map(|l| (l - centre).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T975.get(n - 2).copied().unwrap_or(1.96);
    let half = t * (variance / n as f64).sqrt();
    format!(
        "{:.2}x ({:.2}–{:.2})",
        centre.exp(),
        (centre - half).exp(),
        (centre + half).exp()
    )
}

/// The round trips and the bot's stages, by size and state.
pub fn write(out: &mut String, args: &Args, live: &[Live]) -> std::fmt::Result {
    writeln!(out, "\n| rooms | state | rounds | round trip p50, yardstick / lambda-matrix (ms) | ratio | by round (95 % CI) | {} people at once p99, yardstick / lambda-matrix (ms) | ratio | by round (95 % CI) | CPU per answer, yardstick / lambda-matrix (ms) |", args.people)?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
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
                "| {} | {state} | {} | {:.0} / {:.0} | {:.2}x | {} | {:.0} / {:.0} | {:.2}x | {} | {:.1} / {:.1} |",
                row.size,
                sample.pairs.len(),
                p50(y), p50(b), p50(b) / p50(y),
                by_round(sample.pairs.iter().map(|p| p.p50)),
                p99(y), p99(b), p99(b) / p99(y),
                by_round(sample.pairs.iter().map(|p| p.p99)),
                mean(&y.cpu), mean(&b.cpu),
            )?;
        }
    }
    writeln!(out, "\nEach bot in turn, {} rounds, same people and rooms: {} messages one after the other from one person, then one message from each of {} people at the same moment (after a warm-up message each). Even rounds start both bots cold (the yardstick logs in as a new device and syncs every room; lambda-matrix has lost its cache and SDK store), odd rounds restart both from their saved positions; the first measurement after a start is the round's cold start or warm restart, a second one by the same processes steady. Which bot goes first alternates every two rounds. Ratio: of the pooled figures (every round's messages together); by round: the geometric mean of each round's ratio with its 95 % confidence interval (Student's t over the logarithms; the pairs are minutes apart, so the machine's drift falls on both). Each bot runs in a process of its own; CPU per answer is that process's user + system time over the sequential messages divided by their number (clock ticks of 10 ms).", args.rounds, args.messages, args.people)?;
    for row in live {
        writeln!(out, "Ready after start at {} rooms: yardstick {:.2} s, lambda-matrix cold {:.2} s ({:.2}x).", row.size, row.yardstick_ready, row.bot_ready, row.bot_ready / row.yardstick_ready)?;
    }
    writeln!(out, "\n| rooms | state | bot: received | queued | prepared | platform | first sent | delivered | read | homeserver | own | yardstick: read | own | own, lambda-matrix / yardstick, by round (95 % CI) |")?;
    writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for row in live {
        for (state, sample) in STATES.iter().zip(&row.states) {
            if sample.bot.stages.is_empty() {
                continue;
            }
            write!(out, "| {} | {state} |", row.size)?;
            for stage in sample.bot.stages.summary() {
                write!(out, " {:.1} ({:.1}) |", stage.p50, stage.mean)?;
            }
            let y = &sample.yardstick.own;
            let read: Vec<f64> = y.iter().map(|(read, _)| *read).collect();
            let own: Vec<f64> = y.iter().map(|(_, own)| *own).collect();
            writeln!(
                out,
                " {:.1} ({:.1}) | {:.1} ({:.1}) | {} |",
                median(&read),
                mean(&read),
                median(&own),
                mean(&own),
                by_round(sample.pairs.iter().map(|p| p.own)),
            )?;
        }
    }
    writeln!(out, "\nreceived: from the homeserver's timestamp to the sync handing the message over; queued: to its room's worker; prepared: to the platform call (history, download, turn); platform: the call; first sent / delivered: from the answer to the homeserver acknowledging its first / last event; read: from the sync's response arriving to the message queued (the SDK reading the response: the bot's part of received); homeserver: the answer's waits on the homeserver's answers to the bot's requests, until the first event was acknowledged; own: the bot's own work (read + queued + prepared + first sent - homeserver). Over the sequential messages only (the histograms read before and after them), so a single message's stages; p50 from the histogram's buckets (linear within one). The yardstick's read and own are measured the same way in its process (from the sync's response arriving to its handler starting; plus its send less the requests it waited on), p50 exact; the by-round ratio is of the means.")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounds_that_agree_give_a_narrow_interval_around_their_ratio() {
        let same = super::by_round([(100.0, 90.0), (200.0, 180.0)].into_iter());
        assert_eq!(same, "0.90x (0.90–0.90)");
        let spread = super::by_round([(100.0, 80.0), (100.0, 125.0), (100.0, 100.0)].into_iter());
        assert!(
            spread.starts_with("1.00x (0.") && spread.ends_with(')'),
            "{spread}"
        );
        assert_eq!(super::by_round([(100.0, 110.0)].into_iter()), "1.10x");
    }
}
