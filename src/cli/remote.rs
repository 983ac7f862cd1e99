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
use agentd::execution::{EventBody, EventObserver, ExecutionRequest, SupervisorEvent};

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
    if execution.has_diff {
        client.download(&execution.links.diff, &dir.diff()).await?;
    }
    if execution.has_bundle {
        client
            .download(&execution.links.bundle, &dir.bundle())
            .await?;
    }
    for entry in client.artifacts(&id).await? {
        if client
            .download(&entry.download, &dir.artifacts().join(&entry.path))
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
