//! How much of agentd one execution's socket may hold: connections, time and
//! head size. A sandbox that floods its socket fills its own listen backlog
//! (kernel memory, bounded by `somaxconn`), not agentd's descriptor table.

use std::time::Duration;

use super::body::{BODY_READ_TIMEOUT, EXECUTION_BODY_BUDGET, GATEWAY_BODY_BUDGET};

/// Connections one execution may have open at once: 32. The CLI uses a few
/// (one per concurrent request, subagents included); at the cap the gateway
/// stops accepting until one closes, so a flood waits in the backlog.
pub const MAX_CONNECTIONS_PER_EXECUTION: usize = 32;

/// Longest wait for a complete request head: 10 s. It runs from the moment the
/// gateway waits for a head, so it also closes a kept-alive connection that
/// stays idle that long between requests, and one that never sends a byte.
/// The CLI sends its head at once, and reconnects after an idle close.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a write to the sandbox may stay blocked: 60 s. A sandbox that asks
/// for an answer and never reads it cannot hold the connection (and its
/// upstream request) longer than that.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest request head (request line and headers): 32 KiB. The CLI's is about 1.2 KiB.
pub const MAX_HEAD_BYTES: usize = 32 << 10;

/// Most header lines in one request: 64. The CLI sends about 20.
pub const MAX_HEADER_LINES: usize = 64;

/// First pause after a failed `accept` (e.g. out of descriptors): 10 ms.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// Longest pause between failed `accept`s: 1 s (the pause doubles up to it).
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The limits every execution's socket applies; [`Default`] gives the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayLimits {
    /// See [`MAX_CONNECTIONS_PER_EXECUTION`].
    pub max_connections: usize,
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// See [`WRITE_STALL_TIMEOUT`].
    pub write_stall_timeout: Duration,
    /// Request-body bytes one execution may hold; see [`EXECUTION_BODY_BUDGET`].
    pub execution_body_budget: usize,
    /// Request-body bytes all executions may hold; see [`GATEWAY_BODY_BUDGET`].
    pub gateway_body_budget: usize,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        GatewayLimits {
            max_connections: MAX_CONNECTIONS_PER_EXECUTION,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            write_stall_timeout: WRITE_STALL_TIMEOUT,
            execution_body_budget: EXECUTION_BODY_BUDGET,
            gateway_body_budget: GATEWAY_BODY_BUDGET,
        }
    }
}

/// The pause after each failed `accept`: doubling from [`ACCEPT_BACKOFF_MIN`]
/// to [`ACCEPT_BACKOFF_MAX`], back to the start after a success.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            next: ACCEPT_BACKOFF_MIN,
        }
    }
}

impl AcceptBackoff {
    /// An accept failed: how long to pause before the next.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
        pause
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        self.next = ACCEPT_BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_cap_and_resets() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<u128> = (0..9).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), ACCEPT_BACKOFF_MIN);
    }
}
