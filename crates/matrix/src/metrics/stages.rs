//! The stages of an answer, timed, as one histogram per stage
//! (`lambda_matrix_answer_stage_seconds{stage=…}`): where the bot's own time goes, beside the
//! platform's and the homeserver's.
//!
//! - `received`: from the homeserver's timestamp on the message to the sync handing it over
//!   (the homeserver's fan-out, the sync request, the SDK reading the response); only for
//!   messages queued within 30 s of being sent (catch-up's are not the sync's time), and with
//!   any skew between the homeserver's clock and the bot's in it;
//! - `queued`: from the sync handing the message over to its room's worker taking it;
//! - `prepared`: from there to the platform being called (history for context, a download,
//!   the turn among `LAMBDA_MAX_CONCURRENT_ANSWERS`);
//! - `platform`: the call itself, restarts by edits included;
//! - `first_sent`: from the platform's answer to the homeserver acknowledging the answer's
//!   first event (0 for a streamed answer, whose first part goes out during `platform`);
//! - `delivered`: from the platform's answer to the homeserver acknowledging its last part;
//! - `read`: from the sync's response arriving to the message being queued (the SDK reading
//!   and storing the response, then the bot's handler): the bot's part of `received`, timed
//!   where the layer below is installed;
//! - `homeserver`: how long the job waited on the homeserver's answers to its own requests
//!   (history, keys, the send), from its room's worker taking it to the first event
//!   acknowledged: the requests the SDK makes, timed by `bot::runtime::waits` (0 where that
//!   layer is not installed: the binary installs it);
//! - `own`: the bot's own time, from the sync's response arriving to the first event
//!   acknowledged, less the platform's and the homeserver's (`read` + `queued` + `prepared` +
//!   `first_sent` - `homeserver`); not for a streamed answer, whose sends overlap the platform.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the stage histograms, in seconds: the bot's own stages take milliseconds.
const BOUNDS: [f64; 16] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// A stage of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From the homeserver to the queue.
    Received,
    /// Waiting in the room's queue.
    Queued,
    /// From the worker to the platform call.
    Prepared,
    /// The platform call.
    Platform,
    /// From the answer to the first event acknowledged.
    FirstSent,
    /// From the answer to the last part acknowledged.
    Delivered,
    /// From the sync's response to the queue.
    Read,
    /// The job's waits on the homeserver's answers, until the first event is acknowledged.
    Homeserver,
    /// The bot's own time until the first event is acknowledged.
    Own,
}

impl Stage {
    const ALL: [Stage; 9] = [
        Stage::Received,
        Stage::Queued,
        Stage::Prepared,
        Stage::Platform,
        Stage::FirstSent,
        Stage::Delivered,
        Stage::Read,
        Stage::Homeserver,
        Stage::Own,
    ];

    fn label(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::Queued => "queued",
            Stage::Prepared => "prepared",
            Stage::Platform => "platform",
            Stage::FirstSent => "first_sent",
            Stage::Delivered => "delivered",
            Stage::Read => "read",
            Stage::Homeserver => "homeserver",
            Stage::Own => "own",
        }
    }
}

/// One histogram.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BOUNDS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// The stage histograms.
#[derive(Debug, Default)]
pub struct StageTimes {
    stages: [Histogram; Stage::ALL.len()],
}

impl StageTimes {
    /// Records that `stage` of one answer took `took`.
    pub fn observe(&self, stage: Stage, took: Duration) {
        self.stages[stage as usize].observe(took);
    }

    /// The Prometheus text of the histograms.
    pub fn render(&self, out: &mut String) {
        let name = "lambda_matrix_answer_stage_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time each stage of an answer took (received, queued, prepared, platform, first_sent, delivered; read: the bot's part of received, homeserver: its waits on the homeserver, own: the bot's own time).\n# TYPE {name} histogram"
        );
        for stage in Stage::ALL {
            let histogram = &self.stages[stage as usize];
            let label = stage.label();
            for (bucket, bound) in histogram.buckets.iter().zip(BOUNDS) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{stage=\"{label}\",le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let sum = histogram.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{label}\",le=\"+Inf\"}} {count}\n{name}_sum{{stage=\"{label}\"}} {sum}\n{name}_count{{stage=\"{label}\"}} {count}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_is_its_own_histogram() {
        let times = StageTimes::default();
        times.observe(Stage::Queued, Duration::from_micros(400));
        times.observe(Stage::Platform, Duration::from_millis(300));
        times.observe(Stage::Platform, Duration::from_secs(2));
        let mut out = String::new();
        times.render(&mut out);
        let line = |needle: &str| {
            out.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no {needle} in {out}"))
                .to_owned()
        };
        let name = "lambda_matrix_answer_stage_seconds";
        assert!(line(&format!("{name}_bucket{{stage=\"queued\",le=\"0.001\"}}")).ends_with(" 1"));
        assert!(line(&format!("{name}_count{{stage=\"queued\"}}")).ends_with(" 1"));
        assert!(line(&format!("{name}_bucket{{stage=\"platform\",le=\"0.25\"}}")).ends_with(" 0"));
        assert!(line(&format!("{name}_bucket{{stage=\"platform\",le=\"0.5\"}}")).ends_with(" 1"));
        assert!(line(&format!("{name}_count{{stage=\"platform\"}}")).ends_with(" 2"));
        assert_eq!(
            line(&format!("{name}_sum{{stage=\"platform\"}}")),
            format!("{name}_sum{{stage=\"platform\"}} 2.3")
        );
        assert!(line(&format!("{name}_count{{stage=\"delivered\"}}")).ends_with(" 0"));
    }
}
