//! A fake OpenAI-compatible chat-completions server on `127.0.0.1`, for tests (feature
//! `fake-server`), served with hyper (HTTP/1.1, one request per connection: every response
//! says `Connection: close`).
//!
//! It serves `GET /v1/models`, `POST /v1/audio/transcriptions` (see [`expected_transcript`];
//! every form is recorded, [`FakeOpenAi::transcriptions`]) and `POST /v1/chat/completions`
//! (a message's content may be parts: text, and images as base64 data URLs, which are checked
//! and counted in the answer as ` (images: <n>)`), answering
//! `openai: <last user message> (context: <n>)`, where `n` counts the messages before the last
//! user message, system prompts excluded (see [`expected_answer`]). With `"stream": true` the
//! answer comes as server-sent events (a chunked body), word by word,
//! [`FakeOptions::chunk_delay`] apart, ending with `data: [DONE]`.
//!
//! Failures and unusual answers are injected by a trigger word in the last user message (a whole
//! word: `hang` does not match `change`):
//!
//! | word          | reply                                                                      |
//! |---------------|----------------------------------------------------------------------------|
//! | `status500`   | HTTP 500                                                                   |
//! | `status429`   | HTTP 429 with `Retry-After: 7`                                             |
//! | `status401`   | HTTP 401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}` |
//! | `malformed`   | HTTP 200 with JSON that is not a chat completion (also when streaming)     |
//! | `hang`        | nothing, ever (the connection stays open)                                  |
//! | `cut`         | streaming: two chunks, then the body ends without `[DONE]` and the connection closes |
//! | `slowstream`  | streaming with 1 s between chunks, whatever `chunk_delay` says             |
//! | `streamerror` | streaming: one chunk, then `data: {"error":{…}}` and `[DONE]`              |
//! | `flood`       | streaming: pieces of 81 lines of 100 `x` (8,181 bytes) as fast as the connection takes them, up to 200 MB, then `[DONE]`; stops when the connection is gone (the client went away). Not streaming: 990 such lines (about 100 KB) |
//! | `code40k`     | [`code40k_answer`], a fenced code block of about 40 KiB full of `<`, `>`, `&`, `"`; streamed in pieces of about 2 KiB, [`FakeOptions::chunk_delay`] apart |
//!
//! With [`FakeOptions::chaos`] set, a seeded share of chat-completions requests (by their
//! order) gets a fault instead, whatever they say: HTTP 500, HTTP 429 (`Retry-After: 1`), no
//! answer ever, or a stream cut off halfway (a non-streamed request: the connection closes with
//! no reply); see [`FakeChaos`].
//!
//! Every chat-completions request is recorded ([`FakeOpenAi::requests`]), and every body byte
//! handed to a connection is counted ([`FakeOpenAi::bytes_sent`]). Dropping the [`FakeOpenAi`]
//! stops it and closes its connections.

mod audio;
mod body;
mod reply;
mod stream;

pub use audio::{expected_transcript, ReceivedTranscription};
pub use reply::{code40k_answer, expected_answer};

use body::{Counted, Reply};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use reply::Conversation;
use serde_json::Value;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The most request body bytes read; a larger body closes the connection without a reply.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How many lines of 100 `x` a non-streamed `flood` answer has (about 100 KB).
const FLOOD_WHOLE_LINES: usize = 990;

/// The size of the pieces `code40k` is streamed in.
const CODE40K_PIECE_BYTES: usize = 2 * 1024;

/// How the fake server behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeOptions {
    /// The served model ids (default: `fake-model`); a chat request for another model gets 404.
    pub models: Vec<String>,
    /// Whether `GET /v1/models` exists (default: true; false → 404, like servers without it).
    pub serve_models: bool,
    /// The pause between streamed chunks (default: none).
    pub chunk_delay: Duration,
    /// When set, requests without `Authorization: Bearer <key>` get 401 (whose message echoes
    /// the key that was sent, as careless servers do).
    pub required_api_key: Option<String>,
    /// Seeded faults for a share of chat-completions requests (default: none).
    pub chaos: Option<FakeChaos>,
    /// Whether answers report their usage (default: true): a whole reply's `usage`, and a
    /// stream's last chunk when asked (`stream_options.include_usage`). See [`reply::usage`].
    pub usage: bool,
}

