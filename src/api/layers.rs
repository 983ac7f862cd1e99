//! What wraps every route: a request span named by the matched route, a panic
//! turned into a 500 JSON answer, and JSON error bodies for whatever the HTTP
//! layer itself refuses (unknown route, wrong method, rejections).

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::error::ApiError;

/// Largest error body read back when turning a plain-text refusal into JSON.
const MAX_REFUSAL_TEXT: usize = 4096;

/// Adds the fallbacks and layers to `routes`.
pub fn wrap<S>(routes: Router<S>, max_body_bytes: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(count_request))
        .layer(axum::middleware::map_response(move |response| {
            json_errors(response, max_body_bytes)
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(record_response),
        )
}

/// Counts every answered request by method, route template and status.
async fn count_request(request: Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    crate::metrics::global().http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// One span per request, named by its route template (`GET /v1/executions/{id}`),
/// never by the concrete path, so traces group well and metrics stay small.
fn request_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let method = request.method();
    tracing::info_span!(
        "http_request",
        otel.name = %format!("{method} {route}"),
        http.method = %method,
        http.route = route,
        http.status = tracing::field::Empty,
    )
}

fn record_response(response: &Response, latency: Duration, span: &Span) {
    span.record("http.status", response.status().as_u16());
    tracing::debug!(
        status = response.status().as_u16(),
        latency_ms = latency.as_millis() as u64,
        "answered"
    );
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

/// Rewrites any error answer that is not JSON yet (axum's own rejections are
/// plain text) into the API's error shape.
async fn json_errors(response: Response, max_body_bytes: usize) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), MAX_REFUSAL_TEXT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(or(text, "not found")),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge {
            limit: max_body_bytes,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::SERVICE_UNAVAILABLE => ApiError::ShuttingDown,
        status if status.is_server_error() => ApiError::Internal(or(text, status.as_str())),
        _ => ApiError::InvalidParameter {
            parameter: "request".into(),
            message: or(text, "the request was refused"),
        },
    };
    let mut rewritten = error.into_response();
    *rewritten.status_mut() = status;
    rewritten
}

fn or(text: String, default: &str) -> String {
    if text.is_empty() {
        default.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    async fn teapot() -> (StatusCode, &'static str) {
        (StatusCode::IM_A_TEAPOT, "short and stout")
    }

    fn client() -> reqwest::Client {
        crate::wire::install_crypto_provider();
        reqwest::Client::new()
    }

    fn routes() -> Router {
        let routes = Router::new()
            .route("/boom", get(boom))
            .route("/teapot", get(teapot))
            .route("/items/{id}", get(|| async { "item" }))
            .route("/ok", get(|| async { "fine" }));
        wrap(routes, 10)
    }

    #[tokio::test]
    async fn panics_and_plain_refusals_become_json() {
        let state_free = routes();
        let base = serve(state_free).await;
        let client = client();

        let response = client.get(format!("{base}/boom")).send().await.unwrap();
        assert_eq!(response.status(), 500);
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("boom"), "{body}");

        let response = client.get(format!("{base}/teapot")).send().await.unwrap();
        assert_eq!(response.status(), 418);
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["error"]["message"], "short and stout");

        let response = client.post(format!("{base}/ok")).send().await.unwrap();
        assert_eq!(response.status(), 405);
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");

        let response = client.get(format!("{base}/nowhere")).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "not_found");

        let response = client.get(format!("{base}/ok")).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "fine");
    }

    /// Collects what the fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn request_spans_are_named_by_the_route_template() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        // Other tests' threads may have cached "nobody listens" for these callsites.
        tracing::callsite::rebuild_interest_cache();
        let base = serve(routes()).await;
        let client = client();
        for id in ["a1", "b2", "c3"] {
            let response = client
                .get(format!("{base}/items/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.text().await.unwrap(), "item");
        }
        client.get(format!("{base}/nowhere")).send().await.unwrap();
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            log.matches("http.route=\"/items/{id}\"").count(),
            3,
            "{log}"
        );
        assert!(log.contains("otel.name=GET /items/{id}"), "{log}");
        assert!(
            !log.contains("a1"),
            "concrete paths stay out of spans: {log}"
        );
        assert!(log.contains("http.route=\"unmatched\""), "{log}");
    }
}
