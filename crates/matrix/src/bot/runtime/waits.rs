//! The homeserver's share of a job: a tracing layer that times each request the SDK makes
//! (its `send` span in `matrix_sdk::http_client`, from the call to the answer, retries
//! included) and adds the time to the stopwatch of the job that made it
//! ([`super::stopwatch`]), so an answer's `own` stage is the bot's time without the
//! homeserver's. Requests made outside a job (the sync, the start) count nowhere. The binary
//! installs it beside the log output ([`crate::logging`]); it prints nothing.

use std::time::Instant;
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Where the SDK's request span lives, and its name.
const TARGET: &str = "matrix_sdk::http_client";
const SPAN: &str = "send";

/// When a request span was made.
struct Started(Instant);

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
                span.extensions_mut().insert(Started(Instant::now()));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(Started(at)) = span.extensions().get::<Started>() {
                super::stopwatch::waited_on_homeserver(at.elapsed());
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
    use tracing_subscriber::layer::SubscriberExt;

    /// The `homeserver` stage's sum from `metrics`, seconds.
    fn homeserver_sum(metrics: &Metrics) -> f64 {
        let text = metrics.render();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("lambda_matrix_answer_stage_seconds_sum{stage=\"homeserver\"} ")
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no homeserver sum in {text}"))
    }

    #[tokio::test]
    async fn a_jobs_requests_count_as_its_waits_on_the_homeserver_and_nothing_else_does() {
        let subscriber = tracing_subscriber::registry().with(super::layer());
        let _guard = tracing::subscriber::set_default(subscriber);
        let metrics = Metrics::default();
        let request = |ms: u64| async move {
            let span = tracing::info_span!(target: "matrix_sdk::http_client", "send");
            let _entered = span.enter();
            std::thread::sleep(std::time::Duration::from_millis(ms));
        };
        // Outside a job: counted nowhere (no stopwatch).
        request(30).await;
        stopwatch::timed(Arrival::now(None), async {
            request(20).await;
            // Another span of the SDK's is not a request.
            drop(tracing::info_span!(target: "matrix_sdk::room", "send"));
            stopwatch::platform_called();
            stopwatch::platform_answered();
            request(20).await;
            stopwatch::acknowledged();
            // After the first event is acknowledged: not what the answer waited for.
            request(30).await;
            stopwatch::delivered(&metrics);
        })
        .await;
        let waited = homeserver_sum(&metrics);
        assert!((0.04..0.07).contains(&waited), "waited {waited} s");
    }
}
