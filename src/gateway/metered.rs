//! The answer's body on its way back to the sandbox: passed through chunk by
//! chunk while the meter (and a cassette recording, when on) reads along, and
//! settled with the execution's account when it ends — or when the sandbox
//! hangs up early, so an interrupted answer is still counted.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use http_body_util::BodyExt;
use hyper::body::Frame;

use super::GatewayBody;
use super::meter::{Metered, UsageMeter};

/// Something that reads a body as it streams (a cassette recording).
pub trait BodyTap: Send {
    /// One more chunk of the answer, as sent to the sandbox.
    fn chunk(&mut self, chunk: &[u8]);
    /// The answer is over, and how.
    fn finish(self: Box<Self>, end: BodyEnd);
}

/// How an answer's body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The upstream's body ended as its framing says (last chunk, declared
    /// length, or close) and every byte was passed on.
    Complete,
    /// The upstream's body broke off (reset, timeout, shorter than declared).
    UpstreamBroke,
    /// The body was dropped before its end: the sandbox hung up, or the
    /// gateway closed the execution's socket.
    Abandoned,
}

impl BodyEnd {
    /// Why the answer is incomplete, for a recording; `None` when it is complete.
    pub fn interruption(self) -> Option<&'static str> {
        match self {
            BodyEnd::Complete => None,
            BodyEnd::UpstreamBroke => Some("the upstream answer broke off"),
            BodyEnd::Abandoned => Some("the answer was abandoned before its end"),
        }
    }
}

/// Called once when the body is over, with what the meter saw.
pub type OnDone = Box<dyn FnOnce(Metered, Duration) + Send>;

/// The wrapping stream.
struct MeteredStream<S> {
    inner: S,
    meter: Option<UsageMeter>,
    tap: Option<Box<dyn BodyTap>>,
    on_done: Option<OnDone>,
    started: Instant,
}

/// Wraps an upstream byte stream into the gateway's body type.
pub fn metered<S>(
    inner: S,
    meter: Option<UsageMeter>,
    tap: Option<Box<dyn BodyTap>>,
    on_done: OnDone,
    started: Instant,
) -> GatewayBody
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let stream = MeteredStream {
        inner,
        meter,
        tap,
        on_done: Some(on_done),
        started,
    };
    http_body_util::StreamBody::new(stream).boxed_unsync()
}

impl<S> MeteredStream<S> {
    fn done(&mut self, end: BodyEnd) {
        if let Some(tap) = self.tap.take() {
            tap.finish(end);
        }
        if let Some(on_done) = self.on_done.take() {
            let metered = self
                .meter
                .take()
                .map(UsageMeter::finish)
                .unwrap_or_default();
            on_done(metered, self.started.elapsed());
        }
    }
}

impl<S> Stream for MeteredStream<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(meter) = self.meter.as_mut() {
                    meter.feed(&chunk);
                }
                if let Some(tap) = self.tap.as_mut() {
                    tap.chunk(&chunk);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => {
                self.done(BodyEnd::UpstreamBroke);
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                self.done(BodyEnd::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S> Drop for MeteredStream<S> {
    fn drop(&mut self) {
        self.done(BodyEnd::Abandoned);
    }
}