/// Seeded faults: the `n`-th chat-completions request (from 0) gets one when the seed and `n`
/// say so, so a run can be repeated as far as the order of requests is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeChaos {
    /// The seed.
    pub seed: u64,
    /// The share of requests that get a fault, in thousandths (50 = 5 %).
    pub per_mille: u32,
}

/// What [`FakeChaos`] does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeFault {
    /// HTTP 500.
    Status500,
    /// HTTP 429 with `Retry-After: 1`.
    Status429,
    /// Nothing, ever (the connection stays open).
    Hang,
    /// Streaming: half the pieces (at least one), then the connection closes without `[DONE]`;
    /// not streaming: the connection closes without a reply.
    Cut,
}

impl FakeChaos {
    /// The fault for the `index`-th chat-completions request, if it gets one.
    pub fn fault_for(&self, index: u64) -> Option<FakeFault> {
        let roll = mix(mix(self.seed) ^ index);
        if roll % 1000 >= u64::from(self.per_mille) {
            return None;
        }
        Some(match mix(roll) % 4 {
            0 => FakeFault::Status500,
            1 => FakeFault::Status429,
            2 => FakeFault::Hang,
            _ => FakeFault::Cut,
        })
    }
}

/// splitmix64's finaliser.
fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            models: vec!["fake-model".into()],
            serve_models: true,
            chunk_delay: Duration::ZERO,
            required_api_key: None,
            chaos: None,
            usage: true,
        }
    }
}

/// One chat-completions request the fake received.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedRequest {
    /// The JSON body (a JSON string holding the raw body if it was not JSON).
    pub body: Value,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
}

impl ReceivedRequest {
    /// The images of its last user message: (MIME type, decoded bytes) each.
    pub fn images(&self) -> Vec<(String, Vec<u8>)> {
        Conversation::of(&self.body)
            .map(|c| c.images)
            .unwrap_or_default()
    }

    /// The text of its last user message.
    pub fn last_user_text(&self) -> Option<String> {
        Conversation::of(&self.body).map(|c| c.last_user_message)
    }
}

/// A running fake server; stops when dropped.
#[derive(Debug)]
pub struct FakeOpenAi {
    url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    options: FakeOptions,
    requests: Mutex<Vec<ReceivedRequest>>,
    transcriptions: Mutex<Vec<ReceivedTranscription>>,
    model_list_requests: AtomicUsize,
    /// Response body bytes handed to the connections, over all requests.
    bytes_sent: Arc<AtomicU64>,
    /// Chat-completions requests so far (the next one's index for [`FakeChaos`]).
    chats: AtomicU64,
    /// The faults [`FakeChaos`] injected, by request index.
    faults: Mutex<Vec<(u64, FakeFault)>>,
}

impl FakeOpenAi {
    /// Starts a server on a free port of `127.0.0.1` (needs a Tokio runtime).
    pub async fn start(options: FakeOptions) -> io::Result<FakeOpenAi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let state = Arc::new(State {
            options,
            requests: Mutex::new(Vec::new()),
            transcriptions: Mutex::new(Vec::new()),
            model_list_requests: AtomicUsize::new(0),
            bytes_sent: Arc::new(AtomicU64::new(0)),
            chats: AtomicU64::new(0),
            faults: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept(listener, Arc::clone(&state)));
        Ok(FakeOpenAi { url, state, task })
    }

