//! `agentd run --server URL`: the same run, driven on a remote supervisor, with
//! the same live output and summary; results are downloaded into the local data
//! directory so the summary's paths are local files.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use agentd::client::Client;
use agentd::execution::{Artifact, RefusedEntry, Summary};
use agentd::execution::{
    EventBody, ExecutionRequest, FollowUpRequest, SupervisorEvent, is_execution_id,
};
use agentd::runner::EventObserver;
use agentd::runner::layout::DataDir;

use super::common::Failure;
use super::render::Terminal;
use super::safe_text::one_line;

/// What to ask of the server.
pub enum Submission<'a> {
    /// A new execution.
    New(&'a ExecutionRequest),
    /// The next step of `parent`'s conversation.
    FollowUp {
        parent: &'a str,
        follow_up: &'a FollowUpRequest,
    },
}

/// Submits to `server`, follows the execution to the end (with
/// `interactive`, passing lines typed on stdin to its agent), and downloads
/// its results.
pub async fn run_remote(
    server: &str,
    token: Option<&str>,
    submission: Submission<'_>,
    data_dir: &DataDir,
    terminal: Arc<Terminal>,
    cancel: CancellationToken,
    interactive: bool,
) -> Result<Summary, Failure> {
    let client = Client::with_token(server, token)?;
    let key = uuid::Uuid::new_v4().to_string();
    let submitted = match submission {
        Submission::New(request) => client.submit(request, Some(&key)).await?,
        Submission::FollowUp { parent, follow_up } => {
            client.follow_up(parent, follow_up, Some(&key)).await?
        }
    };
    let id = submitted.execution.id.clone();
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
    let typing = interactive.then(|| {
        let client = client.clone();
        let id = id.clone();
        tokio::spawn(super::run::read_messages(move |text| {
            let client = client.clone();
            let id = id.clone();
            async move {
                client
                    .message(&id, &text)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }))
    });
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
    if let Some(typing) = typing {
        typing.abort();
    }

    let execution = client.execution(&id).await?.execution;
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
    let summary = Summary::new(&execution, &dir.result_paths(), artifacts, refused);
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
