//! `agentd run --server URL`: the same run, driven on a remote supervisor, with
//! the same live output and summary; results are downloaded into the local data
//! directory so the summary's paths are local files.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use agentd::api::Execution;
use agentd::client::Client;
use agentd::execution::layout::DataDir;
use agentd::execution::summary::{Artifact, RefusedEntry, Summary};
use agentd::execution::{
    EventBody, EventObserver, ExecutionRequest, SupervisorEvent, is_execution_id,
};

use super::common::Failure;
use super::render::Terminal;
use super::safe_text::one_line;

/// Submits `request` to `server`, follows it to the end, and downloads its results.
pub async fn run_remote(
    server: &str,
    request: &ExecutionRequest,
    data_dir: &DataDir,
    terminal: Arc<Terminal>,
    cancel: CancellationToken,
) -> Result<Summary, Failure> {
    let client = Client::new(server)?;
    let key = uuid::Uuid::new_v4().to_string();
    let submitted = client.submit(request, Some(&key)).await?;
    let id = submitted.id.clone();
    // The id becomes a local folder name: only a real execution id is accepted.
    if !is_execution_id(&id) {
        return Err(Failure::fatal(format!(
            "the server answered with an invalid execution id `{}`",
            one_line(&id)
        )));
    }
    eprintln!(
        "agentd: execution {} on {}",
        one_line(&id),
        one_line(server)
    );
    let dir = data_dir.execution(&id);
    std::fs::create_dir_all(dir.root())?;
    let mut log = std::fs::File::create(dir.events())?;

    let canceller = {
        let client = client.clone();
        let id = id.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            if let Err(error) = client.cancel(&id).await {
                eprintln!(
                    "agentd: cancelling failed: {}",
                    one_line(&error.to_string())
                );
            }
        })
    };
    let mut events = Box::pin(client.events(&id, 0));
    let mut refused = Vec::new();
    while let Some(event) = events.next().await {
        let event = event?;
        if let EventBody::Agentd(SupervisorEvent::Refused { path, reason }) = &event.body {
            refused.push(RefusedEntry {
                path: path.clone(),
                reason: reason.clone(),
            });
        }
        let _ = serde_json::to_writer(&mut log, &event);
        let _ = log.write_all(b"\n");
        terminal.on_event(&event);
    }
    canceller.abort();

    let execution = client.execution(&id).await?;
    let mut artifacts = Vec::new();
    // Download paths are built here, never taken from the server's answer: a
    // link to another host would be fetched with this client's credentials.
    let links = agentd::api::ExecutionLinks::of(&id);
    if execution.has_diff {
        client.download(&links.diff, &dir.diff()).await?;
    }
    if execution.has_bundle {
        client.download(&links.bundle, &dir.bundle()).await?;
    }
    for entry in client.artifacts(&id).await? {
        let Some(local) = safe_relative(&entry.path) else {
            refused.push(RefusedEntry {
                path: entry.path.clone(),
                reason: "the server named an artifact path outside the artifacts folder".into(),
            });
            continue;
        };
        let download = format!("{}/{}", links.artifacts, encode_path(&local));
        if client
            .download(&download, &dir.artifacts().join(&local))
            .await?
        {
            artifacts.push(Artifact {
                path: entry.path,
                size: entry.size,
                sha256: entry.sha256,
            });
        }
    }
    let mut summary = summary(&execution, &dir, artifacts);
    summary.refused = refused;
    std::fs::write(dir.summary(), serde_json::to_vec_pretty(&summary)?)?;
    Ok(summary)
}

/// `path` as a plain relative path (only normal components), or `None`.
fn safe_relative(path: &str) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let parsed = std::path::Path::new(path);
    let plain = !path.is_empty()
        && !path.contains('\0')
        && parsed
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| parsed.to_path_buf())
}

/// A relative path as URL path segments, each percent-encoded.
fn encode_path(path: &std::path::Path) -> String {
    path.components()
        .map(|c| {
            url::form_urlencoded::byte_serialize(c.as_os_str().as_encoded_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn summary(
    execution: &Execution,
    dir: &agentd::execution::layout::ExecutionDir,
    artifacts: Vec<Artifact>,
) -> Summary {
    Summary {
        id: execution.id.clone(),
        status: execution.status,
        reason: execution.reason.clone(),
        repo: execution.repo.clone(),
        git_ref: execution.git_ref.clone(),
        base_commit: execution.base_commit.clone(),
        head_commit: execution.head_commit.clone(),
        branch: execution.branch.clone(),
        num_turns: execution.num_turns,
        usage: execution.usage,
        cost_usd: execution.cost_usd,
        gateway: execution.gateway,
        tool_calls: execution.tool_calls,
        session_id: execution.session_id.clone(),
        result: execution.result.clone(),
        claimed: execution.claimed.clone(),
        left_out: execution.left_out.clone(),
        files_changed: execution.files_changed.clone(),
        diff_path: execution.has_diff.then(|| dir.diff().display().to_string()),
        bundle_path: execution
            .has_bundle
            .then(|| dir.bundle().display().to_string()),
        artifacts: artifacts
            .iter()
            .map(|a| dir.artifacts().join(&a.path).display().to_string())
            .collect(),
        artifact_files: artifacts,
        refused: Vec::new(),
        data_dir: dir.root().display().to_string(),
        events_path: dir.events().display().to_string(),
        image: execution.image.clone(),
        exit_code: execution.exit_code,
        oom_killed: execution.oom_killed,
        started_at: execution.started_at.unwrap_or(execution.created_at),
        finished_at: execution.finished_at.unwrap_or(execution.updated_at),
        duration_ms: execution.duration_ms.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_artifact_paths_are_accepted() {
        for good in ["a.txt", "sub/dir/file", "..dots", "spaced name"] {
            assert!(safe_relative(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./a",
            "a\0b",
            "a/./b/..",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            encode_path(std::path::Path::new("sub dir/a+b?.txt")),
            "sub%20dir/a%2Bb%3F.txt"
        );
    }
}
