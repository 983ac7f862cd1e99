//! A client for agentd's HTTP API: what `agentd run --server URL` uses, and a
//! seam for tests and benchmarks.

use std::path::Path;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::api::{ArtifactEntry, ArtifactList, ErrorBody, ExecutionView};
use crate::execution::{Event, EventBody, ExecutionRequest, SupervisorEvent};

use crate::wire::SseParser;

mod admin;

/// What talking to a server can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not an http(s) URL.
    #[error("invalid server URL `{0}`")]
    Url(String),
    /// The request did not get an answer.
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with an error.
    #[error("server said {status}: {message}{}", field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    /// Writing a download failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A connection to one agentd server.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    pub(crate) http: reqwest::Client,
}

/// How many times an event stream is re-opened after losing its connection.
const RECONNECTS: u32 = 20;

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8700`),
    /// without a credential.
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        Client::with_token(base_url, None)
    }

    /// A client sending `token` (a tenant's key, or the admin credential) as
    /// `Authorization: Bearer` on every request.
    pub fn with_token(base_url: &str, token: Option<&str>) -> Result<Client, ClientError> {
        let mut base = Url::parse(base_url).map_err(|_| ClientError::Url(base_url.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::Url(base_url.to_string()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        crate::wire::install_crypto_provider();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| {
                        ClientError::Url("the credential is not a valid header value".into())
                    })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .default_headers(headers)
            .build()?;
        Ok(Client { base, http })
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    /// Submits an execution (202); with a key, a retried submit returns the same one.
    pub async fn submit(
        &self,
        request: &ExecutionRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ExecutionView, ClientError> {
        let mut builder = self
            .http
            .post(self.url("v1/executions"))
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = idempotency_key {
            builder = builder.header(crate::api::IDEMPOTENCY_KEY, key);
        }
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        json(builder.body(body).send().await?).await
    }

    /// Queues the next step of `parent`'s conversation.
    pub async fn follow_up(
        &self,
        parent: &str,
        request: &crate::execution::FollowUpRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ExecutionView, ClientError> {
        let mut builder = self
            .http
            .post(self.url(&format!("v1/executions/{parent}/follow-ups")))
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = idempotency_key {
            builder = builder.header(crate::api::IDEMPOTENCY_KEY, key);
        }
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        json(builder.body(body).send().await?).await
    }

    /// Sends a message to a running streaming execution's agent.
    pub async fn message(&self, id: &str, text: &str) -> Result<serde_json::Value, ClientError> {
        json(
            self.http
                .post(self.url(&format!("v1/executions/{id}/messages")))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::json!({ "text": text }).to_string())
                .send()
                .await?,
        )
        .await
    }

    /// One execution.
    pub async fn execution(&self, id: &str) -> Result<ExecutionView, ClientError> {
        json(
            self.http
                .get(self.url(&format!("v1/executions/{id}")))
                .send()
                .await?,
        )
        .await
    }

    /// Asks the server to cancel an execution.
    pub async fn cancel(&self, id: &str) -> Result<ExecutionView, ClientError> {
        json(
            self.http
                .post(self.url(&format!("v1/executions/{id}/cancel")))
                .send()
                .await?,
        )
        .await
    }

    /// The artifacts of a finished execution.
    pub async fn artifacts(&self, id: &str) -> Result<Vec<ArtifactEntry>, ClientError> {
        let list: ArtifactList = json(
            self.http
                .get(self.url(&format!("v1/executions/{id}/artifacts")))
                .send()
                .await?,
        )
        .await?;
        Ok(list.items)
    }

    /// Streams a server path (e.g. `/v1/executions/{id}/diff`) into `dest`.
    /// `Ok(false)` when the server has nothing there (404).
    pub async fn download(&self, path: &str, dest: &Path) -> Result<bool, ClientError> {
        let response = self.http.get(self.url(path)).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let response = check(response).await?;
        let io = |source| ClientError::Io {
            path: dest.display().to_string(),
            source,
        };
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk?).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(true)
    }

    /// An execution's events from `after` on, live, until its final status.
    /// A dropped connection is re-opened from the last event received, so the
    /// stream has no gap and no repeat.
    pub fn events(
        &self,
        id: &str,
        after: u64,
    ) -> impl Stream<Item = Result<Event, ClientError>> + Send + 'static {
        let client = self.clone();
        let url = self.url(&format!("v1/executions/{id}/events"));
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let mut last = after;
            let mut failures = 0;
            loop {
                match client.follow(&url, &mut last, &tx).await {
                    Ok(true) => return,
                    Ok(false) | Err(ClientError::Http(_)) if failures < RECONNECTS => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(
                            200 * u64::from(failures.min(10)),
                        ))
                        .await;
                    }
                    Ok(false) => {
                        let _ = tx
                            .send(Err(ClientError::Decode(
                                "the event stream kept ending before the execution did".into(),
                            )))
                            .await;
                        return;
                    }
                    Err(error) => {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        tokio_stream_from(rx)
    }

    /// Reads one connection's worth of events; `true` once the final status came.
    async fn follow(
        &self,
        url: &Url,
        last: &mut u64,
        tx: &tokio::sync::mpsc::Sender<Result<Event, ClientError>>,
    ) -> Result<bool, ClientError> {
        let response = self
            .http
            .get(url.clone())
            .header(crate::api::LAST_EVENT_ID, last.to_string())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await?;
        let response = check(response).await?;
        let mut parser = SseParser::default();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            for sse in parser.push(&chunk?) {
                let Ok(event) = serde_json::from_str::<Event>(&sse.data) else {
                    continue; // `lagged` notices and the like carry no event.
                };
                if event.seq <= *last {
                    continue;
                }
                *last = event.seq;
                let done = is_final(&event);
                if tx.send(Ok(event)).await.is_err() || done {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// True for an event announcing a final status.
pub fn is_final(event: &Event) -> bool {
    matches!(&event.body, EventBody::Agentd(SupervisorEvent::Status { status, .. }) if status.is_final())
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub(crate) async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            field: body.error.field,
        }),
        Err(_) => Err(ClientError::Api {
            status,
            code: "unknown".into(),
            message: text.chars().take(300).collect(),
            field: None,
        }),
    }
}

pub(crate) async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let response = check(response).await?;
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
}
