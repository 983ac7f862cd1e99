//! One reader's view of an execution's event log: first what the store holds
//! after the reader's resume point, then what happens live — in order, without
//! gaps or repeats, and ending after the final status.
//!
//! The live hub is only a shortcut: whenever it cannot be trusted (the reader
//! lagged, an event skipped ahead, the channel closed, or nothing arrived for a
//! while because the execution runs on another replica) the store fills in.
//! Nothing here can slow the execution: the hub's buffers are bounded and a
//! reader that falls behind is told so and catches up from the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stream_budget::ByteBudget;
use crate::execution::{Event, EventBody, SupervisorEvent};
use crate::runner::hub::EventHub;
use crate::store::Store;

/// Events read from the store per query while catching up: at most 500…
pub const PAGE: u32 = 500;
/// …and about this many bytes of them (256 KiB, beyond the first event): with
/// large events the page is short, so a reader catching up never holds more
/// than a page of them.
pub const PAGE_BYTES: usize = 256 << 10;
/// How long a final execution may go without its final status event before a
/// reader stops waiting for it: 3 s. (The runner stores the final status right
/// after the final record; this only bridges that moment.)
pub const FINAL_EVENT_GRACE: Duration = Duration::from_secs(3);

/// What a reader is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The next event of the log, as it goes on the wire.
    Event(Box<Wire>),
    /// The reader fell this many events behind the live hub; what it missed
    /// follows, read from the store.
    Lagged(u64),
}

/// One event as a stream writes it, serialised once: its `seq` (the SSE id),
/// its type (the SSE event name) and its JSON (the data, whose length the
/// reader's byte budget counts until the response has written it).
#[derive(Debug, Clone, PartialEq)]
pub struct Wire {
    /// The event's `seq`.
    pub seq: u64,
    /// The event's `type`.
    pub kind: String,
    /// The event as JSON.
    pub json: String,
}

impl Wire {
    /// The event on the wire; `None` if it cannot be serialised (logged).
    fn of(event: &Event) -> Option<Wire> {
        let value = serde_json::to_value(event)
            .map_err(|error| tracing::error!(%error, seq = event.seq, "cannot serialise an event"))
            .ok()?;
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("message")
            .to_string();
        Some(Wire {
            seq: event.seq,
            kind,
            json: value.to_string(),
        })
    }
}

/// A reader's feed of one execution.
pub struct Feed {
    /// Where the log is kept.
    pub store: Arc<dyn Store>,
    /// Where live events arrive.
    pub hub: Arc<EventHub>,
    /// The execution.
    pub execution: String,
    /// Its tenant.
    pub tenant: String,
    /// How long to wait for the hub before reading the store.
    pub poll_interval: Duration,
    /// Ends the feed (server shutdown).
    pub stop: CancellationToken,
    /// What the reader may hold unwritten; the feed waits for room.
    pub budget: ByteBudget,
}

/// Why sending stopped.
struct Gone;

struct Cursor {
    /// The last `seq` sent.
    last: u64,
    /// The final status has been sent.
    finished: bool,
    /// Since when the record is final while its final status event is not seen.
    final_since: Option<Instant>,
}

impl Feed {
    /// Sends the log after `after` to `out`, then live events from `live`
    /// (subscribed before this is called, so nothing falls between), until the
    /// final status is sent, the reader goes away, or `stop` fires.
    pub async fn run(self, after: u64, live: Option<Receiver<Event>>, out: Sender<Item>) {
        let subscribed = live.is_some();
        let mut cursor = Cursor {
            last: after,
            finished: false,
            final_since: None,
        };
        let _ = self.drive(&mut cursor, live, &out).await;
        if subscribed {
            self.release_channel().await;
        }
    }

