//! The fake server's responses: a whole body, or one streamed through a channel by a producer
//! task; either way every body byte hyper takes is counted.

use hyper::body::{Bytes, Frame, SizeHint};
use hyper::header::{HeaderName, HeaderValue, CONNECTION};
use hyper::{Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// A response of the fake server.
pub type Reply = Response<Body>;

/// What a response body holds.
#[derive(Debug)]
pub enum Body {
    /// The whole body (taken when sent), sent with its `Content-Length`.
    Whole(Option<Bytes>),
    /// A body streamed from a channel (chunked), ending when its producer ends.
    Streamed {
        /// The pieces the producer sends.
        pieces: mpsc::Receiver<Bytes>,
        /// The producer, stopped when the body is dropped (the connection ended).
        _producer: Producer,
    },
}

/// The task streaming a body; aborted when dropped.
#[derive(Debug)]
pub struct Producer(AbortHandle);

impl Drop for Producer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The sending side of a streamed body.
#[derive(Debug)]
pub struct Sender(mpsc::Sender<Bytes>);

impl Sender {
    /// Hands `bytes` to the connection; fails when the connection is gone (the client went
    /// away, or the server stopped).
    pub async fn send(&self, bytes: impl Into<Bytes>) -> io::Result<()> {
        (self.0.send(bytes.into()).await).map_err(|_| io::ErrorKind::BrokenPipe.into())
    }
}

/// A whole `status` response with `headers` and `body`.
pub fn whole(status: StatusCode, headers: &[(HeaderName, &'static str)], body: Bytes) -> Reply {
    reply(status, headers, Body::Whole(Some(body)))
}

/// A 200 response with `headers` whose body `produce` streams through the [`Sender`] it gets,
/// in a task of its own; the body ends when `produce` returns (whatever it returns).
pub fn streamed<F, P>(headers: &[(HeaderName, &'static str)], produce: P) -> Reply
where
    P: FnOnce(Sender) -> F,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    // One piece waits in the channel at most: the producer goes at the pace of the connection.
    let (sender, pieces) = mpsc::channel(1);
    let task = tokio::spawn(produce(Sender(sender)));
    let body = Body::Streamed {
        pieces,
        _producer: Producer(task.abort_handle()),
    };
    reply(StatusCode::OK, headers, body)
}

/// A response; every one closes its connection, as the fake serves one request per connection.
fn reply(status: StatusCode, headers: &[(HeaderName, &'static str)], body: Body) -> Reply {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let all = response.headers_mut();
    for (name, value) in headers {
        all.insert(name.clone(), HeaderValue::from_static(value));
    }
    all.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A [`Body`] counting the bytes hyper takes from it.
#[derive(Debug)]
pub struct Counted {
    body: Body,
    sent: Arc<AtomicU64>,
}

impl Counted {
    /// `body`, counting its bytes in `sent`.
    pub fn new(body: Body, sent: Arc<AtomicU64>) -> Counted {
        Counted { body, sent }
    }
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match &mut self.body {
            Body::Whole(bytes) => bytes.take(),
            Body::Streamed { pieces, .. } => ready!(pieces.poll_recv(cx)),
        };
        Poll::Ready(next.map(|bytes| {
            self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Ok(Frame::data(bytes))
        }))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.body, Body::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Body::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Streamed { .. } => SizeHint::default(),
        }
    }
}
