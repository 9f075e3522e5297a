//! A recording HTTP proxy on loopback in front of the test homeserver. The bot talks to the
//! proxy's URL; tests ask it which requests were made, without instrumenting the bot. It can
//! also fail requests: chosen ones ([`Fault`], [`RecordingProxy::inject`]) or a seeded random
//! share of them ([`RecordingProxy::chaos`], see [`crate::chaos`]).

use crate::chaos::{Action, ChaosConfig, ChaosHit, Kind};
pub use crate::fault::Fault;
use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::TcpListener;

/// One request that went through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/_matrix/client/v3/login`.
    pub path: String,
    /// The query string without `?` (empty if none), e.g. a sync's `pos=…&timeout=…`.
    pub query: String,
    /// The status the homeserver answered (502 if it could not be reached; 0 while the
    /// request is still in flight, e.g. a long-polling sync).
    pub status: u16,
    /// When the request arrived, from the proxy's start.
    pub at_ms: u128,
    /// How long it took until answered (0 while in flight).
    pub took_ms: u128,
    /// Bytes of the answer's body handed to the client so far: less than the body when the
    /// client hung up before reading all of it (give or take the sockets' buffers).
    pub sent_bytes: u64,
}

impl Recorded {
    /// Whether this request can change anything on the server (anything but GET, and POSTs
    /// that only read: sync filters, key queries, search).
    pub fn is_write(&self) -> bool {
        let read_only_posts = [
            "/filter",
            "/keys/query",
            "/keys/claim",
            "/search",
            "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
        ];
        match self.method.as_str() {
            "GET" | "HEAD" | "OPTIONS" => false,
            "POST" => !read_only_posts.iter().any(|p| self.path.ends_with(p)),
            _ => true,
        }
    }
}

/// The chaos in force: its settings, how many requests of each kind it has seen, and what it
/// did.
#[derive(Debug)]
struct Chaos {
    config: ChaosConfig,
    seen: [u64; Kind::ALL.len()],
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    log: Mutex<Vec<Recorded>>,
    faults: Mutex<Vec<Fault>>,
    chaos: Mutex<Option<Chaos>>,
    hits: Mutex<Vec<ChaosHit>>,
    started: Instant,
}

impl Shared {
    /// The fault that applies to this request, if any (counted as used).
    fn fault_for(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().ok()?;
        let fault = faults.iter_mut().find(|f| f.matches(method, path))?;
        if let Some(n) = &mut fault.remaining {
            *n -= 1;
        }
        Some(fault.clone())
    }

    /// What chaos does to this request, if anything (recorded as a hit).
    fn chaos_for(&self, method: &str, path: &str, at_ms: u128) -> Option<Action> {
        let kind = Kind::of(path);
        let action = {
            let mut chaos = self.chaos.lock().ok()?;
            let chaos = chaos.as_mut()?;
            let seen = &mut chaos.seen[kind as usize];
            *seen += 1;
            chaos.config.decide(kind, *seen - 1)?
        };
        if let Ok(mut hits) = self.hits.lock() {
            hits.push(ChaosHit {
                at_ms,
                when: std::time::SystemTime::now(),
                method: method.to_owned(),
                path: path.to_owned(),
                kind,
                action,
            });
        }
        Some(action)
    }
}

/// Returned by the proxy's service to make hyper close the connection without an answer: the
/// client sees the connection reset.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the test proxy")
    }
}

impl std::error::Error for Reset {}

