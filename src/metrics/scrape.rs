//! What the caller reads at scrape time (from the store and the supervisor)
//! and hands in: figures that are a state, not a count of events.

/// How many executions of one tenant are in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionCount {
    /// The tenant.
    pub tenant: String,
    /// The status, as the API names it.
    pub status: &'static str,
    /// How many.
    pub count: u64,
}

/// Gauges the caller reads at scrape time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Executions by tenant and status (all supervisors).
    pub executions: Vec<ExecutionCount>,
    /// Queued executions by tenant (all supervisors).
    pub queue_depths: Vec<(String, u64)>,
    /// Milliseconds since the oldest queued execution was created (0: none
    /// queued).
    pub queue_oldest_ms: u64,
    /// Executions preparing, running or collecting (all supervisors).
    pub live: u64,
    /// Executions running on this supervisor.
    pub running_here: u64,
    /// Live event channels with subscribers.
    pub event_channels: u64,
    /// Event streams open on this supervisor.
    pub event_streams: u64,
    /// Bytes of events held for streams, not yet written.
    pub event_stream_bytes: u64,
    /// An admin paused claiming on this supervisor.
    pub claiming_paused_here: bool,
    /// An admin paused claiming on every replica (`None`: the store did not
    /// say, and the series is left out rather than shown as not paused).
    pub claiming_paused_cluster: Option<bool>,
}
