//! Requests the HTTP layer cannot read answered in the API's one error shape.
//!
//! hyper answers a request head it cannot parse by itself, before any of
//! agentd's code sees a request: 400 for a malformed line, 414 for a target
//! longer than it reads, 431 for headers larger or more numerous than it
//! reads; each with an empty body, then it closes the connection. Clients of
//! agentd branch on `{"error":{"code":…}}`, so every connection is wrapped in
//! [`Answering`], which recognises that automatic answer as it is written (a
//! head alone, with one of those statuses and no `content-type`; agentd's own
//! errors always carry a JSON body) and writes the JSON error in its place.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::error::ApiError;

/// Why the HTTP layer could not read a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not a well-formed HTTP/1.1 request line or header. 400.
    Malformed,
    /// The request target is longer than the server reads. 414.
    TargetTooLong,
    /// The headers are larger, or more, than the server reads. 431.
    HeadersTooLarge,
}

impl Unreadable {
    fn of(status: &[u8]) -> Option<Unreadable> {
        match status {
            b"400" => Some(Unreadable::Malformed),
            b"414" => Some(Unreadable::TargetTooLong),
            b"431" => Some(Unreadable::HeadersTooLarge),
            _ => None,
        }
    }

    /// The status it is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Unreadable::Malformed => StatusCode::BAD_REQUEST,
            Unreadable::TargetTooLong => StatusCode::URI_TOO_LONG,
            Unreadable::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }
}

/// The API's listener: a TCP listener whose connections answer unreadable
/// requests with JSON ([`Answering`]).
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Answering<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, peer) = axum::serve::Listener::accept(&mut self.0).await;
        (Answering::new(stream), peer)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that writes hyper's automatic refusals as JSON errors and
/// passes everything else through untouched.
///
/// A write is only ever taken for hyper's refusal where a response starts:
/// the wrapper follows the responses it passes ([`Framing`]), so a body —
/// a download an agent wrote, say — that happens to read like a refusal is
/// never touched. Where it cannot follow (a body of unknown length, a `HEAD`
/// request) it stops rewriting for the rest of the connection.
pub struct Answering<IO> {
    io: IO,
    /// The JSON answer being written in place of hyper's, and how much of it
    /// is out.
    replacement: Option<(Vec<u8>, usize)>,
    /// Where the bytes written so far leave the current response.
    framing: Framing,
}

impl<IO> Answering<IO> {
    /// Wraps `io`.
    pub fn new(io: IO) -> Self {
        Answering {
            io,
            replacement: None,
            framing: Framing::Boundary,
        }
    }
}

/// Where the written bytes stand within the responses of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The next byte written starts a response.
    Boundary,
    /// This many bytes of the current response's body are still to come.
    Body(u64),
    /// Lost track (a body of unknown length, a response to `HEAD`, a head
    /// split across writes): nothing more is rewritten on this connection.
    Unknown,
}

impl Framing {
    /// Follows `chunk`, written out whole, through the responses.
    fn advance(self, mut chunk: &[u8]) -> Framing {
        let mut framing = self;
        while !chunk.is_empty() {
            framing = match framing {
                Framing::Unknown => return Framing::Unknown,
                Framing::Body(left) => {
                    let taken = left.min(chunk.len() as u64);
                    chunk = &chunk[taken as usize..];
                    if taken == left {
                        Framing::Boundary
                    } else {
                        Framing::Body(left - taken)
                    }
                }
                Framing::Boundary => {
                    let Some(end) = chunk.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return Framing::Unknown;
                    };
                    let body = body_length(&chunk[..end]);
                    chunk = &chunk[end + 4..];
                    match body {
                        Some(0) => Framing::Boundary,
                        Some(length) => Framing::Body(length),
                        None => return Framing::Unknown,
                    }
                }
            };
        }
        framing
    }
}

/// The length of the body after a response `head`: none for 1xx, 204 and
/// 304, `content-length` otherwise; `None` when it is not known
/// (chunked, or read until the connection closes).
fn body_length(head: &[u8]) -> Option<u64> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    if status[0] == b'1' || status == b"204" || status == b"304" {
        return Some(0);
    }
    let mut length = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line
            .strip_suffix(b"\r")
            .unwrap_or(line)
            .to_ascii_lowercase();
        if line.starts_with(b"transfer-encoding:") {
            return None;
        }
        if let Some(value) = line.strip_prefix(b"content-length:") {
            length = std::str::from_utf8(value).ok()?.trim().parse().ok();
        }
    }
    length
}

