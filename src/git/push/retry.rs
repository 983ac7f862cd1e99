//! Which failures of a remote are worth trying again, and how long to wait.
//!
//! A refused connection, a 5xx or a timeout may pass; a wrong password, a
//! missing permission or an unknown host key will not, and retrying them
//! would only hammer the remote (and lock the account) — they end at once.

use std::time::Duration;

/// How a failed talk with the remote is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The remote refused who agentd is (credentials, permission, host key).
    Auth,
    /// Worth another attempt after a pause (network, 5xx, timeouts).
    Transient,
    /// Anything else: reported as it is, not retried.
    Permanent,
}

/// Reads git's stderr for what kind of failure it reports.
pub fn classify(stderr: &str) -> Failure {
    let text = stderr.to_ascii_lowercase();
    const AUTH: &[&str] = &[
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied",
        "returned error: 401",
        "returned error: 403",
        "host key verification failed",
        "remote host identification has changed",
        "no matching host key",
        "access denied",
        "invalid username or password",
    ];
    const TRANSIENT: &[&str] = &[
        "connection refused",
        "connection timed out",
        "connection reset",
        "could not resolve host",
        "temporary failure in name resolution",
        "failed to connect",
        "operation timed out",
        "timed out",
        "returned error: 500",
        "returned error: 502",
        "returned error: 503",
        "returned error: 504",
        "returned error: 429",
        "rpc failed",
        "early eof",
        "empty reply from server",
        "the remote end hung up unexpectedly",
        "unexpected disconnect",
        "kex_exchange_identification",
        "connection closed by",
        "broken pipe",
        "network is unreachable",
        "no route to host",
    ];
    if AUTH.iter().any(|needle| text.contains(needle)) {
        Failure::Auth
    } else if TRANSIENT.iter().any(|needle| text.contains(needle)) {
        Failure::Transient
    } else {
        Failure::Permanent
    }
}

/// Bounded retries with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: 4.
    pub attempts: u32,
    /// The pause before the second attempt: 1 s; it doubles each time.
    pub base: Duration,
    /// The longest pause: 30 s.
    pub max: Duration,
    /// How long one git command may take: 300 s.
    pub command_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based): the exponential
    /// step, then a random point in its upper half ("equal jitter"), so
    /// replicas that failed together do not come back together.
    pub fn pause(&self, attempt: u32) -> Duration {
        backoff(self.base, self.max, attempt)
    }
}

/// The pause after failed attempt `attempt` (1-based) of anything retried
/// from `base`, doubling up to `max`, at a random point in the step's upper
/// half (equal jitter).
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let step = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(max);
    let mut byte = [0u8; 2];
    let fraction = match getrandom::fill(&mut byte) {
        Ok(()) => f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    };
    step / 2 + step.mul_f64(fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_fail_at_once_and_the_network_is_retried() {
        let cases = [
            (
                "fatal: Authentication failed for 'http://127.0.0.1:1/r.git/'",
                Failure::Auth,
            ),
            (
                "git@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.",
                Failure::Auth,
            ),
            (
                "Host key verification failed.\nfatal: Could not read from remote repository.",
                Failure::Auth,
            ),
            (
                "fatal: unable to access 'http://127.0.0.1:9/r.git/': Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server",
                Failure::Transient,
            ),
            (
                "error: RPC failed; HTTP 503 curl 22 The requested URL returned error: 503",
                Failure::Transient,
            ),
            (
                "ssh: connect to host 127.0.0.1 port 9: Connection refused",
                Failure::Transient,
            ),
            ("fatal: repository 'x' not found", Failure::Permanent),
        ];
        for (stderr, expected) in cases {
            assert_eq!(classify(stderr), expected, "{stderr}");
        }
    }

    #[test]
    fn pauses_grow_stay_bounded_and_vary() {
        let policy = RetryPolicy {
            attempts: 8,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            command_timeout: Duration::from_secs(1),
        };
        for attempt in 1..=8 {
            let step = Duration::from_millis((100u64 << (attempt - 1)).min(1000));
            let pause = policy.pause(attempt);
            assert!(pause >= step / 2 && pause <= step, "{attempt}: {pause:?}");
        }
        let pauses: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.pause(3)).collect();
        assert!(pauses.len() > 1, "jitter varies the pause");
    }
}
