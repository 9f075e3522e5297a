//! `/metrics` (Prometheus text) and `/health` on `METRICS_ADDR`.
//!
//! Counters are plain atomics; `/health` answers 200 only once startup (reconcile, resume,
//! catch-up) is done and the bot handles live traffic, 503 before.

use crate::calendar::now_ms;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod stages;
mod tokens;

pub use stages::Stage;
use stages::StageTimes;

/// Upper bounds of the platform latency histogram, in seconds.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The bot's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    ready: AtomicBool,
    answered: AtomicU64,
    commands: AtomicU64,
    platform_errors: AtomicU64,
    reconcile_repairs: AtomicU64,
    sync_errors: AtomicU64,
    send_retries: AtomicU64,
    send_failures: AtomicU64,
    logins: AtomicU64,
    /// When the sync started failing, in ms since the Unix epoch (0: it is not failing).
    sync_failing_since_ms: AtomicU64,
    /// How long the sync may fail before `/health` says so (`METRICS_UNHEALTHY_AFTER`); 0:
    /// the default.
    unhealthy_after_ms: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ms: AtomicU64,
    stages: StageTimes,
    tokens: tokens::TokenCounts,
    /// The live sync's last response carried less than a page of to-device messages: no room
    /// keys are waiting on the homeserver (false until the first live response).
    to_device_drained: AtomicBool,
}

impl Metrics {
    /// Whether the last live sync response said no more to-device messages wait.
    pub fn to_device_drained(&self, drained: bool) {
        self.to_device_drained.store(drained, Ordering::SeqCst);
    }

    /// [`Metrics::to_device_drained`] as last said (false before the live sync's first response).
    pub fn is_to_device_drained(&self) -> bool {
        self.to_device_drained.load(Ordering::SeqCst)
    }

    /// One answer's usage (every model that worked on it).
    pub fn answer_usage(&self, usage: &[lambda_matrix_platform::Usage]) {
        self.tokens.answer(usage);
    }

    /// A person was told they used up a budget.
    pub fn budget_reached(&self) {
        self.tokens.over_budget();
    }