/// When `head` is exactly hyper's automatic refusal, the JSON answer to
/// write instead.
fn replace(head: &[u8]) -> Option<Vec<u8>> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let unreadable = Unreadable::of(status)?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != head.len() {
        return None; // a body follows: agentd's own answer
    }
    let lines = head[..end].split(|&b| b == b'\n').skip(1);
    let mut date = None;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let lower = line.to_ascii_lowercase();
        if lower.starts_with(b"content-type:") || lower.starts_with(b"transfer-encoding:") {
            return None;
        }
        if lower.starts_with(b"content-length:") && lower.trim_ascii_end() != b"content-length: 0" {
            return None;
        }
        if lower.starts_with(b"date:") {
            date = Some(line.to_vec());
        }
    }
    let body = serde_json::to_vec(&ApiError::Unreadable(unreadable).body()).ok()?;
    let status = unreadable.status();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    if let Some(date) = date {
        answer.extend_from_slice(&date);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<IO: AsyncWrite + Unpin> Answering<IO> {
    /// Writes out what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.replacement {
            if *written == answer.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Answering<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        // A response to HEAD declares a length and sends no body: the
        // responses cannot be followed past it (a body's bytes could then be
        // taken for a response's start), so rewriting stops.
        if buf.filled()[before..].windows(5).any(|w| w == b"HEAD ") {
            self.framing = Framing::Unknown;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Answering<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        if self.framing == Framing::Boundary
            && let Some(answer) = replace(buf)
        {
            // hyper's answer counts as written; ours goes out in its place,
            // and the connection closes after it.
            self.replacement = Some((answer, 0));
            self.framing = Framing::Unknown;
            let _ = self.poll_replacement(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let written = ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
        self.framing = self.framing.advance(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            return self.poll_write(cx, only);
        }
        ready!(self.poll_replacement(cx))?;
        let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, bufs))?;
        let mut left = written;
        for slice in bufs {
            if left == 0 {
                break;
            }
            let taken = left.min(slice.len());
            self.framing = self.framing.advance(&slice[..taken]);
            left -= taken;
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_automatic_refusals_become_json() {
        for (head, status, code) in [
            (
                "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 19:00:00 GMT\r\n\r\n",
                431,
                "headers_too_large",
            ),
            ("HTTP/1.1 414 URI Too Long\r\n\r\n", 414, "uri_too_long"),
            (
                "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
                400,
                "malformed_request",
            ),
        ] {
            let answer = String::from_utf8(replace(head.as_bytes()).unwrap()).unwrap();
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{head}"
            );
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["error"]["code"], code, "{json}");
        }
        // The date hyper wrote is kept.
        let answer = replace(b"HTTP/1.1 431 X\r\ndate: D\r\n\r\n").unwrap();
        assert!(
            String::from_utf8(answer)
                .unwrap()
                .contains("\r\ndate: D\r\n")
        );
    }

    /// What the client receives when the server reads `request` and writes
    /// `writes` through [`Answering`] over a pipe of `capacity` bytes.
    async fn received(request: &[u8], writes: &[&[u8]], capacity: usize) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(capacity);
        let mut connection = Answering::new(near);
        let length = request.len();
        let writes: Vec<Vec<u8>> = writes.iter().map(|w| w.to_vec()).collect();
        let server = tokio::spawn(async move {
            if length > 0 {
                let mut buffer = vec![0; length];
                connection.read_exact(&mut buffer).await.unwrap();
            }
            for write in writes {
                connection.write_all(&write).await.unwrap();
                connection.flush().await.unwrap();
            }
            connection.shutdown().await.unwrap();
        });
        if length > 0 {
            far.write_all(request).await.unwrap();
        }
        let mut out = Vec::new();
        far.read_to_end(&mut out).await.unwrap();
        server.await.unwrap();
        out
    }

    const REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";

    fn response(body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn a_body_that_reads_like_a_refusal_is_never_rewritten() {
        // A download streamed as head, then the body: the body is exactly
        // hyper's refusal. Also through a pipe of 7 bytes (partial writes).
        let head = response(REFUSAL);
        let head = &head[..head.len() - REFUSAL.len()];
        for capacity in [1 << 20, 7] {
            let out = received(b"GET /a HTTP/1.1\r\n\r\n", &[head, REFUSAL], capacity).await;
            assert_eq!(out, [head, REFUSAL].concat(), "capacity {capacity}");
        }
        // Two such downloads on one connection, then a real refusal.
        let one = response(REFUSAL);
        let out = received(b"", &[&one, &one, REFUSAL], 1 << 20).await;
        let (sent, answer) = out.split_at(2 * one.len());
        assert_eq!(sent, [one.clone(), one].concat());
        assert!(answer.starts_with(b"HTTP/1.1 400 "));
        assert!(String::from_utf8_lossy(answer).contains("malformed_request"));
    }

    #[tokio::test]
    async fn where_responses_cannot_be_followed_nothing_is_rewritten() {
        let chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        let out = received(b"", &[chunked, REFUSAL], 1 << 20).await;
        assert_eq!(out, [chunked, REFUSAL].concat());
        // After a HEAD request (a length declared, no body sent).
        let head_answer: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 44\r\n\r\n";
        let out = received(
            b"HEAD /v1/x HTTP/1.1\r\n\r\n",
            &[head_answer, REFUSAL],
            1 << 20,
        )
        .await;
        assert_eq!(out, [head_answer, REFUSAL].concat());
        // The first answer on a connection is rewritten.
        let out = received(b"", &[REFUSAL], 1 << 20).await;
        assert!(String::from_utf8_lossy(&out).contains("\"code\":\"malformed_request\""));
    }

    #[test]
    fn agentds_own_answers_pass_untouched() {
        for head in [
            // JSON errors from the API: a content type and a body.
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            "HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\n\r\n",
            "HTTP/1.1 431",
            "garbage",
        ] {
            assert_eq!(replace(head.as_bytes()), None, "{head}");
        }
    }
}
