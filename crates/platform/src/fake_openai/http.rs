//! Just enough HTTP/1.1 for the fake server: one request per connection, `Connection: close`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most header bytes accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most body bytes accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A received request.
#[derive(Debug)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Appends what the socket has to `buffer`; false at the end of the stream.
async fn read_more(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    let read = socket.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read > 0)
}

/// One client's connection: its socket, and the server's count of body bytes written.
#[derive(Debug)]
pub struct Connection<'a> {
    socket: TcpStream,
    /// Every body byte the socket took is added here (headers are not counted).
    sent: &'a AtomicU64,
}

impl<'a> Connection<'a> {
    /// A connection on `socket` counting its body bytes in `sent`.
    pub fn new(socket: TcpStream, sent: &'a AtomicU64) -> Self {
        Connection { socket, sent }
    }

    /// Reads one request; `None` when the client closed the connection before sending one.
    pub async fn read_request(&mut self) -> io::Result<Option<HttpRequest>> {
        read_request(&mut self.socket).await
    }

    /// Writes a whole response with `body`.
    pub async fn write_response(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let length = body.len().to_string();
        let mut all = headers.to_vec();
        all.push(("Content-Length", &length));
        self.write_head(status, &all).await?;
        self.write_body(body).await
    }

    /// Writes the status line and headers; a body without `Content-Length` ends when the
    /// connection closes.
    pub async fn write_head(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        self.socket.write_all(head.as_bytes()).await?;
        self.socket.flush().await
    }

    /// Writes (part of) a body, counting each byte the socket took; fails as soon as a write
    /// does (the client went away).
    pub async fn write_body(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let written = self.socket.write(bytes).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent.fetch_add(written as u64, Ordering::Relaxed);
            bytes = &bytes[written..];
        }
        self.socket.flush().await
    }
}

/// Reads one request; `None` when the client closed the connection before sending one.
async fn read_request(socket: &mut TcpStream) -> io::Result<Option<HttpRequest>> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD || !read_more(socket, &mut buffer).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut request = HttpRequest {
        method,
        path,
        headers,
        body: buffer.split_off(head_end + 4),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    while request.body.len() < length {
        if !read_more(socket, &mut request.body).await? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    request.body.truncate(length);
    Ok(Some(request))
}

/// The reason phrase of `status`.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}
