//! The exact routes a sandbox may reach, matched on the raw request target.
//!
//! Nothing of the sandbox's string is reused: a request that matches gets the
//! upstream path and query rebuilt from the table (see [`Allowed::upstream_target`]).
//! Dot-segments (plain or percent-encoded), any percent-encoding, backslashes,
//! empty segments and absolute- or authority-form targets are refused outright,
//! so URL joining can never walk out of an allowed route.

use hyper::{Method, Uri};

/// Longest request target (path and query) considered: 1 KiB. The CLI's
/// longest is `/v1/messages/count_tokens?beta=true`; model ids are short.
pub const MAX_TARGET_LEN: usize = 1024;

/// Longest model id in `GET /v1/models/{id}` and the `*_id` query parameters: 128.
pub const MAX_MODEL_ID_LEN: usize = 128;

/// The endpoints the sandbox may call: the ones the Claude Code CLI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/messages`: a model request (billable).
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `GET /v1/models`.
    ListModels,
    /// `GET /v1/models/{model_id}`.
    GetModel,
}

impl Endpoint {
    /// True when the request carries a Messages request body.
    pub fn takes_body(self) -> bool {
        matches!(self, Endpoint::Messages | Endpoint::CountTokens)
    }

    /// The query parameters the endpoint accepts.
    fn parameters(self) -> &'static [Parameter] {
        match self {
            Endpoint::Messages | Endpoint::CountTokens | Endpoint::GetModel => &[Parameter::Beta],
            Endpoint::ListModels => &[
                Parameter::Beta,
                Parameter::Limit,
                Parameter::AfterId,
                Parameter::BeforeId,
            ],
        }
    }
}

/// A query parameter some endpoint accepts, and the values it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parameter {
    /// `beta=true|false` (the SDK's beta namespace).
    Beta,
    /// `limit=1..=1000` (model list paging).
    Limit,
    /// `after_id=<model id>` (model list paging).
    AfterId,
    /// `before_id=<model id>` (model list paging).
    BeforeId,
}

impl Parameter {
    const ALL: [Parameter; 4] = [
        Parameter::Beta,
        Parameter::Limit,
        Parameter::AfterId,
        Parameter::BeforeId,
    ];

    fn name(self) -> &'static str {
        match self {
            Parameter::Beta => "beta",
            Parameter::Limit => "limit",
            Parameter::AfterId => "after_id",
            Parameter::BeforeId => "before_id",
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            Parameter::Beta => matches!(value, "true" | "false"),
            Parameter::Limit => value
                .parse::<u16>()
                .is_ok_and(|n| (1..=1000).contains(&n) && value.len() <= 4),
            Parameter::AfterId | Parameter::BeforeId => is_model_id(value),
        }
    }
}

/// A request the route table admits, with everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// Which endpoint it calls.
    pub endpoint: Endpoint,
    /// The model id of `GET /v1/models/{id}` (checked: a safe charset only).
    model_id: Option<String>,
    /// Accepted query parameters, in the table's order.
    query: Vec<(Parameter, String)>,
}

impl Allowed {
    /// The upstream path and query relative to the base URL, built from the
    /// table (e.g. `v1/messages?beta=true`), never from the sandbox's string.
    pub fn upstream_path(&self) -> String {
        match (self.endpoint, &self.model_id) {
            (Endpoint::Messages, _) => "v1/messages".to_string(),
            (Endpoint::CountTokens, _) => "v1/messages/count_tokens".to_string(),
            (Endpoint::ListModels, _) => "v1/models".to_string(),
            (Endpoint::GetModel, Some(id)) => format!("v1/models/{id}"),
            (Endpoint::GetModel, None) => "v1/models".to_string(),
        }
    }

    /// The rebuilt query (without `?`), if any.
    pub fn upstream_query(&self) -> Option<String> {
        if self.query.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .query
            .iter()
            .map(|(parameter, value)| format!("{}={value}", parameter.name()))
            .collect();
        Some(pairs.join("&"))
    }

    /// Path and query as upstream will see them, e.g. `/v1/messages?beta=true`.
    pub fn upstream_target(&self) -> String {
        match self.upstream_query() {
            Some(query) => format!("/{}?{query}", self.upstream_path()),
            None => format!("/{}", self.upstream_path()),
        }
    }

