//! What the scripted model reads from a request, and what it remembers of it.

use serde::{Deserialize, Serialize};

/// One request the scripted model received, kept so tests can check what a
/// client (or the gateway in front of it) actually sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// The raw query string, e.g. `beta=true`.
    pub query: Option<String>,
    /// The body's `model`, when it had one.
    pub model: Option<String>,
    /// Whether the body asked for a streamed answer.
    pub stream: bool,
    /// The scripted turn the request asked for (its number of assistant messages);
    /// none when it played no turn (side requests, token counts, bad requests).
    pub turn: Option<usize>,
    /// Number of entries in the body's `messages`.
    pub messages: usize,
    /// Whether the body declared any tools; requests without are side requests.
    pub tools: bool,
    /// The `x-api-key` header as received.
    pub x_api_key: Option<String>,
    /// The `authorization` header as received.
    pub authorization: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// Every header as received (names lowercase, in arrival order), so tests
    /// can check what the gateway forwarded.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// A deterministic stand-in for a token count: about four bytes per token.
pub(crate) fn estimate_tokens(body: &[u8]) -> u64 {
    (body.len() as u64).div_ceil(4).max(1)
}
