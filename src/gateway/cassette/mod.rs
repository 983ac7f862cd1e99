//! Cassettes: every model exchange of an execution recorded to a file stored
//! with its artifacts, and replayed later in place of the model.
//!
//! A cassette is JSON Lines: a header line (`{"cassette":1,"created_at":…,"agentd":…}`)
//! then one [`Exchange`] per line (request and response bodies, timing, the
//! conversation turn). The forwarder records with a [`CassetteWriter`] and one
//! [`ExchangeRecorder`] per request; secrets in bodies are redacted by the caller before
//! appending, and credential headers are never kept.
//! [`ReplayModel`] serves a cassette over the Messages API so an execution can
//! run again, deterministically, with no model behind it.

#[cfg(test)]
mod demo;
mod format;
mod key;
mod recorder;
mod replay;
#[cfg(test)]
mod tests;
mod writer;

pub use format::{CASSETTE_VERSION, Cassette, CassetteHeader, Exchange};
pub use recorder::{
    ExchangeRecorder, KEPT_REQUEST_HEADERS, KEPT_RESPONSE_HEADERS, MAX_RESPONSE_BYTES,
};
pub use replay::{ReplayModel, ReplayTiming};
pub use writer::CassetteWriter;

/// Largest cassette written: 1 GiB. Keeps a recording agent from filling
/// agentd's data directory with requests.
pub const MAX_CASSETTE_BYTES: u64 = 1 << 30;

/// What can go wrong reading or writing a cassette.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    /// The cassette file could not be read.
    #[error("cannot read cassette {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The cassette file could not be created or written.
    #[error("cannot write cassette {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The cassette reached its size cap ([`MAX_CASSETTE_BYTES`]); later
    /// exchanges are not recorded.
    #[error("the cassette {path} reached its {} MiB cap; later exchanges are not recorded", MAX_CASSETTE_BYTES >> 20)]
    Full { path: String },
    /// An exchange could not be turned into JSON.
    #[error("cannot encode a cassette line: {0}")]
    Encode(#[source] serde_json::Error),
    /// The file holds no header line.
    #[error("the cassette is empty (no header line)")]
    Empty,
    /// The header names a format version this build does not read.
    #[error(
        "cassette format version {found} is not supported (this agentd reads version {supported})"
    )]
    Version { found: u32, supported: u32 },
    /// A line is not what the format expects (counted from 1).
    #[error("cassette line {line}: {problem}")]
    Line { line: usize, problem: String },
    /// A secret was found; named by its index in the list checked, never shown.
    #[error("secret #{index} of the list checked occurs in exchange {seq}")]
    SecretFound { index: usize, seq: u64 },
}