    /// True for requests that cost model tokens (and count against the limits).
    pub fn is_billable(&self) -> bool {
        self.endpoint == Endpoint::Messages
    }
}

/// Why a request target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteRefusal {
    /// `http://host/...` or `host:port`: only origin-form targets are accepted.
    #[error("only origin-form request targets are accepted")]
    NotOriginForm,
    /// Longer than [`MAX_TARGET_LEN`].
    #[error("the request target is longer than {MAX_TARGET_LEN} bytes")]
    TooLong,
    /// A `.` or `..` segment, plain or percent-encoded.
    #[error("dot-segments are not allowed")]
    DotSegment,
    /// Any `%`: no allowed route needs percent-encoding.
    #[error("percent-encoding is not allowed")]
    PercentEncoded,
    /// A backslash anywhere.
    #[error("backslashes are not allowed")]
    Backslash,
    /// `//` or a trailing `/`.
    #[error("empty path segments are not allowed")]
    EmptySegment,
    /// Not in the route table.
    #[error("{method} {path} is not allowed")]
    NotAllowed { method: String, path: String },
    /// A query parameter the endpoint does not take, a repeated one, or a bad value.
    #[error("query parameter `{0}` is not allowed")]
    Query(String),
}

impl RouteRefusal {
    /// The HTTP status to answer with: 414 for a long target, 400 for a bad
    /// query, 403 for anything else.
    pub fn status(&self) -> hyper::StatusCode {
        match self {
            RouteRefusal::TooLong => hyper::StatusCode::URI_TOO_LONG,
            RouteRefusal::Query(_) => hyper::StatusCode::BAD_REQUEST,
            _ => hyper::StatusCode::FORBIDDEN,
        }
    }

    /// The Messages API error type for [`status`](Self::status).
    pub fn kind(&self) -> &'static str {
        match self {
            RouteRefusal::TooLong | RouteRefusal::Query(_) => "invalid_request_error",
            _ => "permission_error",
        }
    }
}

/// Matches a request against the route table.
pub fn admit(method: &Method, uri: &Uri) -> Result<Allowed, RouteRefusal> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(RouteRefusal::NotOriginForm);
    }
    let target = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("");
    if target.len() > MAX_TARGET_LEN {
        return Err(RouteRefusal::TooLong);
    }
    if target.contains('\\') {
        return Err(RouteRefusal::Backslash);
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(not_allowed(method, path));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| is_dot_segment(s)) {
        return Err(RouteRefusal::DotSegment);
    }
    if path.contains('%') {
        return Err(RouteRefusal::PercentEncoded);
    }
    if segments.iter().any(|s| s.is_empty()) {
        return Err(RouteRefusal::EmptySegment);
    }
    let (endpoint, model_id) = match (method, segments.as_slice()) {
        (&Method::POST, ["v1", "messages"]) => (Endpoint::Messages, None),
        (&Method::POST, ["v1", "messages", "count_tokens"]) => (Endpoint::CountTokens, None),
        (&Method::GET, ["v1", "models"]) => (Endpoint::ListModels, None),
        (&Method::GET, ["v1", "models", id]) if is_model_id(id) => {
            (Endpoint::GetModel, Some((*id).to_string()))
        }
        _ => return Err(not_allowed(method, path)),
    };
    let query = match query {
        Some(query) => parse_query(endpoint, query)?,
        None => Vec::new(),
    };
    Ok(Allowed {
        endpoint,
        model_id,
        query,
    })
}

fn not_allowed(method: &Method, path: &str) -> RouteRefusal {
    RouteRefusal::NotAllowed {
        method: method.to_string(),
        path: path.chars().take(120).collect(),
    }
}

/// `.` and `..`, also percent-encoded in any case mix (`%2e`, `.%2E`, …).
fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