/// The proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct RecordingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    /// Starts a proxy on a free loopback port that forwards to `upstream` (a base URL).
    pub async fn start(upstream: &str) -> anyhow::Result<RecordingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            chaos: Mutex::new(None),
            hits: Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| forward(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RecordingProxy { addr, shared, task })
    }

    /// The URL to give the bot as its homeserver.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far (answered or in flight), in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Forgets the requests so far (to look at one phase only).
    pub fn clear(&self) {
        if let Ok(mut log) = self.shared.log.lock() {
            log.clear();
        }
    }

    /// Injects `fault` from now on (faults are checked in the order they were added).
    pub fn inject(&self, fault: Fault) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.push(fault);
        }
    }

    /// Removes every injected fault and stops the chaos (requests already held stay held
    /// until their time is up).
    pub fn heal(&self) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.clear();
        }
        if let Ok(mut chaos) = self.shared.chaos.lock() {
            *chaos = None;
        }
    }

    /// From now on, fails a seeded share of requests as `config` says (replacing any chaos
    /// before, its request counts started again). Injected [`Fault`]s are checked first.
    pub fn chaos(&self, config: ChaosConfig) {
        if let Ok(mut chaos) = self.shared.chaos.lock() {
            *chaos = Some(Chaos {
                config,
                seen: [0; Kind::ALL.len()],
            });
        }
    }

    /// Every fault the chaos injected so far, in arrival order.
    pub fn chaos_hits(&self) -> Vec<ChaosHit> {
        self.shared
            .hits
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Waits (up to a minute) until a request whose path contains `fragment` was answered
    /// `status`.
    pub async fn until_status(&self, fragment: &str, status: u16) {
        for _ in 0..600 {
            if self
                .requests()
                .iter()
                .any(|r| r.path.contains(fragment) && r.status == status)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no request to {fragment} was answered {status}");
    }

    /// Sync requests (sliding or v2), answered or in flight.
    pub fn syncs(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/sync"))
            .collect()
    }

    /// Requests whose method is `method` and whose path contains `fragment`.
    pub fn matching(&self, method: &str, fragment: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .collect()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The status recorded for a request the proxy dropped without forwarding it (chaos).
pub const DROPPED: u16 = 599;

/// Handles one request: records it, applies an injected fault or the chaos, and forwards it.
async fn forward(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Answer>, Reset> {
    let at_ms = shared.started.elapsed().as_millis();
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let index = record(&shared, &req, at_ms);
    let fault = shared.fault_for(&method, &path);
    if let Some(hold) = fault.as_ref().and_then(|f| f.held) {
        let response = held(shared.clone(), req, hold, index, at_ms).await;
        return Ok(response.map(|answer| answer.tallied(shared.clone(), index, at_ms)));
    }
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_forwarding) {
        set_status(&shared, index, at_ms, fault.status);
        return Ok(canned(fault));
    }
    let chaos = match fault {
        Some(_) => None,
        None => shared.chaos_for(&method, &path, at_ms),
    };
    if let Some(action) = chaos {
        if let Some(early) = before_forwarding(action).await {
            let status = early.as_ref().map_or(DROPPED, |r| r.status().as_u16());
            set_status(&shared, index, at_ms, status);
            return early;
        }
    }
    let (status, response) = pass_on(&shared, req).await;
    if let Some(fault) = fault {
        set_status(&shared, index, at_ms, fault.status);
        return Ok(canned(&fault));
    }
    set_status(&shared, index, at_ms, status.as_u16());
    if chaos == Some(Action::ResetAfter) {
        return Err(Reset);
    }
    Ok(response.map(|answer| answer.tallied(shared.clone(), index, at_ms)))
}

/// How much of a body the proxy hands to hyper at a time (hyper asks for the next piece when it
/// has written the last, so what was handed out is what the client was sent).
const PIECE: usize = 64 * 1024;

/// A response body, handed out in pieces and counted into its request's `sent_bytes`.
#[derive(Debug)]
struct Answer {
    bytes: Bytes,
    sent: usize,
    tally: Option<(Arc<Shared>, Option<usize>, u128)>,
}

impl Answer {
    fn new(bytes: impl Into<Bytes>) -> Answer {
        Answer {
            bytes: bytes.into(),
            sent: 0,
            tally: None,
        }
    }

    /// Counts what is handed out into the log entry `index` (recorded at `at_ms`).
    fn tallied(self, shared: Arc<Shared>, index: Option<usize>, at_ms: u128) -> Answer {
        Answer {
            tally: Some((shared, index, at_ms)),
            ..self
        }
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.sent >= this.bytes.len() {
            return Poll::Ready(None);
        }
        let end = (this.sent + PIECE).min(this.bytes.len());
        let piece = this.bytes.slice(this.sent..end);
        this.sent = end;
        if let Some((shared, Some(index), at_ms)) = &this.tally {
            if let Ok(mut log) = shared.log.lock() {
                if let Some(entry) = log.get_mut(*index).filter(|e| e.at_ms == *at_ms) {
                    entry.sent_bytes = this.sent as u64;
                }
            }
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.bytes.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.bytes.len() - self.sent) as u64)
    }
}

/// Records a request as in flight; its index in the log.
fn record(shared: &Shared, req: &Request<Incoming>, at_ms: u128) -> Option<usize> {
    let mut log = shared.log.lock().ok()?;
    log.push(Recorded {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or_default().to_owned(),
        status: 0,
        at_ms,
        took_ms: 0,
        sent_bytes: 0,
    });
    Some(log.len() - 1)
}

/// What a chaos action does before the request would be forwarded: an answer or a dropped
/// connection instead of forwarding, or `None` to forward (after a delay, if that is the
/// action).
async fn before_forwarding(action: Action) -> Option<Result<Response<Answer>, Reset>> {
    match action {
        Action::Status500 => Some(Ok(matrix_error(500, "M_UNKNOWN", None))),
        Action::Status429 { retry_after_secs } => Some(Ok(matrix_error(
            429,
            "M_LIMIT_EXCEEDED",
            Some(retry_after_secs),
        ))),
        Action::HangThenReset { hold } => {
            tokio::time::sleep(hold).await;
            Some(Err(Reset))
        }
        Action::ResetBefore => Some(Err(Reset)),
        Action::Delay { by } => {
            tokio::time::sleep(by).await;
            None
        }
        Action::ResetAfter => None,
    }
}

/// Forwards `req` to the homeserver; its status and the answer to pass back (502 if it could
/// not be reached).
/// Forwards `req` after `hold`, from a task of its own: a client that gives up (or dies)
/// meanwhile does not stop it, and its status is still recorded.
async fn held(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    hold: std::time::Duration,
    index: Option<usize>,
    at_ms: u128,
) -> Response<Answer> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let req = Request::from_parts(parts, http_body_util::Full::new(body));
    let task = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        let (status, response) = pass_on(&shared, req).await;
        set_status(&shared, index, at_ms, status.as_u16());
        response
    });
    task.await
        .unwrap_or_else(|_| matrix_error(502, "M_UNKNOWN", None))
}

