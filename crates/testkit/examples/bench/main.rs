//! `scripts/bench`: builds a Synapse where the bot is in N rooms (N/5 people x 1 Space + 4 chat
//! rooms, with markers), then measures side by side, at each size: the homeserver's floor (a
//! bare v2 initial sync, a bare sliding-sync request), lambda-matrix from process start to ready
//! (cold, cache lost, warm) with its requests and peak memory, and the one-shot reconcile; then
//! message round trips against a plain bot (the yardstick) in paired rounds (`live.rs`), and a
//! burst of many people at once.
//!
//! Usage: bench BINARY [--sizes 250,1000] [--runs 3] [--messages 20] [--people 100] [--rounds 2]
//!              [--herd 300] [--invites 2000]
//! Prints a Markdown report on stdout (progress on stderr).

#![recursion_limit = "256"]

mod floor;
mod herd;
mod invites;
mod live;
mod own;
mod rooms;
mod roundtrip;
mod stages;
mod startup;
mod yardstick;

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
    rounds: usize,
    /// Rooms in the herd after downtime (0: none).
    herd: usize,
    /// Invites of each kind for the memory bound (0: none).
    invites: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        binary: PathBuf::from(args.next().context(
            "usage: bench BINARY [--sizes 1000,5000] [--runs 3] [--messages 20] [--people 50] [--rounds 2] [--herd 300] [--invites 2000]",
        )?),
        sizes: vec![1000, 5000],
        runs: 3,
        messages: 20,
        people: 50,
        rounds: 2,
        herd: 0,
        invites: 0,
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
            "--rounds" => parsed.rounds = value.parse()?,
            "--herd" => parsed.herd = value.parse()?,
            "--invites" => parsed.invites = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    parsed.sizes.sort_unstable();
    Ok(parsed)
}

/// The value at quantile `q` (0..=1) of `xs`.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(((xs.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

pub fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The mean of `xs` (0 if empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
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
    if std::env::args().nth(1).as_deref() == Some(yardstick::CHILD_FLAG) {
        return yardstick::child(std::env::args().skip(2)).await;
    }
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
    let (mut members, mut ready, mut live) = (Vec::new(), Vec::new(), Vec::new());
    for &size in &args.sizes {
        let started = Instant::now();
        eprintln!("building {size} rooms ...");
        members.extend(rooms::grow(&synapse, &account, built, size).await?);
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
            let (b, _) = floor::sliding(
                &synapse.url(),
                &account,
                size,
                floor::Sliding::BotRequest { timeline: 10 },
            )
            .await?;
            bot_request.push(b);
            if std::env::var_os("BENCH_SNAPSHOT_VARIANTS").is_some() {
                for (timeline, lazy) in [
                    (10, false),
                    (0, false),
                    (1, false),
                    (10, true),
                    (1, true),
                    (0, true),
                ] {
                    let kind = floor::Sliding::Variant { timeline, lazy };
                    let (v, _) = floor::sliding(&synapse.url(), &account, size, kind).await?;
                    eprintln!(
                        "{size} rooms: the bot's snapshot as one list, timeline {timeline}, {} members: {v:.2} s (as asked: {b:.2} s, floor {f:.2} s)",
                        if lazy { "lazy" } else { "all" }
                    );
                }
                let without = floor::Sliding::BotRequest { timeline: 0 };
                let (v, _) = floor::sliding(&synapse.url(), &account, size, without).await?;
                eprintln!("{size} rooms: the bot's snapshot without events: {v:.2} s (as asked: {b:.2} s, floor {f:.2} s)");
                let apart = floor::Sliding::LatestApart;
                let (v, _) = floor::sliding(&synapse.url(), &account, size, apart).await?;
                eprintln!("{size} rooms: the latest events of the rooms that are not Spaces, apart: {v:.2} s (as asked: {b:.2} s, floor {f:.2} s)");
            }
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
            "|   | sync requests cold / cache lost / warm: {} / {} / {}; cache lost and warm resumed the saved position: {} / {}; rooms read back by catch-up: {} / {} / {} |||||||||||",
            c.sync_requests, l.sync_requests, w.sync_requests, l.resumed, w.resumed, c.catchup_rooms, l.catchup_rooms, w.catchup_rooms
        )?;
        if args.rounds == 0 {
            continue;
        }
        if ready.is_empty() {
            eprintln!("{} people join their first chat ...", args.people + 1);
            let wanted = (args.people + 1).min(members.len());
            ready = roundtrip::prepare(&synapse.url(), &members[..wanted]).await?;
        }
        eprintln!("live traffic at {size} rooms ...");
        live.push(live::run(&args, &synapse, &account, &runner, &ready, size, &c).await?);
    }

    live::write(&mut out, &args, &live)?;
    if args.herd > 0 {
        if ready.is_empty() {
            ready = roundtrip::prepare(&synapse.url(), &members[..1]).await?;
        }
        let herd = herd::run(&synapse, &account, &runner, &ready[0], built, args.herd).await?;
        let ideal = herd.rooms as f64 / 4.0;
        writeln!(out, "\n| rooms with news at start | mock per answer, calls at once | all answered after start (s) | ideal rooms/4 (s) | ratio | a person writing meanwhile (s) | peak RSS (MiB) |")?;
        writeln!(out, "|---|---|---|---|---|---|---|")?;
        writeln!(
            out,
            "| {} | 1 s, 4 | {:.1} | {ideal:.0} | {:.2}x | {:.1} | {:.0} |",
            herd.rooms,
            herd.seconds,
            herd.seconds / ideal,
            herd.probe_ms / 1000.0,
            herd.peak_rss_kib as f64 / 1024.0
        )?;
    }
    if args.invites > 0 {
        let measured = invites::run(&synapse, &proxy, &runner, args.invites).await?;
        invites::write(&mut out, &measured)?;
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