/// A model id: ASCII letters, digits, `-`, `_`, `.`, starting with a letter or
/// digit (so never a dot-segment), at most [`MAX_MODEL_ID_LEN`] bytes.
fn is_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MODEL_ID_LEN
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn parse_query(endpoint: Endpoint, query: &str) -> Result<Vec<(Parameter, String)>, RouteRefusal> {
    let mut found: Vec<(Parameter, String)> = Vec::new();
    if query.is_empty() {
        return Ok(found);
    }
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let shown = || name.chars().take(40).collect::<String>();
        let parameter = Parameter::ALL
            .into_iter()
            .find(|p| p.name() == name && endpoint.parameters().contains(p))
            .ok_or_else(|| RouteRefusal::Query(shown()))?;
        if found.iter().any(|(p, _)| *p == parameter) || !parameter.accepts(value) {
            return Err(RouteRefusal::Query(shown()));
        }
        found.push((parameter, value.to_string()));
    }
    found.sort_by_key(|(parameter, _)| Parameter::ALL.iter().position(|p| p == parameter));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, target: &str) -> Result<String, RouteRefusal> {
        let uri: Uri = target.parse().expect("a URI");
        admit(&method, &uri).map(|allowed| allowed.upstream_target())
    }

    #[test]
    fn the_cli_routes_pass_rebuilt() {
        assert_eq!(
            check(Method::POST, "/v1/messages?beta=true").unwrap(),
            "/v1/messages?beta=true"
        );
        assert_eq!(check(Method::POST, "/v1/messages").unwrap(), "/v1/messages");
        assert_eq!(
            check(Method::POST, "/v1/messages/count_tokens?beta=true").unwrap(),
            "/v1/messages/count_tokens?beta=true"
        );
        assert_eq!(
            check(Method::GET, "/v1/models?limit=1000&beta=true").unwrap(),
            "/v1/models?beta=true&limit=1000"
        );
        assert_eq!(
            check(
                Method::GET,
                "/v1/models/claude-sonnet-4-5-20250929?beta=true"
            )
            .unwrap(),
            "/v1/models/claude-sonnet-4-5-20250929?beta=true"
        );
        assert_eq!(
            check(Method::POST, "/v1/messages?").unwrap(),
            "/v1/messages"
        );
    }

    #[test]
    fn names_why_a_target_is_refused() {
        let cases = [
            (Method::GET, "/v1/models/../files", RouteRefusal::DotSegment),
            (
                Method::GET,
                "/v1/models/%2E%2e/files",
                RouteRefusal::DotSegment,
            ),
            (Method::GET, "/v1/models/.%2E", RouteRefusal::DotSegment),
            (
                Method::GET,
                "/v1/models/%2f..%2f",
                RouteRefusal::PercentEncoded,
            ),
            (
                Method::GET,
                "/v1/models/a%5cb",
                RouteRefusal::PercentEncoded,
            ),
            (Method::POST, "//v1/messages", RouteRefusal::EmptySegment),
            (Method::POST, "/v1/messages/", RouteRefusal::EmptySegment),
            (
                Method::POST,
                "http://x/v1/messages",
                RouteRefusal::NotOriginForm,
            ),
            (
                Method::GET,
                "/v1/models?x=1",
                RouteRefusal::Query("x".into()),
            ),
            (
                Method::POST,
                "/v1/messages?beta=true&beta=false",
                RouteRefusal::Query("beta".into()),
            ),
            (
                Method::POST,
                "/v1/messages?limit=10",
                RouteRefusal::Query("limit".into()),
            ),
            (
                Method::GET,
                "/v1/models?limit=0",
                RouteRefusal::Query("limit".into()),
            ),
            (
                Method::GET,
                "/v1/models?after_id=..",
                RouteRefusal::Query("after_id".into()),
            ),
        ];
        for (method, target, expected) in cases {
            assert_eq!(check(method, target), Err(expected), "{target}");
        }
        assert!(matches!(
            check(Method::GET, "/v1/files"),
            Err(RouteRefusal::NotAllowed { .. })
        ));
        assert!(matches!(
            check(Method::GET, "/v1/messages"),
            Err(RouteRefusal::NotAllowed { .. })
        ));
        assert!(matches!(
            check(Method::GET, "/v1/models/-x"),
            Err(RouteRefusal::NotAllowed { .. })
        ));
        let long = format!("/v1/messages?{}", "a".repeat(MAX_TARGET_LEN));
        assert_eq!(check(Method::POST, &long), Err(RouteRefusal::TooLong));
    }
}
