//! The homeserver's share of a job: a tracing layer that times each request the SDK makes
//! (its `send` span in `matrix_sdk::http_client`, from the call to the answer, retries
//! included) and adds the time to the stopwatch of the job that made it
//! ([`super::stopwatch`]), so an answer's `own` stage is the bot's time without the
//! homeserver's. A sync request's answer marks when the sync's response arrived (the SDK
//! then reads it: the `read` stage); other requests made outside a job count nowhere. The
//! binary installs it beside the log output ([`crate::logging`]); it prints nothing.

use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Where the SDK's request span lives, and its name.
const TARGET: &str = "matrix_sdk::http_client";
const SPAN: &str = "send";

/// When a request span was made, and whether its request is a sync (from its `uri` field,
/// recorded after the span is made).
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

/// The layer (see the module's text).
struct Waits;

impl<S> Layer<S> for Waits
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
        let (Some(sync), Some(span)) = (uri.0, ctx.span(id)) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(started) = extensions.get_mut::<Started>() {
            started.1 = sync;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(Started(at, sync)) = span.extensions().get::<Started>() {
                if !super::stopwatch::waited_on_homeserver(at.elapsed()) && *sync {
                    super::stopwatch::sync_answered();
                }
            }
        }
    }
}

/// The layer, enabled for the SDK's request spans only (whatever the log filter says).
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    Waits.with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    use super::super::stopwatch::{self, Arrival};
    use crate::metrics::Metrics;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    /// A stage's sum from `metrics`, seconds.
    fn sum(metrics: &Metrics, stage: &str) -> f64 {
        let text = metrics.render();
        let prefix = format!("lambda_matrix_answer_stage_seconds_sum{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {stage} sum in {text}"))
    }

    /// A request span as the SDK makes it, to `path`, taking `ms`.
    async fn request(path: &str, ms: u64) {
        let span = tracing::info_span!(target: "matrix_sdk::http_client", "send", uri = tracing::field::Empty);
        span.record("uri", format!("http://127.0.0.1:1{path}"));
        let _entered = span.enter();
        std::thread::sleep(Duration::from_millis(ms));
    }

    #[tokio::test]
    async fn a_jobs_requests_count_as_its_waits_on_the_homeserver_and_a_syncs_answer_starts_its_read(
    ) {
        let subscriber = tracing_subscriber::registry().with(super::layer());
        let _guard = tracing::subscriber::set_default(subscriber);
        let metrics = Metrics::default();
        // Outside a job: a sync's answer is when the SDK starts reading; other requests count
        // nowhere.
        request("/_matrix/client/v3/sync", 30).await;
        request("/_matrix/client/v3/keys/upload", 30).await;
        std::thread::sleep(Duration::from_millis(20));
        let sent_ms = crate::calendar::now_ms() - 1_000;
        stopwatch::timed(Arrival::now(Some(sent_ms)), async {
            request("/_matrix/client/v3/rooms/!r/messages", 20).await;
            // Another span of the SDK's is not a request.
            drop(tracing::info_span!(target: "matrix_sdk::room", "send"));
            stopwatch::platform_called();
            stopwatch::platform_answered();
            request("/_matrix/client/v3/rooms/!r/send/m.room.message/1", 20).await;
            stopwatch::acknowledged();
            // After the first event is acknowledged: not what the answer waited for.
            request("/_matrix/client/v3/rooms/!r/typing/@b:x", 30).await;
            stopwatch::delivered(&metrics);
        })
        .await;
        let waited = sum(&metrics, "homeserver");
        assert!((0.04..0.07).contains(&waited), "waited {waited} s");
        // From the sync's answer: the other request and the pause (the SDK's reading, here).
        let read = sum(&metrics, "read");
        assert!((0.05..0.5).contains(&read), "read {read} s");
        let own = sum(&metrics, "own");
        assert!(
            own >= read && own < read + 0.02,
            "own {own} s, read {read} s"
        );
    }
}