async fn pass_on<B>(shared: &Shared, req: Request<B>) -> (StatusCode, Response<Answer>)
where
    B: Body,
{
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut upstream = shared
        .client
        .request(method, format!("{}{path_and_query}", shared.upstream))
        .body(body);
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.send().await else {
        return (
            StatusCode::BAD_GATEWAY,
            matrix_error(502, "M_UNKNOWN", None),
        );
    };
    let status = answer.status();
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    let response = response.body(Answer::new(bytes)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Answer::new(Bytes::new()));
        *fallback.status_mut() = StatusCode::BAD_GATEWAY;
        fallback
    });
    (status, response)
}

/// A Matrix error answer (with `Retry-After` and `retry_after_ms` when given).
fn matrix_error(status: u16, errcode: &str, retry_after_secs: Option<u64>) -> Response<Answer> {
    let body = match retry_after_secs {
        Some(secs) => format!(
            "{{\"errcode\":\"{errcode}\",\"error\":\"injected by the test proxy\",\"retry_after_ms\":{}}}",
            secs * 1000
        ),
        None => format!("{{\"errcode\":\"{errcode}\",\"error\":\"injected by the test proxy\"}}"),
    };
    let mut response = Response::new(Answer::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(secs),
        );
    }
    response
}

/// Records the status a request was answered with.
fn set_status(shared: &Shared, index: Option<usize>, at_ms: u128, status: u16) {
    if let (Ok(mut log), Some(index)) = (shared.log.lock(), index) {
        // `clear` may have emptied the log meanwhile; then there is nothing to update.
        if let Some(entry) = log.get_mut(index).filter(|e| e.at_ms == at_ms) {
            entry.status = status;
            entry.took_ms = shared.started.elapsed().as_millis() - at_ms;
        }
    }
}

/// The answer a fault gives.
fn canned(fault: &Fault) -> Response<Answer> {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Answer::new(Bytes::from(fault.body.clone())));
    *response.status_mut() = status;
    if fault.status == 429 {
        if let Ok(value) = hyper::header::HeaderValue::from_str("1") {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, value);
        }
    }
    response
}