    /// Startup is done: `/health` says ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// The bot is starting over (its session was lost): `/health` says so until it is ready.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// `/health` answers 503 once the sync has failed for longer than `after`.
    pub fn set_unhealthy_after(&self, after: Duration) {
        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX).max(1);
        self.unhealthy_after_ms.store(ms, Ordering::Relaxed);
    }

    /// A login (with the password) was made: the first, or after the session was lost.
    pub fn login(&self) {
        self.logins.fetch_add(1, Ordering::Relaxed);
    }

    /// A sync request succeeded.
    pub fn sync_ok(&self) {
        self.sync_failing_since_ms.store(0, Ordering::Relaxed);
    }

    /// A message was answered by the platform.
    pub fn answered(&self, latency: Duration) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        self.observe(latency);
    }

    /// The platform failed or timed out.
    pub fn platform_error(&self, latency: Duration) {
        self.platform_errors.fetch_add(1, Ordering::Relaxed);
        self.observe(latency);
    }

    /// One stage of an answer took `took` (see [`Stage`]).
    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages.observe(stage, took);
    }

    /// A command was run.
    pub fn command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Reconcile restored or repaired `n` rows.
    pub fn reconcile_repairs(&self, n: usize) {
        self.reconcile_repairs
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A sync request failed.
    pub fn sync_error(&self) {
        let _first = self.sync_failing_since_ms.compare_exchange(
            0,
            now_ms().max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.sync_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A send failed and is tried again (same transaction id).
    pub fn send_retry(&self) {
        self.send_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A send was given up (`MATRIX_SEND_RETRY_FOR` passed, or the server refused it); the room
    /// stays in flight so the next start finishes it.
    pub fn send_failure(&self) {
        self.send_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ms
            .fetch_add(latency.as_millis() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        };
        counter(
            &mut out,
            "lambda_matrix_messages_answered_total",
            "Messages answered by the platform.",
            &self.answered,
        );
        counter(
            &mut out,
            "lambda_matrix_commands_total",
            "Commands run.",
            &self.commands,
        );
        counter(
            &mut out,
            "lambda_matrix_platform_errors_total",
            "Platform failures and timeouts.",
            &self.platform_errors,
        );
        counter(
            &mut out,
            "lambda_matrix_reconcile_repairs_total",
            "Cache rows restored or repaired by reconcile.",
            &self.reconcile_repairs,
        );
        counter(
            &mut out,
            "lambda_matrix_sync_errors_total",
            "Failed sync requests.",
            &self.sync_errors,
        );
        counter(
            &mut out,
            "lambda_matrix_send_retries_total",
            "Sends tried again after a failure.",
            &self.send_retries,
        );
        counter(
            &mut out,
            "lambda_matrix_send_failures_total",
            "Sends given up; their rooms are finished once the homeserver takes events again.",
            &self.send_failures,
        );
        counter(
            &mut out,
            "lambda_matrix_logins_total",
            "Logins with the password: the first, and after a lost session.",
            &self.logins,
        );
        self.render_latency(&mut out);
        self.stages.render(&mut out);
        self.tokens.render(&mut out);
        let _ = writeln!(out, "# HELP lambda_matrix_ready Startup done, live traffic handled.\n# TYPE lambda_matrix_ready gauge\nlambda_matrix_ready {}", u8::from(self.ready.load(Ordering::SeqCst)));
        out
    }

    /// The platform latency histogram.
    fn render_latency(&self, out: &mut String) {
        let name = "lambda_matrix_platform_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time the platform took per message.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count {count}");
    }

    /// `/health` at `now` (ms since the Unix epoch): ready, and the sync not failing for longer
    /// than the bound.
    fn health(&self, now: u64) -> (StatusCode, String) {
        if !self.ready.load(Ordering::SeqCst) {
            return (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_owned());
        }
        let since = self.sync_failing_since_ms.load(Ordering::Relaxed);
        let bound = match self.unhealthy_after_ms.load(Ordering::Relaxed) {
            0 => DEFAULT_UNHEALTHY_AFTER_MS,
            ms => ms,
        };
        let failing = now.saturating_sub(since);
        if since != 0 && failing > bound {
            let text = format!("the sync has been failing for {} s\n", failing / 1000);
            return (StatusCode::SERVICE_UNAVAILABLE, text);
        }
        (StatusCode::OK, "ready\n".to_owned())
    }

    fn respond(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, body) = match path {
            "/metrics" => (StatusCode::OK, self.render()),
            "/health" => self.health(now_ms()),
            _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    }
}

/// `METRICS_UNHEALTHY_AFTER`'s default, for a [`Metrics`] made without settings.
const DEFAULT_UNHEALTHY_AFTER_MS: u64 = 120_000;

/// Serves `/metrics` and `/health` on `addr` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics and /health");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let response = metrics.respond(request.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.answered(Duration::from_millis(30));
        m.answered(Duration::from_millis(700));
        m.platform_error(Duration::from_secs(200));
        m.command();
        let text = m.render();
        assert!(
            text.contains("lambda_matrix_messages_answered_total 2"),
            "{text}"
        );
        assert!(text.contains("lambda_matrix_platform_errors_total 1"));
        assert!(text.contains("lambda_matrix_commands_total 1"));
        assert!(text.contains("lambda_matrix_platform_latency_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("lambda_matrix_platform_latency_seconds_bucket{le=\"1\"} 2"));
        assert!(text.contains("lambda_matrix_platform_latency_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("lambda_matrix_ready 0"));
        assert_eq!(
            m.respond("/health").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.set_ready();
        assert_eq!(m.respond("/health").status(), StatusCode::OK);
        assert_eq!(m.respond("/nope").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn health_says_when_the_sync_has_failed_for_longer_than_the_bound() {
        let m = Metrics::default();
        m.set_unhealthy_after(Duration::from_secs(60));
        m.set_ready();
        m.sync_error();
        let since = m.sync_failing_since_ms.load(Ordering::Relaxed);
        assert_eq!(
            m.health(since + 59_000).0,
            StatusCode::OK,
            "within the bound"
        );
        let (status, body) = m.health(since + 61_000);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "the sync has been failing for 61 s\n");
        m.sync_error();
        assert_eq!(
            m.sync_failing_since_ms.load(Ordering::Relaxed),
            since,
            "failing since the first failure"
        );
        m.sync_ok();
        assert_eq!(m.health(since + 61_000).0, StatusCode::OK, "recovered");
        m.login();
        assert!(m.render().contains("lambda_matrix_logins_total 1"));
        m.set_not_ready();
        assert_eq!(m.health(since).0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
