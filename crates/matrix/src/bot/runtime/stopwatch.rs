//! The stopwatch of the job being run: how long its event took from the homeserver to the
//! queue (and from the sync response that brought it), when it was queued, when its room's worker took it, when the platform was called and
//! answered, when the first event was acknowledged, and how long it waited on the homeserver's
//! answers to its requests until then ([`super::waits`] adds those). Kept per job in a
//! task-local, so the stages are marked where they happen without threading times through
//! every call; the answer reads it once it is delivered ([`crate::metrics::Stage`]).

use crate::metrics::{Metrics, Stage};
use std::cell::Cell;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Events older than this when queued are not the sync's doing (catch-up, a backlog): their
/// `received` stage is not recorded.
const FRESH: Duration = Duration::from_secs(30);

tokio::task_local! {
    static WATCH: Stopwatch;
}

/// When a job's event arrived: queued now, `received` after the homeserver took it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    queued: Instant,
    received: Option<Duration>,
    /// From the sync response's arrival to now (the SDK reading it, the handler), for an event
    /// the live sync brought.
    read: Option<Duration>,
}

impl Arrival {
    /// An event the homeserver stamped `sent_ms` (milliseconds since 1970), queued now. The
    /// clocks are the homeserver's and this machine's: a skew between them is in the figure.
    pub fn now(sent_ms: Option<u64>) -> Arrival {
        let received = sent_ms
            .map(|sent| Duration::from_millis(crate::calendar::now_ms().saturating_sub(sent)))
            .filter(|took| *took < FRESH);
        let queued = Instant::now();
        // A response that came after the event was sent (so it may carry it).
        let read = received.and_then(|received| {
            let answered = (*super::lock(&SYNC_ANSWERED))?;
            Some(queued.saturating_duration_since(answered)).filter(|read| *read <= received)
        });
        Arrival {
            queued,
            received,
            read,
        }
    }
}

/// The times of one job.
#[derive(Debug)]
struct Stopwatch {
    arrival: Arrival,
    started: Instant,
    called: Cell<Option<Instant>>,
    answered: Cell<Option<Instant>>,
    first_ack: Cell<Option<Instant>>,
    homeserver: Cell<Duration>,
}

/// Runs `job` (arrived at `arrival`, taken now) with its stopwatch.
pub(crate) fn timed<F: Future>(arrival: Arrival, job: F) -> impl Future<Output = F::Output> {
    let watch = Stopwatch {
        arrival,
        started: Instant::now(),
        called: Cell::new(None),
        answered: Cell::new(None),
        first_ack: Cell::new(None),
        homeserver: Cell::new(Duration::ZERO),
    };
    WATCH.scope(watch, job)
}

/// The homeserver acknowledged an event of this job now (the first one counts).
pub(crate) fn acknowledged() {
    let _ = WATCH.try_with(|watch| {
        if watch.first_ack.get().is_none() {
            watch.first_ack.set(Some(Instant::now()));
        }
    });
}

/// A request of this job to the homeserver took `took` (counted until the first event is
/// acknowledged: what the first answer waited for). `false` outside a job.
pub(crate) fn waited_on_homeserver(took: Duration) -> bool {
    WATCH
        .try_with(|watch| {
            if watch.first_ack.get().is_none() {
                watch.homeserver.set(watch.homeserver.get() + took);
            }
        })
        .is_ok()
}

/// When the last sync response arrived (one bot per process: the binary's).
static SYNC_ANSWERED: Mutex<Option<Instant>> = Mutex::new(None);

/// A sync response arrived now (the SDK reads it next, then hands its events over).
pub(crate) fn sync_answered() {
    *super::lock(&SYNC_ANSWERED) = Some(Instant::now());
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
        if let Some(received) = watch.arrival.received {
            metrics.stage(Stage::Received, received);
        }
        let read = watch.arrival.read.unwrap_or_default();
        if let Some(read) = watch.arrival.read {
            metrics.stage(Stage::Read, read);
        }
        metrics.stage(
            Stage::Queued,
            watch
                .started
                .saturating_duration_since(watch.arrival.queued),
        );
        metrics.stage(
            Stage::Prepared,
            called.saturating_duration_since(watch.started),
        );
        metrics.stage(Stage::Platform, answered.saturating_duration_since(called));
        // A streamed answer's first part goes out while the platform writes: 0 here.
        let first = watch.first_ack.get().unwrap_or(now);
        metrics.stage(Stage::FirstSent, first.saturating_duration_since(answered));
        metrics.stage(Stage::Delivered, now.saturating_duration_since(answered));
        let homeserver = watch.homeserver.get();
        metrics.stage(Stage::Homeserver, homeserver);
        // The bot's own time: from the sync response to the first event acknowledged, less
        // the platform's and the homeserver's. Not for a streamed answer (its sends overlap the
        // platform).
        if first >= answered {
            let whole = first.saturating_duration_since(watch.arrival.queued) + read;
            let platform = answered.saturating_duration_since(called);
            metrics.stage(Stage::Own, whole.saturating_sub(platform + homeserver));
        }
    });
}