    /// The base URL, `http://127.0.0.1:<port>/v1`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every chat-completions request received so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.requests().clone()
    }

    /// Every transcription request received so far, oldest first.
    pub fn transcriptions(&self) -> Vec<ReceivedTranscription> {
        self.state
            .transcriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// How many times `GET /v1/models` was asked.
    pub fn model_list_requests(&self) -> usize {
        self.state.model_list_requests.load(Ordering::SeqCst)
    }

    /// The faults [`FakeOptions::chaos`] injected so far: (request index, fault).
    pub fn chaos_faults(&self) -> Vec<(u64, FakeFault)> {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// How many body bytes the server has handed to its connections so far, over all requests
    /// (headers and chunk framing not counted). A streamed body is handed over piece by piece
    /// as hyper asks for it, so this runs ahead of what the sockets took by at most hyper's
    /// write buffer.
    pub fn bytes_sent(&self) -> u64 {
        self.state.bytes_sent.load(Ordering::Relaxed)
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort(); // drops the listener and every connection task with it
    }
}

impl State {
    fn requests(&self) -> std::sync::MutexGuard<'_, Vec<ReceivedRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a chat-completions request; the fault the chaos gives it, if any (recorded).
    fn chaos_fault(&self) -> Option<FakeFault> {
        let index = self.chats.fetch_add(1, Ordering::SeqCst);
        let fault = self.options.chaos?.fault_for(index)?;
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((index, fault));
        Some(fault)
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((socket, _)) => {
                connections.spawn(serve(socket, Arc::clone(&state)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves one connection with hyper: one request, then the connection closes.
async fn serve(socket: TcpStream, state: Arc<State>) {
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        async move {
            let response = respond(&state, request).await?;
            let sent = Arc::clone(&state.bytes_sent);
            Ok::<_, io::Error>(response.map(|body| Counted::new(body, sent)))
        }
    });
    // A client that goes away mid-reply is not the fake's problem; neither is one whose
    // request cannot be read, or one the chaos leaves without a reply (an error: hyper closes
    // the connection without writing anything).
    let _ = http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(socket), service)
        .await;
}

/// The headers of a JSON body.
const JSON: [(HeaderName, &str); 1] = [(CONTENT_TYPE, "application/json")];

/// A `status` reply with a JSON `body`.
fn json_reply(status: StatusCode, body: &Value) -> Reply {
    body::whole(status, &JSON, body.to_string().into())
}

/// The reply to `request`; an error closes the connection without one.
async fn respond(state: &State, request: Request<Incoming>) -> io::Result<Reply> {
    let (head, body) = request.into_parts();
    let raw = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    let authorization = (head.headers.get(AUTHORIZATION))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let path = head.uri.path();
    let chat = head.method == Method::POST && path == "/v1/chat/completions";
    let body = if chat {
        let body = serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
        state.requests().push(ReceivedRequest {
            body: body.clone(),
            authorization: authorization.clone(),
        });
        body
    } else {
        Value::Null
    };
    if let Some(key) = &state.options.required_api_key {
        if authorization.as_deref() != Some(format!("Bearer {key}").as_str()) {
            let sent = authorization.as_deref().unwrap_or_default();
            let sent = sent.strip_prefix("Bearer ").unwrap_or(sent);
            let message = format!("Incorrect API key provided: {sent}");
            let error = reply::error(&message, "invalid_request_error");
            return Ok(json_reply(StatusCode::UNAUTHORIZED, &error));
        }
    }
    match (&head.method, path) {
        (&Method::GET, "/v1/models") if state.options.serve_models => {
            state.model_list_requests.fetch_add(1, Ordering::SeqCst);
            let data: Vec<Value> = (state.options.models.iter())
                .map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": "fake"}))
                .collect();
            let list = serde_json::json!({"object": "list", "data": data});
            Ok(json_reply(StatusCode::OK, &list))
        }
        _ if chat => chat_completion(state, &body).await,
        (&Method::POST, "/v1/audio/transcriptions") => {
            let content_type = (head.headers.get(CONTENT_TYPE))
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default();
            let Some(form) = audio::read_form(&content_type, &raw) else {
                let error = reply::error(
                    "a form with model and file is needed",
                    "invalid_request_error",
                );
                return Ok(json_reply(StatusCode::BAD_REQUEST, &error));
            };
            let text = expected_transcript(&form.bytes);
            (state.transcriptions.lock())
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(form);
            Ok(json_reply(
                StatusCode::OK,
                &serde_json::json!({ "text": text }),
            ))
        }
        _ => {
            let error = reply::error("no such endpoint", "not_found");
            Ok(json_reply(StatusCode::NOT_FOUND, &error))
        }
    }
}

async fn chat_completion(state: &State, body: &Value) -> io::Result<Reply> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !state.options.models.iter().any(|served| served == model) {
        let message = format!("The model `{model}` does not exist");
        let error = reply::error(&message, "invalid_request_error");
        return Ok(json_reply(StatusCode::NOT_FOUND, &error));
    }
    let Some(conversation) = Conversation::of(body) else {
        let error = reply::error(
            "messages must end with a user message",
            "invalid_request_error",
        );
        return Ok(json_reply(StatusCode::BAD_REQUEST, &error));
    };
    let text = conversation.last_user_message.as_str();
    let has = |trigger: &str| has_word(text, trigger);
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let fault = state.chaos_fault();
    match fault {
        // Closes the connection without a reply.
        Some(FakeFault::Cut) if !streaming => return Err(io::Error::other("chaos: cut")),
        Some(FakeFault::Cut) | None => {}
        Some(fault) => return Ok(chaos_reply(fault).await),
    }
    if has("hang") {
        std::future::pending::<()>().await;
    }
    if has("status500") {
        let error = reply::error("The server had an error", "server_error");
        return Ok(json_reply(StatusCode::INTERNAL_SERVER_ERROR, &error));
    }
    if has("status429") {
        return Ok(rate_limited("7"));
    }
    if has("status401") {
        let error = reply::error("Incorrect API key provided", "invalid_request_error");
        return Ok(json_reply(StatusCode::UNAUTHORIZED, &error));
    }
    if has("malformed") {
        let nonsense = serde_json::json!({"this is": "not a chat completion"});
        return Ok(json_reply(StatusCode::OK, &nonsense));
    }
    if has("flood") {
        if streaming {
            return Ok(stream::flood(model));
        }
        let answer = reply::flood_text(FLOOD_WHOLE_LINES);
        return Ok(json_reply(
            StatusCode::OK,
            &reply::completion(model, &answer),
        ));
    }
    let code = has("code40k");
    let answer = if code {
        reply::code40k_answer()
    } else {
        conversation.answer()
    };
    let asked_usage = !streaming || body["stream_options"]["include_usage"] == true;
    let usage = (state.options.usage && asked_usage).then(|| reply::usage(body, &answer));
    if !streaming {
        return Ok(json_reply(
            StatusCode::OK,
            &reply::completion_with(model, &answer, usage),
        ));
    }
    let pieces = if code {
        reply::pieces_of(&answer, CODE40K_PIECE_BYTES)
    } else {
        reply::pieces(&answer)
    };
    let cut = fault.map(|_| pieces.len().div_ceil(2));
    Ok(stream::answer(state, model, text, &pieces, cut, usage))
}

/// The reply to a request the chaos gave `fault` (other than a cut stream).
async fn chaos_reply(fault: FakeFault) -> Reply {
    match fault {
        FakeFault::Status500 => {
            let error = reply::error("The server had an error (chaos)", "server_error");
            json_reply(StatusCode::INTERNAL_SERVER_ERROR, &error)
        }
        FakeFault::Status429 => rate_limited("1"),
        FakeFault::Hang | FakeFault::Cut => std::future::pending().await,
    }
}

/// HTTP 429 with `Retry-After: <seconds>`.
fn rate_limited(seconds: &'static str) -> Reply {
    let error = reply::error("Rate limit reached", "requests");
    let headers = [JSON[0].clone(), (RETRY_AFTER, seconds)];
    body::whole(
        StatusCode::TOO_MANY_REQUESTS,
        &headers,
        error.to_string().into(),
    )
}

/// Whether `trigger` is one of the words of `text`.
fn has_word(text: &str, trigger: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|word| word == trigger)
}

#[cfg(test)]
mod tests;
