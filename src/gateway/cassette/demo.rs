//! The shipped demo cassette (examples/cassettes/demo.jsonl), made and checked
//! with the real Claude Code CLI. Ignored by default: it needs the CLI binary
//! and writes to /workspace/repo (the paths examples/scenarios/demo.json uses).
//!
//! Check: `AGENTD_CLAUDE_BIN=/path/to/claude cargo test --lib
//! gateway::cassette::demo -- --ignored --test-threads=1`; add
//! `AGENTD_RECORD_DEMO=1` to record the cassette again first (after a CLI bump).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures::StreamExt;

use super::{Cassette, CassetteWriter, ReplayModel};
use crate::scripted::{Scenario, ScriptedModel};

const REPO: &str = "/workspace/repo";
/// A key the cassette must not contain (the CLI sends it as `x-api-key`).
const KEY: &str = "sk-ant-agentd-demo-not-a-key";
const DEFAULT_CLAUDE: &str = "/tmp/wh/claude_agent_sdk/_bundled/claude";
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn git(args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(REPO)
        .env("GIT_AUTHOR_NAME", "agentd demo")
        .env("GIT_AUTHOR_EMAIL", "demo@agentd.invalid")
        .env("GIT_COMMITTER_NAME", "agentd demo")
        .env("GIT_COMMITTER_EMAIL", "demo@agentd.invalid")
        .env("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh /workspace/repo holding examples/sample-repo in one commit, the
/// same commit every time; returns its id.
fn fresh_repo() -> String {
    if Path::new(REPO).exists() {
        let ours = Command::new("git")
            .args(["-C", REPO, "log", "--format=%s", "main"])
            .output()
            .is_ok_and(|out| out.stdout == b"sample project\n");
        assert!(
            ours,
            "{REPO} exists and was not made by this test: not removing it"
        );
        std::fs::remove_dir_all(REPO).unwrap();
    }
    std::fs::create_dir_all(REPO).unwrap();
    for entry in std::fs::read_dir(examples().join("sample-repo")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), Path::new(REPO).join(entry.file_name())).unwrap();
    }
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "sample project"]);
    git(&["rev-parse", "HEAD"])
}

/// Runs the CLI in /workspace/repo against `base_url`; the diff it left.
async fn run_cli(base_url: &str) -> String {
    let claude = std::env::var("AGENTD_CLAUDE_BIN").unwrap_or_else(|_| DEFAULT_CLAUDE.into());
    let home = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(claude)
        .args([
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "--",
            "add a greeting",
        ])
        .current_dir(REPO)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("IS_SANDBOX", "1")
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), child)
        .await
        .expect("the CLI finishes within 3 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .rev()
        .find(|line| line.contains(r#""type":"result""#))
        .unwrap_or_else(|| panic!("no result line: {output:?}"));
    assert!(result.contains(r#""subtype":"success""#), "{result}");
    git(&["add", "-A"]);
    git(&["diff", "--cached"])
}

struct Proxy {
    upstream: String,
    writer: CassetteWriter,
    client: reqwest::Client,
}

/// A reverse proxy to `upstream` that records every exchange to `cassette`.
async fn recording_proxy(upstream: String, cassette: &Path) -> (String, Arc<Proxy>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = Arc::new(Proxy {
        upstream,
        writer: CassetteWriter::create(cassette).unwrap(),
        client: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().fallback(relay).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, proxy)
}

async fn relay(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let path = parts.uri.path_and_query().unwrap().as_str().to_string();
    let mut recorder = proxy
        .writer
        .recorder(parts.method.as_str(), &path, &parts.headers, &body);
    let mut upstream = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream));
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    let response = upstream.body(body).send().await.unwrap();
    recorder.on_response(response.status().as_u16(), response.headers());
    let mut answer = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            answer = answer.header(name, value);
        }
    }
    let (sender, receiver) = futures::channel::mpsc::unbounded();
    let mut stream = response.bytes_stream();
    tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    recorder.on_chunk(&chunk);
                    let _ = sender.unbounded_send(Ok::<_, std::io::Error>(chunk));
                }
                Err(error) => {
                    recorder.on_error(&error.to_string());
                    let _ = sender.unbounded_send(Err(std::io::Error::other(error)));
                    break;
                }
            }
        }
        proxy.writer.append(&recorder.finish()).unwrap();
    });
    answer.body(Body::from_stream(receiver)).unwrap()
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and writes /workspace/repo"]
async fn demo_cassette_replays_the_scenario_edits() {
    let cassette_path = examples().join("cassettes").join("demo.jsonl");
    let scenario = Scenario::from_file(&examples().join("scenarios").join("demo.json")).unwrap();
    let scripted = ScriptedModel::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let commit = fresh_repo();
    let scripted_diff = if std::env::var_os("AGENTD_RECORD_DEMO").is_some() {
        let _ = std::fs::remove_file(&cassette_path);
        std::fs::create_dir_all(cassette_path.parent().unwrap()).unwrap();
        let (url, _proxy) = recording_proxy(scripted.base_url(), &cassette_path).await;
        run_cli(&url).await
    } else {
        run_cli(&scripted.base_url()).await
    };
    assert!(scripted_diff.contains("GREETING.md"), "{scripted_diff}");
    assert!(
        scripted_diff.contains("See [GREETING.md]"),
        "{scripted_diff}"
    );

    let cassette = Cassette::load(&cassette_path).unwrap();
    cassette.assert_free_of(&[KEY]).unwrap();
    let mut diffs = Vec::new();
    for _ in 0..2 {
        assert_eq!(fresh_repo(), commit);
        let replay = ReplayModel::start(cassette.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        diffs.push(run_cli(&replay.base_url()).await);
        assert_eq!(replay.misses(), Vec::<String>::new());
        assert_eq!(replay.unplayed(), Vec::<u64>::new());
        replay.shutdown().await;
    }
    assert_eq!(
        diffs[0], scripted_diff,
        "replay makes the scripted run's edits"
    );
    assert_eq!(diffs[1], diffs[0], "two replays make the same diff");
    scripted.shutdown().await;
}
