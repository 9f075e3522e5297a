//! `scripts/bench`: builds a Synapse where the bot is in N rooms (N/5 people x 1 Space + 4 chat
//! rooms, with markers), then measures side by side, at each size: the homeserver's floor (a
//! bare v2 initial sync, a bare sliding-sync request), lambda-matrix from process start to ready
//! (cold, cache lost, warm) with its requests and peak memory, and the one-shot reconcile; then
//! message round trips against an echoing client, and a burst of many people at once.
//!
//! Usage: bench BINARY [--sizes 250,1000] [--runs 3] [--messages 20] [--people 100]
//! Prints a Markdown report on stdout (progress on stderr).

#![recursion_limit = "256"]

mod floor;
mod rooms;
mod roundtrip;
mod startup;

use anyhow::Context;
use lambda_matrix_testkit::{RecordingProxy, Synapse};
use startup::{BotRunner, Case, Startup};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    binary: PathBuf,
    sizes: Vec<usize>,
    runs: usize,
    messages: usize,
    people: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        binary: PathBuf::from(args.next().context(
            "usage: bench BINARY [--sizes 250,1000] [--runs 3] [--messages 20] [--people 100]",
        )?),
        sizes: vec![250, 1000],
        runs: 3,
        messages: 20,
        people: 100,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sizes" => {
                parsed.sizes = value
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--runs" => parsed.runs = value.parse()?,
            "--messages" => parsed.messages = value.parse()?,
            "--people" => parsed.people = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    parsed.sizes.sort_unstable();
    Ok(parsed)
}

/// The value at quantile `q` (0..=1) of `xs`.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(((xs.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The run with the median start time.
fn median_run(runs: &[Startup]) -> Startup {
    let mut runs = runs.to_vec();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs[runs.len() / 2].clone()
}

fn range(xs: &[f64]) -> String {
    format!("{:.2}–{:.2}", quantile(xs, 0.0), quantile(xs, 1.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let mut out = String::new();
    let synapse = Synapse::start().await?;
    let account = synapse.register("lambda").await?;
    let proxy = RecordingProxy::start(&synapse.url()).await?;
    let mut runner = BotRunner {
        binary: args.binary.clone(),
        dir: tempfile::tempdir()?,
        homeserver: proxy.url(),
        account: account.clone(),
        recovery_key: None,
    };
    writeln!(out, "| rooms | v2 initial sync (s) | sliding sync, reconcile state (s) | sliding sync, the bot's request (s) | cold start-to-ready (s) | ratio to floor | cache lost (s) | cache-lost reconcile (ms) | warm (s) | dry-run reconcile (s) | requests cold / cache lost / warm | peak RSS cold (MiB) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    let mut built = 0;
    for &size in &args.sizes {
        let started = Instant::now();
        eprintln!("building {size} rooms ...");
        rooms::grow(&synapse, &account, built, size).await?;
        built = size;
        eprintln!("built in {:.0} s", started.elapsed().as_secs_f64());
        let (mut v2, mut floor, mut bot_request) = (Vec::new(), Vec::new(), Vec::new());
        let (mut cold, mut lost, mut warm, mut dry) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.runs {
            let (s, n) = floor::v2(&synapse.url(), &account).await?;
            v2.push(s);
            let (f, nf) = floor::sliding(
                &synapse.url(),
                &account,
                size,
                floor::Sliding::ReconcileState,
            )
            .await?;
            floor.push(f);
            let (b, _) =
                floor::sliding(&synapse.url(), &account, size, floor::Sliding::BotRequest).await?;
            bot_request.push(b);
            let c = runner.start(Case::Cold, &proxy).await?;
            let l = runner.start(Case::CacheLost, &proxy).await?;
            let w = runner.start(Case::Warm, &proxy).await?;
            let (d, nd) = runner.dry_run()?;
            dry.push(d);
            eprintln!(
                "{size} rooms, run {run}: v2 {s:.2} s ({n} rooms), sliding {f:.2} s ({nf} rooms), bot's request {b:.2} s; \
                 bot cold {:.2} s ({} requests, {} syncs), cache lost {:.2} s (reconcile {} ms, resumed {}), warm {:.2} s ({} requests); dry run {d:.2} s ({nd} rooms)",
                c.seconds, c.requests, c.sync_requests, l.seconds, l.reconcile_ms, l.resumed, w.seconds, w.requests
            );
            cold.push(c);
            lost.push(l);
            warm.push(w);
        }
        let secs = |runs: &[Startup]| runs.iter().map(|r| r.seconds).collect::<Vec<_>>();
        let (c, l, w) = (median_run(&cold), median_run(&lost), median_run(&warm));
        let lost_reconcile: Vec<f64> = lost.iter().map(|r| r.reconcile_ms as f64).collect();
        writeln!(
            out,
            "| {size} | {:.2} ({}) | {:.2} ({}) | {:.2} ({}) | {:.2} ({}) | {:.2}x | {:.2} ({}) | {:.0} | {:.2} ({}) | {:.2} ({}) | {} / {} / {} | {:.0} |",
            median(&v2), range(&v2),
            median(&floor), range(&floor),
            median(&bot_request), range(&bot_request),
            median(&secs(&cold)), range(&secs(&cold)),
            median(&secs(&cold)) / median(&floor),
            median(&secs(&lost)), range(&secs(&lost)),
            median(&lost_reconcile),
            median(&secs(&warm)), range(&secs(&warm)),
            median(&dry), range(&dry),
            c.requests, l.requests, w.requests,
            c.peak_rss_kib as f64 / 1024.0,
        )?;
        writeln!(
            out,
            "|   | sync requests cold / cache lost / warm: {} / {} / {}; cache lost and warm resumed the saved connection: {} / {}; rooms read back by catch-up: {} / {} / {} |||||||||||",
            c.sync_requests, l.sync_requests, w.sync_requests, l.resumed, w.resumed, c.catchup_rooms, l.catchup_rooms, w.catchup_rooms
        )?;
    }

    eprintln!("message round trips ...");
    runner.homeserver = synapse.url();
    let mut bot = runner.serve().await?;
    let (to_bot, to_echo) = roundtrip::compare(&synapse, &account.user_id, args.messages).await?;
    writeln!(
        out,
        "\n| round trip, {} messages each (ms) | p50 | p90 | max |",
        args.messages
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for (name, xs) in [
        ("lambda-matrix (mock platform)", &to_bot),
        ("echoing client (floor)", &to_echo),
    ] {
        writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {:.1} |",
            median(xs),
            quantile(xs, 0.9),
            quantile(xs, 1.0)
        )?;
    }
    writeln!(
        out,
        "| overhead (p50 difference) | {:.1} | | |",
        median(&to_bot) - median(&to_echo)
    )?;
    eprintln!("{} people at once ...", args.people);
    let (times, wall) = roundtrip::load(&synapse, &account.user_id, args.people).await?;
    writeln!(
        out,
        "\n{} people sent one message each at the same moment: {} answered; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; all answered within {:.2} s",
        args.people,
        times.len(),
        median(&times),
        quantile(&times, 0.99),
        quantile(&times, 1.0),
        wall
    )?;
    startup::stop(&mut bot)?;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
