//! What identifies a request for replay: its kind and the conversation turn it
//! asks for, read from the body the same way the scripted model reads it.
//!
//! Everything else in a request (ids, timestamps, the working directory in the
//! system prompt) may differ between a recording and its replay and is ignored.

use std::fmt;

use crate::wire::MessagesRequest;

const MESSAGES: &str = "/v1/messages";
const COUNT_TOKENS: &str = "/v1/messages/count_tokens";

/// The family a request belongs to; requests of different kinds never answer
/// for each other (a side request without tools never takes a turn's answer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `POST /v1/messages` with a readable body.
    Messages { tools: bool, stream: bool },
    /// `POST /v1/messages/count_tokens` with a readable body.
    CountTokens,
    /// Anything else, by method and path without the query.
    Other { method: String, path: String },
}

/// A request's kind and turn: recorded exchanges with the same key answer the
/// requests with that key, in recorded order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RequestKey {
    pub kind: Kind,
    /// Assistant messages in the request, for the Messages API kinds.
    pub turn: Option<usize>,
}

impl RequestKey {
    /// The key of a request; `path` may carry a query, which is ignored.
    pub fn of(method: &str, path: &str, body: &[u8]) -> RequestKey {
        let path = path.split('?').next().unwrap_or_default();
        let parsed = match (method, path) {
            ("POST", MESSAGES) | ("POST", COUNT_TOKENS) => MessagesRequest::parse(body).ok(),
            _ => None,
        };
        match parsed {
            Some(request) if path == MESSAGES => RequestKey {
                kind: Kind::Messages {
                    tools: request.tools,
                    stream: request.stream,
                },
                turn: Some(request.assistant_messages),
            },
            Some(request) => RequestKey {
                kind: Kind::CountTokens,
                turn: Some(request.assistant_messages),
            },
            None => RequestKey {
                kind: Kind::Other {
                    method: method.to_string(),
                    path: path.to_string(),
                },
                turn: None,
            },
        }
    }
}

impl fmt::Display for RequestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let turn = self
            .turn
            .map_or_else(|| "no turn".to_string(), |turn| format!("turn {turn}"));
        match &self.kind {
            Kind::Messages { tools, stream } => write!(
                f,
                "{turn} ({} Messages request {} tools)",
                if *stream { "streamed" } else { "non-streamed" },
                if *tools { "with" } else { "without" },
            ),
            Kind::CountTokens => write!(f, "{turn} (count_tokens request)"),
            Kind::Other { method, path } => write!(f, "{method} {path} ({turn})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TURN_TWO: &[u8] = br#"{"model":"m","stream":true,"tools":[{"name":"Bash"}],"messages":[
        {"role":"user","content":"go"},{"role":"assistant","content":[]},
        {"role":"user","content":[]},{"role":"assistant","content":[]},{"role":"user","content":[]}]}"#;

    #[test]
    fn reads_kind_and_turn() {
        let key = RequestKey::of("POST", "/v1/messages?beta=true", TURN_TWO);
        assert_eq!(
            key,
            RequestKey {
                kind: Kind::Messages {
                    tools: true,
                    stream: true
                },
                turn: Some(2)
            }
        );
        assert_eq!(
            key.to_string(),
            "turn 2 (streamed Messages request with tools)"
        );
        let side = RequestKey::of(
            "POST",
            "/v1/messages",
            br#"{"model":"m","messages":[{"role":"user","content":"title?"}]}"#,
        );
        assert_eq!(
            side.kind,
            Kind::Messages {
                tools: false,
                stream: false
            }
        );
        assert_eq!(side.turn, Some(0));
        let count = RequestKey::of("POST", "/v1/messages/count_tokens", TURN_TWO);
        assert_eq!((count.kind, count.turn), (Kind::CountTokens, Some(2)));
    }

    #[test]
    fn unreadable_bodies_and_other_routes_have_no_turn() {
        let bad = RequestKey::of("POST", "/v1/messages", b"{nope");
        assert_eq!(bad.turn, None);
        assert_eq!(bad.to_string(), "POST /v1/messages (no turn)");
        let models = RequestKey::of("GET", "/v1/models?limit=5", b"");
        assert_eq!(
            models.kind,
            Kind::Other {
                method: "GET".into(),
                path: "/v1/models".into()
            }
        );
        assert_ne!(
            RequestKey::of("GET", "/v1/messages", TURN_TWO).turn,
            Some(2)
        );
    }
}
