//! An execution's results as downloads: the diff, the git bundle, and the
//! artifacts, streamed with their length (or the one range of bytes asked
//! for) from wherever results are kept — any replica serves any execution's.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;

use crate::results::ResultFile;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::PathParams;
use super::range::{Wanted, wanted};
use super::state::AppState;
use super::view::{ArtifactEntry, ArtifactList};

/// The download routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/executions/{id}/diff", get(diff))
        .route("/v1/executions/{id}/bundle", get(bundle))
        .route("/v1/executions/{id}/artifacts", get(artifacts))
        .route("/v1/executions/{id}/artifacts/{*path}", get(artifact))
}

/// The `Range` request header a download honours (one range of bytes).
const RANGE_PARAM: &str = "One range of bytes (`bytes=0-1023`, `bytes=1024-`, `bytes=-512`); \
    several ranges or other units are ignored and the whole file sent";

/// The agent's changes against the base commit, as a unified diff.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/diff",
    tag = "results",
    params(
        ("id" = String, Path, description = "Execution id"),
        ("Range" = Option<String>, Header, description = RANGE_PARAM),
    ),
    responses(
        (status = 200, description = "The diff", content_type = "text/x-diff", body = String),
        (status = 206, description = "The asked range of the diff", content_type = "text/x-diff", body = String,
            headers(("content-range" = String, description = "bytes FIRST-LAST/SIZE"))),
        (status = 404, description = "No such execution, or no diff (yet)", body = ErrorBody),
        (status = 416, description = "The range starts past the end", body = ErrorBody,
            headers(("content-range" = String, description = "bytes */SIZE"))),
    )
)]
pub async fn diff(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = super::find(&state, &tenant, &id).await?;
    if !record.has_diff {
        return Err(ApiError::NotFound(format!("execution {id} has no diff")));
    }
    let download = Download {
        file: ResultFile::Diff,
        content_type: "text/x-diff; charset=utf-8",
        disposition: format!("inline; filename=\"{id}.diff\""),
        what: "diff",
    };
    download.send(&state, &id, &headers).await
}

/// The agent's branch as a git bundle (`git fetch <file> agent/<id>`).
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/bundle",
    tag = "results",
    params(
        ("id" = String, Path, description = "Execution id"),
        ("Range" = Option<String>, Header, description = RANGE_PARAM),
    ),
    responses(
        (status = 200, description = "The git bundle", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("content-disposition" = String, description = "attachment; filename=\"<id>.bundle\""))),
        (status = 206, description = "The asked range of the bundle", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("content-range" = String, description = "bytes FIRST-LAST/SIZE"))),
        (status = 404, description = "No such execution, or no bundle (no commits)", body = ErrorBody),
        (status = 416, description = "The range starts past the end", body = ErrorBody,
            headers(("content-range" = String, description = "bytes */SIZE"))),
    )
)]
pub async fn bundle(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = super::find(&state, &tenant, &id).await?;
    if !record.has_bundle {
        return Err(ApiError::NotFound(format!("execution {id} has no bundle")));
    }
    let download = Download {
        file: ResultFile::Bundle,
        content_type: "application/octet-stream",
        disposition: format!("attachment; filename=\"{id}.bundle\""),
        what: "bundle",
    };
    download.send(&state, &id, &headers).await
}

/// The files the agent handed back (written to `$AGENTD_ARTIFACTS_DIR`).
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/artifacts",
    tag = "results",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The artifacts (empty until the execution is final)", body = ArtifactList),
        (status = 404, description = "No such execution", body = ErrorBody),
    )
)]
pub async fn artifacts(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Json<ArtifactList>, ApiError> {
    super::find(&state, &tenant, &id).await?;
    let listed = state.supervisor.store().artifacts(&id).await?;
    Ok(Json(ArtifactList {
        items: listed
            .into_iter()
            .map(|artifact| ArtifactEntry::of(&id, artifact))
            .collect(),
    }))
}

/// One artifact's bytes. Only paths the artifact list names are served.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/artifacts/{path}",
    tag = "results",
    params(
        ("id" = String, Path, description = "Execution id"),
        ("path" = String, Path, description = "The artifact's path as listed (may contain `/`)"),
        ("Range" = Option<String>, Header, description = RANGE_PARAM),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The asked range of the file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("content-range" = String, description = "bytes FIRST-LAST/SIZE"))),
        (status = 404, description = "No such execution or artifact", body = ErrorBody),
        (status = 416, description = "The range starts past the end", body = ErrorBody,
            headers(("content-range" = String, description = "bytes */SIZE"))),
    )
)]
pub async fn artifact(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams((id, path)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    super::find(&state, &tenant, &id).await?;
    let listed = state.supervisor.store().artifacts(&id).await?;
    if !listed.iter().any(|artifact| artifact.path == path) {
        return Err(ApiError::NotFound(format!(
            "execution {id} has no artifact `{path}`"
        )));
    }
    let name = std::path::Path::new(&path)
        .file_name()
        .map(|name| name.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
        .unwrap_or_else(|| "artifact".into());
    let download = Download {
        file: ResultFile::Artifact(path),
        content_type: "application/octet-stream",
        disposition: format!("attachment; filename=\"{name}\""),
        what: "artifact",
    };
    download.send(&state, &id, &headers).await
}

/// One result file, as a response.
struct Download {
    file: ResultFile,
    content_type: &'static str,
    disposition: String,
    what: &'static str,
}

impl Download {
    /// Streams the file (or the asked range of it) from wherever results are
    /// kept, with its length; a file that is not there is a 404.
    async fn send(
        self,
        state: &AppState,
        id: &str,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let results = state.supervisor.results();
        let size = results
            .size(id, &self.file)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::NotFound(format!("the {} is not available", self.what)))?;
        let (status, range) = match wanted(headers.get(header::RANGE), size) {
            Wanted::Whole => (StatusCode::OK, 0..size),
            Wanted::Part(range) => (StatusCode::PARTIAL_CONTENT, range),
            Wanted::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { size }),
        };
        let body = results
            .read(id, &self.file, range.clone())
            .await
            .map_err(ApiError::internal)?
            .inspect(|chunk| {
                if let Err(error) = chunk {
                    tracing::error!(%error, "a download broke off");
                }
            });
        let disposition = HeaderValue::from_str(&self.disposition).map_err(ApiError::internal)?;
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = status;
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        out.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(range.end - range.start),
        );
        out.insert(header::CONTENT_DISPOSITION, disposition);
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if status == StatusCode::PARTIAL_CONTENT {
            let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
            out.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).map_err(ApiError::internal)?,
            );
        }
        Ok(response)
    }
}
