//! Live fan-out of events to whoever is watching an execution right now.
//!
//! The store holds every event; the hub only carries new ones to live
//! subscribers (SSE clients, `agentd run`'s terminal). Each subscriber has a
//! bounded buffer: a slow one falls behind and is told it lagged (it then reads
//! what it missed from the store), and never slows the execution or anyone else.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::execution::Event;

/// Default buffer per subscriber: 1024 events.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Per-execution broadcast channels.
#[derive(Debug)]
pub struct EventHub {
    channels: Mutex<HashMap<String, broadcast::Sender<Event>>>,
    capacity: usize,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(DEFAULT_CAPACITY)
    }
}

impl EventHub {
    /// A hub whose subscribers each buffer up to `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventHub {
            channels: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Hands an event to the execution's current subscribers (if any).
    pub fn publish(&self, execution: &str, event: &Event) {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = channels.get(execution) {
            // No receiver is not an error: nobody is watching.
            let _ = sender.send(event.clone());
        }
    }

    /// Subscribes to an execution's future events. Subscribe before reading the
    /// store's backlog, then skip what the backlog already gave (by `seq`).
    pub fn subscribe(&self, execution: &str) -> broadcast::Receiver<Event> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(execution.to_string())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Ends an execution's channel: subscribers receive what is buffered, then
    /// `Closed`. Called once its final event is published.
    pub fn close(&self, execution: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.remove(execution);
    }

    /// Drops channels nobody listens to any more (a client that watched a
    /// queued execution and left); a later subscribe makes a new one.
    pub fn prune(&self) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.retain(|_, sender| sender.receiver_count() > 0);
    }

    /// Number of executions with a channel (for metrics and tests).
    pub fn channels(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{EventBody, Status};
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};

    fn event(seq: u64) -> Event {
        Event {
            seq,
            at: chrono::Utc::now(),
            body: EventBody::status(Status::Running, None),
        }
    }

    #[test]
    fn subscribers_get_new_events_then_closed() {
        let hub = EventHub::new(8);
        hub.publish("a", &event(1)); // nobody listening: dropped
        let mut rx = hub.subscribe("a");
        hub.publish("a", &event(2));
        hub.publish("b", &event(1));
        assert_eq!(rx.try_recv().unwrap().seq, 2);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        hub.close("a");
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Closed)));
        assert_eq!(hub.channels(), 0);
        let left = hub.subscribe("c");
        let kept = hub.subscribe("d");
        drop(left);
        hub.prune();
        assert_eq!(hub.channels(), 1);
        drop(kept);
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_without_blocking_others() {
        let hub = EventHub::new(4);
        let mut slow = hub.subscribe("a");
        let mut fast = hub.subscribe("a");
        for seq in 1..=10 {
            hub.publish("a", &event(seq));
            assert_eq!(fast.recv().await.unwrap().seq, seq);
        }
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(6))));
        assert_eq!(slow.recv().await.unwrap().seq, 7);
    }
}
