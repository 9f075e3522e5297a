//! The yardstick's own time per answer, measured as lambda-matrix measures its own (its `read`
//! and `own` stages, `bot::runtime::waits` and `stopwatch`): `read` from the sync response's
//! arrival (the SDK's request span for `/sync` closing) to the echo handler starting, `own` that
//! plus the handler's send less the requests it waited on (the room key's requests included).
//! Unlike the bot's per-job account, every request other than a sync that ends during the send
//! counts as waited on: right for the sequential messages (one echo at a time; only a rare
//! request of the SDK's own, such as a key upload, could fall in), approximate for the burst
//! (not used). The yardstick's process appends one line per echo to [`FILE`] in its store
//! folder (with the text it echoed); the bench takes the lines of the sequential messages. So
//! "the bot's own work" has a plain bot's on the same SDK beside it (issue 34, point 3).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer;

/// The file in the yardstick's store folder: "read_us own_us text" per echo.
const FILE: &str = "own.txt";
/// Where the SDK's request span lives, and its name (as lambda-matrix's layer).
const TARGET: &str = "matrix_sdk::http_client";
const SPAN: &str = "send";

/// When the last sync response arrived.
static SYNC_ANSWERED: Mutex<Option<Instant>> = Mutex::new(None);
/// Microseconds spent in requests other than syncs, all of them, ever.
static WAITED_US: AtomicU64 = AtomicU64::new(0);

/// When a request span was made, and whether it is a sync.
struct Started(Instant, bool);

/// Finds the `uri` field: a sync request's path ends in `/sync`.
struct IsSync(Option<bool>);

impl Visit for IsSync {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "uri" {
            self.0 = Some(value.ends_with("/sync"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "uri" {
            self.0 = Some(format!("{value:?}").trim_matches('"').ends_with("/sync"));
        }
    }
}

struct Requests;

impl<S> Layer<S> for Requests
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if meta.target() == TARGET && meta.name() == SPAN {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Started(Instant::now(), false));
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut uri = IsSync(None);
        values.record(&mut uri);
        if let (Some(sync), Some(span)) = (uri.0, ctx.span(id)) {
            if let Some(started) = span.extensions_mut().get_mut::<Started>() {
                started.1 = sync;
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(Started(at, sync)) = extensions.get::<Started>() else {
            return;
        };
        if *sync {
            *lock(&SYNC_ANSWERED) = Some(Instant::now());
        } else {
            WAITED_US.fetch_add(at.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Installs the layer that times the SDK's requests (the yardstick's process; no log output).
pub fn install() -> anyhow::Result<()> {
    tracing_subscriber::registry()
        .with(Requests.with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO)))
        .try_init()?;
    Ok(())
}

/// One echo being timed: made as its handler starts.
pub struct Echo {
    read: Duration,
    started: Instant,
    waited_us: u64,
}

impl Echo {
    pub fn start() -> Echo {
        let started = Instant::now();
        let read = lock(&SYNC_ANSWERED)
            .map(|at| started.saturating_duration_since(at))
            .unwrap_or_default();
        Echo {
            read,
            started,
            waited_us: WAITED_US.load(Ordering::Relaxed),
        }
    }

    /// The echo of `text` was sent: appends its line to [`FILE`] in `store`.
    pub fn sent(self, store: &Path, text: &str) {
        let waited = WAITED_US.load(Ordering::Relaxed) - self.waited_us;
        let sending = self.started.elapsed().as_micros() as u64;
        let own = self.read.as_micros() as u64 + sending.saturating_sub(waited);
        let line = format!(
            "{} {own} {}\n",
            self.read.as_micros(),
            text.replace('\n', " ")
        );
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file(store))
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(error) = appended {
            eprintln!("yardstick: cannot write {FILE}: {error}");
        }
    }
}

fn file(store: &Path) -> PathBuf {
    store.join(FILE)
}

/// The (read, own) of each echo so far of a text starting with `prefix`, ms.
fn lines(store: &Path, prefix: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(file(store)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            let (read, own, text) = (fields.next()?, fields.next()?, fields.next()?);
            text.starts_with(prefix).then_some(())?;
            Some((
                read.parse::<f64>().ok()? / 1000.0,
                own.parse::<f64>().ok()? / 1000.0,
            ))
        })
        .collect()
}

/// The (read, own) of the echoes of the `count` texts starting with `prefix`, ms, once written
/// (an echo's line comes after the person may have seen it): waits up to 5 s for them.
pub async fn wait_for(store: &Path, prefix: &str, count: usize) -> Vec<(f64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = lines(store, prefix);
        if found.len() >= count || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_echos_line_is_read_back_by_its_texts_prefix_in_milliseconds() {
        let store = tempfile::tempdir().expect("a folder");
        std::fs::write(
            super::file(store.path()),
            "8000 16500 y60.0 hello 0\nnot a line\n7000 15000 y60.0 how are you?\n9000 15000 y60.0 hello 1\n",
        )
        .expect("written");
        assert_eq!(
            super::lines(store.path(), "y60.0 hello "),
            vec![(8.0, 16.5), (9.0, 15.0)]
        );
        assert!(super::lines(store.path(), "ys60.0 hello ").is_empty());
    }
}
