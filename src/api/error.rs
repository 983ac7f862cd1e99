//! The one place that turns what went wrong into an HTTP status and a JSON body.
//!
//! Every error a client sees has the shape
//! `{"error":{"code":"…","message":"…","field":"…"}}` (`field` only when one
//! field, parameter or header is to blame). Internal errors are logged here and
//! shown to the client only as `internal`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::stream_budget::StreamRefusal;
use super::unreadable::Unreadable;
use crate::store::StoreError;
use crate::supervisor::SupervisorError;

/// What an API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (syntax error, truncated). 400.
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The JSON does not fit the request's shape (unknown field, wrong type,
    /// missing field). 400.
    #[error("{field}: {message}")]
    InvalidBody { field: String, message: String },
    /// A header has a value the API does not accept. 400.
    #[error("header {header}: {message}")]
    InvalidHeader {
        header: &'static str,
        message: String,
    },
    /// A query or path parameter has a value the API does not accept. 400.
    #[error("parameter {parameter}: {message}")]
    InvalidParameter { parameter: String, message: String },
    /// The body is larger than the limit. 413.
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body is not declared as JSON. 415.
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The request is well formed but breaks a rule. 422.
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },
    /// The admins' policy does not admit the request (a cap, an allow-list,
    /// the daily spend). 422, naming the field, the rule and, for a cap, the
    /// asked and the allowed value.
    #[error(transparent)]
    PolicyRefused(crate::tenancy::PolicyRefusal),
    /// An idempotency key was reused for a different request. 422.
    #[error("the Idempotency-Key `{0}` was already used for a different request")]
    IdempotencyConflict(String),
    /// No credential, or one that is malformed, unknown, expired or revoked.
    /// 401, with `WWW-Authenticate: Bearer`; `given` says whether a credential
    /// was sent at all.
    #[error("{message}")]
    Unauthorized { message: String, given: bool },
    /// The credential is valid but may not do this (a tenant key on an admin
    /// route, a disabled tenant, no admin credential configured). 403.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such execution (for this tenant), file or route. 404.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method. 405.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A `Range` that lies wholly past the end of a download of `size`
    /// bytes. 416, with `Content-Range: bytes */size`.
    #[error("the range lies past the end of the file ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    /// The life cycle forbids the step. 409.
    #[error("{0}")]
    Conflict(String),
    /// Too many event streams open: the tenant's (429) or the server's (503).
    #[error("{}", match .0 {
        StreamRefusal::Tenant => "this tenant has its most event streams open; close one or retry later",
        StreamRefusal::Server => "the server has its most event streams open; retry later",
    })]
    TooManyStreams(StreamRefusal),
    /// The HTTP layer could not read the request at all (a malformed head, a
    /// target or headers larger than it reads). 400, 414 or 431.
    #[error("{}", match .0 {
        Unreadable::Malformed => "the request is not well-formed HTTP/1.1",
        Unreadable::TargetTooLong => "the request target is longer than the server reads (64 KiB)",
        Unreadable::HeadersTooLarge => "the request's headers are larger than the server reads (about 400 KiB, at most 100 headers)",
    })]
    Unreadable(Unreadable),
    /// agentd is shutting down and takes no new work. 503.
    #[error("agentd is shutting down")]
    ShuttingDown,
    /// Something failed inside agentd. 500; the detail is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The detail of an error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code: `malformed_json`, `invalid_body`,
    /// `invalid_header`, `invalid_parameter`, `body_too_large`,
    /// `unsupported_media_type`, `invalid_field`, `policy_refused`, `idempotency_conflict`,
    /// `unauthorized`, `forbidden`, `tenant_disabled`, `admin_disabled`,
    /// `not_found`, `method_not_allowed`, `conflict`, `range_not_satisfiable`,
    /// `too_many_streams`, `malformed_request`, `uri_too_long`,
    /// `headers_too_large`, `shutting_down`,
    /// `internal`.
    #[schema(example = "invalid_field")]
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// The body field (as a JSON path such as `limits.memory_bytes`), query
    /// parameter or header to blame, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `policy_refused`: the policy rule that refused (`caps.cpus`,
    /// `sources.urls`, `daily_spend_usd`…; see `GET /v1/policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For a cap: the value the request asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub asked: Option<serde_json::Value>,
    /// For a cap: the most the policy allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub allowed: Option<serde_json::Value>,
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::InvalidBody { .. }
            | ApiError::InvalidHeader { .. }
            | ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. }
            | ApiError::PolicyRefused(_)
            | ApiError::IdempotencyConflict(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Unreadable(unreadable) => unreadable.status(),
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyStreams(StreamRefusal::Tenant) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooManyStreams(StreamRefusal::Server) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidBody { .. } => "invalid_body",
            ApiError::InvalidHeader { .. } => "invalid_header",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::PolicyRefused(_) => "policy_refused",
            ApiError::IdempotencyConflict(_) => "idempotency_conflict",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::Unreadable(Unreadable::Malformed) => "malformed_request",
            ApiError::Unreadable(Unreadable::TargetTooLong) => "uri_too_long",
            ApiError::Unreadable(Unreadable::HeadersTooLarge) => "headers_too_large",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::TooManyStreams(_) => "too_many_streams",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::InvalidBody { field, .. } | ApiError::Invalid { field, .. } => {
                Some(field.clone())
            }
            ApiError::PolicyRefused(refusal) => Some(refusal.field.to_string()),
            ApiError::InvalidHeader { header, .. } => Some(header.to_string()),
            ApiError::InvalidParameter { parameter, .. } => Some(parameter.clone()),
            ApiError::IdempotencyConflict(_) => Some(super::extract::IDEMPOTENCY_KEY.to_string()),
            ApiError::RangeNotSatisfiable { .. } => Some("Range".to_string()),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::InvalidBody { message, .. }
            | ApiError::InvalidHeader { message, .. }
            | ApiError::InvalidParameter { message, .. } => message.clone(),
            ApiError::Invalid { rule, .. } => rule.clone(),
            ApiError::PolicyRefused(refusal) => refusal.message.clone(),
            ApiError::Internal(_) => "internal error; see the server log".to_string(),
            other => other.to_string(),
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.message(),
                field: self.field(),
                rule: match self {
                    ApiError::PolicyRefused(refusal) => Some(refusal.rule.to_string()),
                    _ => None,
                },
                asked: match self {
                    ApiError::PolicyRefused(refusal) => refusal.asked.clone(),
                    _ => None,
                },
                allowed: match self {
                    ApiError::PolicyRefused(refusal) => refusal.allowed.clone(),
                    _ => None,
                },
            },
        }
    }

    /// An internal error from anything displayable (logged when answered).
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if matches!(self, ApiError::ShuttingDown | ApiError::TooManyStreams(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let ApiError::RangeNotSatisfiable { size } = &self {
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            );
        }
        if let ApiError::Unauthorized { given, .. } = &self {
            let challenge = if *given {
                r#"Bearer realm="agentd", error="invalid_token""#
            } else {
                r#"Bearer realm="agentd""#
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<SupervisorError> for ApiError {
    fn from(error: SupervisorError) -> Self {
        match error {
            SupervisorError::Invalid(invalid) => ApiError::Invalid {
                field: invalid.field.to_string(),
                rule: invalid.rule,
            },
            SupervisorError::Refused(refusal) => ApiError::PolicyRefused(refusal),
            SupervisorError::ShuttingDown => ApiError::ShuttingDown,
            SupervisorError::Store(store) => store.into(),
            SupervisorError::Engine(engine) => ApiError::internal(format!("docker: {engine}")),
            SupervisorError::Results(results) => ApiError::internal(results),
            SupervisorError::Deliver(crate::runner::DeliverError::Store(store)) => store.into(),
            SupervisorError::Deliver(crate::runner::DeliverError::Results(results)) => {
                ApiError::internal(results)
            }
            SupervisorError::Deliver(other) => ApiError::Conflict(other.to_string()),
            SupervisorError::NotListening(message) => ApiError::Conflict(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => ApiError::NotFound(format!("execution {id} not found")),
            StoreError::IdempotencyConflict(key) => ApiError::IdempotencyConflict(key),
            StoreError::InvalidCursor => ApiError::InvalidParameter {
                parameter: "cursor".into(),
                message: "not a cursor this server handed out".into(),
            },
            StoreError::IllegalTransition { .. } | StoreError::TenantExists(_) => {
                ApiError::Conflict(error.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::InvalidField;

    fn json(error: ApiError) -> (StatusCode, serde_json::Value) {
        (error.status(), serde_json::to_value(error.body()).unwrap())
    }

    #[test]
    fn validation_names_field_and_rule() {
        let (status, body) = json(
            SupervisorError::Invalid(InvalidField {
                field: "limits.pids",
                rule: "must be between 16 and 65536".into(),
            })
            .into(),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["field"], "limits.pids");
        assert_eq!(body["error"]["message"], "must be between 16 and 65536");
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let (status, body) = json(StoreError::UnsupportedUrl("secret://x".into()).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret"), "{body}");
        assert!(body["error"].get("field").is_none());
    }

    #[test]
    fn store_refusals_map_to_client_errors() {
        let cases = [
            (
                StoreError::NotFound("x".into()),
                StatusCode::NOT_FOUND,
                None,
            ),
            (
                StoreError::IdempotencyConflict("k".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Idempotency-Key"),
            ),
            (
                StoreError::InvalidCursor,
                StatusCode::BAD_REQUEST,
                Some("cursor"),
            ),
        ];
        for (error, status, field) in cases {
            let (got, body) = json(error.into());
            assert_eq!(got, status);
            assert_eq!(body["error"]["field"].as_str(), field);
        }
        let (status, _) = json(SupervisorError::ShuttingDown.into());
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
