//! What handlers take from a request — the tenant, a JSON body, headers, path
//! and query parameters — with every refusal turned into an [`ApiError`] that
//! names what to fix (never axum's plain-text rejections).

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::body_shape::{Documented, array_where_none_is_documented};
use super::error::ApiError;
use super::state::AppState;

/// The header that makes a create request safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Longest idempotency key accepted: 255 characters.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// The header an SSE client sends when it reconnects.
pub const LAST_EVENT_ID: &str = "Last-Event-ID";

/// A JSON request body of type `T`: `Content-Type` must be JSON (415), the body
/// at most the configured limit (413), the JSON well formed (400
/// `malformed_json`) and of the right shape (400 `invalid_body`, naming the field).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Documented> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        if !declares_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = state.config.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared.filter(|length| *length > limit as u64) {
            linger(request.into_body(), length);
            return Err(ApiError::BodyTooLarge { limit });
        }
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|error| {
                if is_length_limit(&error) {
                    ApiError::BodyTooLarge { limit }
                } else {
                    ApiError::MalformedJson(format!("the body could not be read: {error}"))
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Most of a refused body read and thrown away so the client, still writing
/// it, sees the 413 rather than a reset connection (a lingering close).
const LINGER_BYTES: u64 = 16 << 20;
/// How long a refused body is read before the connection is let go.
const LINGER_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards a refused body in the background, at most
/// [`LINGER_BYTES`] for at most [`LINGER_FOR`]: answering 413 and dropping
/// the body at once resets the connection under a client still sending, which
/// then reports a broken pipe instead of the answer.
fn linger(body: axum::body::Body, declared: u64) {
    if declared > LINGER_BYTES {
        return;
    }
    tokio::spawn(async move {
        let mut body = body;
        let drain = async {
            let mut read = 0u64;
            while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
                read += frame.data_ref().map_or(0, |data| data.len() as u64);
                if read > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_FOR, drain).await;
    });
}

fn declares_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// Parses a JSON document, naming the field at fault when it has the wrong
/// shape; a field the type does not know is refused, at any depth, and so is
/// an array where the API documents an object ([`super::body_shape`]).
pub fn parse_json<T: DeserializeOwned + Documented>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_shape(bytes)?;
    let body: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    if let Some(field) = array_where_none_is_documented::<T>(&body) {
        return Err(ApiError::InvalidBody {
            field,
            message: "invalid type: sequence, expected an object".into(),
        });
    }
    Ok(value)
}

fn parse_shape<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut unknown = None;
    let mut note = |path: serde_ignored::Path<'_>| {
        unknown.get_or_insert_with(|| path.to_string());
    };
    let watched = serde_ignored::Deserializer::new(&mut deserializer, &mut note);
    let value = serde_path_to_error::deserialize(watched).map_err(shape_error)?;
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    if let Some(field) = unknown {
        let name = field.rsplit('.').next().unwrap_or(&field).to_string();
        return Err(ApiError::InvalidBody {
            field,
            message: format!("unknown field `{name}`"),
        });
    }
    Ok(value)
}

fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return ApiError::MalformedJson(inner.to_string());
    }
    let message = inner.to_string();
    let mut field = if path == "." { String::new() } else { path };
    if let Some(name) = named_field(&message)
        && !field.ends_with(name)
    {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(name);
    }
    let message = if message.contains("untagged enum") {
        "has the wrong type".to_string()
    } else {
        message
    };
    ApiError::InvalidBody {
        field: if field.is_empty() { ".".into() } else { field },
        message,
    }
}

/// The field a serde "missing field `x`" / "unknown field `x`" message names.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// The optional `Idempotency-Key` header: 1–255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let invalid = |message: &str| ApiError::InvalidHeader {
            header: IDEMPOTENCY_KEY,
            message: message.to_string(),
        };
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyKey(None));
        };
        if values.next().is_some() {
            return Err(invalid("must be given once"));
        }
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY {
            return Err(invalid(&format!(
                "must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )));
        }
        if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(invalid("must be visible ASCII characters (no spaces)"));
        }
        Ok(IdempotencyKey(Some(
            String::from_utf8_lossy(bytes).into_owned(),
        )))
    }
}

/// Path parameters, with axum's rejection turned into a 400 naming the path.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParams(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                Err(ApiError::InvalidParameter {
                    parameter: "path".into(),
                    message: error.body_text(),
                })
            }
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// The query string as name/value pairs, read strictly: every parameter at
/// most once, and (with [`QueryParams::finish`]) none the route does not know.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let pairs = parts
            .uri
            .query()
            .map(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(QueryParams { pairs })
    }
}