    async fn drive(
        &self,
        cursor: &mut Cursor,
        mut live: Option<Receiver<Event>>,
        out: &Sender<Item>,
    ) -> Result<(), Gone> {
        self.catch_up(cursor, out).await?;
        if cursor.finished || self.settled(cursor).await {
            return Ok(());
        }
        loop {
            let received = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Err(Gone),
                _ = out.closed() => return Err(Gone),
                received = next_live(&mut live) => Some(received),
                _ = tokio::time::sleep(self.poll_interval) => None,
            };
            match received {
                Some(Ok(event)) => {
                    if event.seq > cursor.last + 1 {
                        self.catch_up(cursor, out).await?;
                    }
                    if event.seq == cursor.last + 1 {
                        self.send_event(cursor, event, out).await?;
                    }
                }
                Some(Err(RecvError::Lagged(missed))) => {
                    self.send(Item::Lagged(missed), out).await?;
                    self.catch_up(cursor, out).await?;
                }
                Some(Err(RecvError::Closed)) => {
                    live = None;
                    self.catch_up(cursor, out).await?;
                }
                None => {
                    self.catch_up(cursor, out).await?;
                    if !cursor.finished && self.settled(cursor).await {
                        return Ok(());
                    }
                }
            }
            if cursor.finished {
                return Ok(());
            }
        }
    }

    /// Sends what the store holds after the cursor, a page at a time. A store
    /// error is logged and left for the next attempt (nothing is skipped).
    async fn catch_up(&self, cursor: &mut Cursor, out: &Sender<Item>) -> Result<(), Gone> {
        while !cursor.finished {
            let page = match self
                .store
                .events_page(&self.execution, cursor.last, PAGE, PAGE_BYTES)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, execution = %self.execution, "reading events; will retry");
                    return Ok(());
                }
            };
            // A page cut short by its bytes is not the end of the log: read
            // on until a page brings nothing new.
            let before = cursor.last;
            for event in page {
                if event.seq > cursor.last {
                    self.send_event(cursor, event, out).await?;
                }
                if cursor.finished {
                    break;
                }
            }
            if cursor.last == before {
                break;
            }
        }
        Ok(())
    }

    /// Whether the feed should end although no final status was sent: the
    /// execution is final and either never produced an event (cancelled while
    /// queued) or its final status has not appeared within the grace period.
    async fn settled(&self, cursor: &mut Cursor) -> bool {
        let record = match self
            .store
            .get_execution(Some(&self.tenant), &self.execution)
            .await
        {
            Ok(Some(record)) => record,
            Ok(None) => return true,
            Err(error) => {
                tracing::warn!(%error, execution = %self.execution, "reading the execution; will retry");
                return false;
            }
        };
        if !record.status.is_final() {
            cursor.final_since = None;
            return false;
        }
        if cursor.last == 0 {
            return true;
        }
        cursor
            .final_since
            .get_or_insert_with(Instant::now)
            .elapsed()
            >= FINAL_EVENT_GRACE
    }

    /// Sends one event once the reader's budget has room for it; returns its size.
    async fn send_event(
        &self,
        cursor: &mut Cursor,
        event: Event,
        out: &Sender<Item>,
    ) -> Result<usize, Gone> {
        let seq = event.seq;
        let last = is_final_status(&event);
        let Some(wire) = Wire::of(&event) else {
            // Unwritable: skipped (and logged), never sent as something else.
            cursor.last = seq;
            cursor.finished = last;
            return Ok(0);
        };
        let size = wire.json.len();
        tokio::select! {
            () = self.budget.take(size) => {}
            _ = out.closed() => return Err(Gone),
            _ = self.stop.cancelled() => return Err(Gone),
        }
        self.send(Item::Event(Box::new(wire)), out).await?;
        cursor.last = seq;
        cursor.finished = last;
        Ok(size)
    }

    async fn send(&self, item: Item, out: &Sender<Item>) -> Result<(), Gone> {
        tokio::select! {
            sent = out.send(item) => sent.map_err(|_| Gone),
            _ = self.stop.cancelled() => Err(Gone),
        }
    }

    /// Drops the hub channel of an execution that has ended, so watching a
    /// finished execution (or one that ran on another replica) leaves nothing
    /// behind. Other readers of it fall back to the store.
    async fn release_channel(&self) {
        if let Ok(Some(record)) = self
            .store
            .get_execution(Some(&self.tenant), &self.execution)
            .await
            && record.status.is_final()
        {
            self.hub.close(&self.execution);
        }
    }
}

async fn next_live(live: &mut Option<Receiver<Event>>) -> Result<Event, RecvError> {
    match live {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// True for agentd's status event announcing a final status: the last event of a log.
pub fn is_final_status(event: &Event) -> bool {
    matches!(
        &event.body,
        EventBody::Agentd(SupervisorEvent::Status { status, .. }) if status.is_final()
    )
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
