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
pub struct Answering<IO> {
    io: IO,
    /// The JSON answer being written in place of hyper's, and how much of it
    /// is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<IO> Answering<IO> {
    /// Wraps `io`.
    pub fn new(io: IO) -> Self {
        Answering {
            io,
            replacement: None,
        }
    }
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
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Answering<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        if let Some(answer) = replace(buf) {
            // hyper's answer counts as written; ours goes out in its place.
            self.replacement = Some((answer, 0));
            let _ = self.poll_replacement(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
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
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
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