impl QueryParams {
    /// Takes a parameter out; an empty value counts as absent.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        Ok(self.take_given(name)?.filter(|value| !value.is_empty()))
    }

    /// [`QueryParams::take`], with an empty value (`status=`) kept as given:
    /// for a parameter whose empty value is not one of its values.
    pub fn take_given(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found = None;
        let mut rest = Vec::with_capacity(self.pairs.len());
        for (key, value) in self.pairs.drain(..) {
            if key != name {
                rest.push((key, value));
            } else if found.is_some() {
                return Err(invalid_parameter(name, "must be given at most once"));
            } else {
                found = Some(value);
            }
        }
        self.pairs = rest;
        Ok(found)
    }

    /// Takes a parameter out and parses it; an empty value (`limit=`) is no
    /// number and is refused, as the document says.
    pub fn parse<T: std::str::FromStr>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        self.take_given(name)?
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| invalid_parameter(name, &format!("`{value}` is not {expected}")))
            })
            .transpose()
    }

    /// Refuses whatever parameter is left (a typo would otherwise be ignored).
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.into_iter().next() {
            Some((name, _)) => Err(invalid_parameter(&name, "is not a known parameter")),
            None => Ok(()),
        }
    }
}

/// A 400 naming a query parameter.
pub fn invalid_parameter(name: &str, message: &str) -> ApiError {
    ApiError::InvalidParameter {
        parameter: name.to_string(),
        message: message.to_string(),
    }
}

/// The event to resume after: the `Last-Event-ID` header (what a reconnecting
/// SSE client sends), else the `after` query parameter, else 0 (from the start).
pub fn resume_point(headers: &HeaderMap, query: &mut QueryParams) -> Result<u64, ApiError> {
    // Event ids are int64, as documented and stored.
    let after = query
        .parse::<i64>("after", "an event id")?
        .map(|after| {
            u64::try_from(after)
                .map_err(|_| invalid_parameter("after", "must be an event id (0 or more)"))
        })
        .transpose()?;
    match headers.get(LAST_EVENT_ID) {
        Some(value) => value
            .to_str()
            .ok()
            .map(str::trim)
            .and_then(|v| {
                if v.is_empty() {
                    Some(0)
                } else {
                    // Any id the documented pattern admits (19 digits at
                    // most); past the last stored event it means "after
                    // everything".
                    v.parse::<u64>().ok().map(|id| id.min(i64::MAX as u64))
                }
            })
            .ok_or_else(|| ApiError::InvalidHeader {
                header: LAST_EVENT_ID,
                message: "must be an event id (a non-negative integer)".into(),
            }),
        None => Ok(after.unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::ExecutionRequest;

    fn field_of(json: &str) -> (String, String) {
        match parse_json::<ExecutionRequest>(json.as_bytes()) {
            Err(ApiError::InvalidBody { field, message }) => (field, message),
            other => panic!("expected an invalid body, got {other:?}"),
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(field_of(r#"{"repo":"r"}"#).0, "prompt");
        assert_eq!(field_of(r#"{"repo":"r","prompt":"p","nope":1}"#).0, "nope");
        assert_eq!(
            field_of(r#"{"repo":"r","prompt":"p","agent":{"max_turns":"x"}}"#).0,
            "agent.max_turns"
        );
        assert_eq!(
            field_of(r#"{"repo":"r","prompt":"p","limits":{"bogus":1}}"#).0,
            "limits.bogus"
        );
        let (field, message) = field_of(r#"{"repo":"r","prompt":"p","limits":{"timeout":true}}"#);
        assert_eq!(field, "limits.timeout");
        assert_eq!(message, "has the wrong type");
        assert_eq!(field_of(r#""text""#).0, ".");
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for text in [
            r#"{"repo":"#,
            "not json",
            r#"{"repo":"r","prompt":"p"} x"#,
            "",
        ] {
            assert!(
                matches!(
                    parse_json::<ExecutionRequest>(text.as_bytes()),
                    Err(ApiError::MalformedJson(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!declares_json(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(declares_json(&headers), ok, "{value}");
        }
    }

    #[test]
    fn query_parameters_are_strict() {
        let mut query = QueryParams {
            pairs: vec![
                ("limit".into(), "5".into()),
                ("limit".into(), "6".into()),
                ("x".into(), "1".into()),
            ],
        };
        assert!(query.take("limit").is_err());
        let mut query = QueryParams {
            pairs: vec![("limit".into(), "five".into()), ("x".into(), "1".into())],
        };
        assert!(matches!(
            query.parse::<u32>("limit", "a number"),
            Err(ApiError::InvalidParameter { parameter, .. }) if parameter == "limit"
        ));
        assert!(matches!(
            query.finish(),
            Err(ApiError::InvalidParameter { parameter, .. }) if parameter == "x"
        ));
        // `limit=` is no number (schemathesis found it read as absent).
        let mut query = QueryParams {
            pairs: vec![("limit".into(), String::new())],
        };
        assert!(matches!(
            query.parse::<u32>("limit", "a number"),
            Err(ApiError::InvalidParameter { parameter, .. }) if parameter == "limit"
        ));
    }
}
