//! The stopwatch of the job being run: when its event was queued, when its room's worker took
//! it, when the platform was called and answered. Kept per job in a task-local, so the stages
//! are marked where they happen without threading times through every call; the answer reads
//! it once it is delivered ([`crate::metrics::Stage`]).

use crate::metrics::{Metrics, Stage};
use std::cell::Cell;
use std::future::Future;
use std::time::Instant;

tokio::task_local! {
    static WATCH: Stopwatch;
}

/// The times of one job.
#[derive(Debug)]
struct Stopwatch {
    queued: Instant,
    started: Instant,
    called: Cell<Option<Instant>>,
    answered: Cell<Option<Instant>>,
}

/// Runs `job` (queued at `queued`, taken now) with its stopwatch.
pub(crate) fn timed<F: Future>(queued: Instant, job: F) -> impl Future<Output = F::Output> {
    let watch = Stopwatch {
        queued,
        started: Instant::now(),
        called: Cell::new(None),
        answered: Cell::new(None),
    };
    WATCH.scope(watch, job)
}

/// The platform is called now (the first try counts; restarts belong to the call).
pub(crate) fn platform_called() {
    let _ = WATCH.try_with(|watch| {
        if watch.called.get().is_none() {
            watch.called.set(Some(Instant::now()));
        }
    });
}

/// The platform answered now (or the answer was given up).
pub(crate) fn platform_answered() {
    let _ = WATCH.try_with(|watch| watch.answered.set(Some(Instant::now())));
}

/// The answer was delivered now: records its stages on `metrics` (nothing outside a job, or
/// for an answer the platform was never asked for).
pub(crate) fn delivered(metrics: &Metrics) {
    let _ = WATCH.try_with(|watch| {
        let (Some(called), Some(answered)) = (watch.called.get(), watch.answered.get()) else {
            return;
        };
        let now = Instant::now();
        metrics.stage(Stage::Queued, watch.started - watch.queued);
        metrics.stage(
            Stage::Prepared,
            called.saturating_duration_since(watch.started),
        );
        metrics.stage(Stage::Platform, answered.saturating_duration_since(called));
        metrics.stage(Stage::Delivered, now.saturating_duration_since(answered));
    });
}
