//! An execution's results as downloads: the diff, the git bundle, and the
//! artifacts, streamed from the execution's folder with their length.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::io::ReaderStream;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::PathParams;
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

/// The agent's changes against the base commit, as a unified diff.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/diff",
    tag = "results",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The diff", content_type = "text/x-diff", body = String),
        (status = 404, description = "No such execution, or no diff (yet)", body = ErrorBody),
    )
)]
pub async fn diff(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = super::find(&state, &tenant, &id).await?;
    if !record.has_diff {
        return Err(ApiError::NotFound(format!("execution {id} has no diff")));
    }
    let path = state.supervisor.execution_dir(&id).diff();
    let disposition = format!("inline; filename=\"{id}.diff\"");
    send_file(&path, "text/x-diff; charset=utf-8", &disposition, "diff").await
}

/// The agent's branch as a git bundle (`git fetch <file> agent/<id>`).
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/bundle",
    tag = "results",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The git bundle", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("content-disposition" = String, description = "attachment; filename=\"<id>.bundle\""))),
        (status = 404, description = "No such execution, or no bundle (no commits)", body = ErrorBody),
    )
)]
pub async fn bundle(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let record = super::find(&state, &tenant, &id).await?;
    if !record.has_bundle {
        return Err(ApiError::NotFound(format!("execution {id} has no bundle")));
    }
    let path = state.supervisor.execution_dir(&id).bundle();
    let disposition = format!("attachment; filename=\"{id}.bundle\"");
    send_file(&path, "application/octet-stream", &disposition, "bundle").await
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
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such execution or artifact", body = ErrorBody),
    )
)]
pub async fn artifact(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams((id, path)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    super::find(&state, &tenant, &id).await?;
    let missing = || ApiError::NotFound(format!("execution {id} has no artifact `{path}`"));
    let listed = state.supervisor.store().artifacts(&id).await?;
    if !listed.iter().any(|artifact| artifact.path == path) {
        return Err(missing());
    }
    let root = state.supervisor.execution_dir(&id).artifacts();
    let file = confined(&root, &path).await.ok_or_else(missing)?;
    let name = Path::new(&path)
        .file_name()
        .map(|name| name.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
        .unwrap_or_else(|| "artifact".into());
    let disposition = format!("attachment; filename=\"{name}\"");
    send_file(&file, "application/octet-stream", &disposition, "artifact").await
}

/// `root/relative` when it is a regular file that really lies under `root`:
/// only plain components, and no symbolic link on the way out of it.
async fn confined(root: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)))
    {
        return None;
    }
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(root.join(relative)).await.ok()?;
    file.starts_with(&root).then_some(file)
}

/// Streams a file with its length; a file that is not there is a 404.
async fn send_file(
    path: &Path,
    content_type: &'static str,
    disposition: &str,
    what: &str,
) -> Result<Response, ApiError> {
    let file = open_regular(path).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            ApiError::NotFound(format!("the {what} is not available"))
        } else {
            ApiError::internal(format!("{}: {error}", path.display()))
        }
    })?;
    let length = file
        .metadata()
        .await
        .map_err(|error| ApiError::internal(format!("{}: {error}", path.display())))?
        .len();
    let disposition = HeaderValue::from_str(disposition).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}

/// Opens a regular file without following a symbolic link at its last step.
async fn open_regular(path: &Path) -> std::io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .await?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a regular file",
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_files_inside_the_folder_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("artifacts");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/ok.txt"), "ok").unwrap();
        std::fs::write(dir.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();

        assert!(confined(&root, "sub/ok.txt").await.is_some());
        for bad in [
            "../secret",
            "/etc/passwd",
            "sub/../../secret",
            "link",
            "",
            "sub",
        ] {
            let found = confined(&root, bad).await;
            let served = match found {
                Some(path) => open_regular(&path).await.is_ok(),
                None => false,
            };
            assert!(!served, "{bad} must not be served");
        }
    }
}
