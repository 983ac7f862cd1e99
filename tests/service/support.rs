//! The real `agentd serve` binary as a child process, restartable on the same
//! data and run directories, and checks on what it recorded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentd::api::ExecutionView;
use agentd::client::Client;
use agentd::execution::AgentEvent;
use agentd::execution::{Event, EventBody, ExecutionRequest};
use futures::StreamExt;
use serde_json::{Value, json};

pub use crate::common::{bash, done, git, sample_repo};

/// The agent image (built by the test script; `agentd image build` prints it).
pub fn image() -> String {
    std::env::var("AGENTD_TEST_IMAGE").unwrap_or_else(|_| {
        let out = Command::new(env!("CARGO_BIN_EXE_agentd"))
            .args(["image", "build"])
            .output()
            .expect("agentd image build");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// Directories that outlive one server process.
pub struct World {
    pub root: tempfile::TempDir,
    pub repo: PathBuf,
    pub scenario: PathBuf,
}

impl World {
    pub fn new(scenario: Value) -> World {
        let root = tempfile::Builder::new()
            .prefix("sv")
            .tempdir_in("/tmp")
            .unwrap();
        let repo = root.path().join("sample");
        sample_repo(&repo);
        let path = root.path().join("scenario.json");
        std::fs::write(&path, scenario.to_string()).unwrap();
        World {
            root,
            repo,
            scenario: path,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }

    /// Starts `agentd serve` on a random port; returns once it listens.
    pub fn serve(&self, extra: &[&str]) -> Server {
        self.serve_in(&self.data_dir(), &self.run_dir(), extra)
    }

    /// [`World::serve`] with its own data and run directories (a replica).
    pub fn serve_in(&self, data_dir: &Path, run_dir: &Path, extra: &[&str]) -> Server {
        self.serve_with(data_dir, run_dir, extra, &[])
    }

    /// [`World::serve_in`] with more environment variables.
    pub fn serve_with(
        &self,
        data_dir: &Path,
        run_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentd"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--image", &image()])
            .arg("--scripted-model")
            .arg(&self.scenario)
            .args(extra)
            .env("AGENTD_DATA_DIR", data_dir)
            .env("AGENTD_RUN_DIR", run_dir)
            .env("AGENTD_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(url);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("agentd serve did not start:\n{}", log.lock().unwrap()));
        Server {
            child,
            client: Client::new(&url).unwrap(),
            url,
            log,
        }
    }

    pub fn request(&self, prompt: &str) -> ExecutionRequest {
        serde_json::from_value(json!({
            "repo": self.repo, "prompt": prompt, "limits": {"timeout": "3m"}
        }))
        .unwrap()
    }
}

/// A running `agentd serve`.
pub struct Server {
    pub child: Child,
    pub client: Client,
    pub url: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Submits `request`; answers the new execution's id.
    pub async fn submit(&self, request: &ExecutionRequest) -> String {
        self.client.submit(request, None).await.unwrap().id.clone()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the process to leave; returns how long that took.
    pub fn wait_exit(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "agentd serve still running after {limit:?}:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Follows an execution's events on one server in the background.
pub struct Watcher {
    pub events: Arc<Mutex<Vec<Event>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub fn start(client: &Client, id: &str) -> Watcher {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let mut stream = Box::pin(client.events(id, 0));
        let task = tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                sink.lock().unwrap().push(event);
            }
        });
        Watcher { events, task }
    }

    pub fn snapshot(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls the execution (and the watcher's events) until `done` says so.
pub async fn wait_until(
    client: &Client,
    watcher: &Watcher,
    id: &str,
    limit: Duration,
    done: impl Fn(&ExecutionView, &[Event]) -> bool,
) -> ExecutionView {
    let started = Instant::now();
    loop {
        let execution = client.execution(id).await.unwrap();
        if done(&execution, &watcher.snapshot()) {
            return execution;
        }
        assert!(started.elapsed() < limit, "gave up waiting: {execution:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows an execution until an event of `kind` (its JSON "type") was stored.
pub async fn wait_for_event(client: &Client, id: &str, kind: &str, limit: Duration) {
    let watcher = Watcher::start(client, id);
    wait_until(client, &watcher, id, limit, |_, events| has(events, kind)).await;
}

/// Every event of an execution, following the stream to its final status.
pub async fn all_events(client: &Client, id: &str) -> Vec<Event> {
    let mut stream = Box::pin(client.events(id, 0));
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(180), stream.next())
        .await
        .expect("the event stream stalled")
    {
        events.push(event.unwrap());
    }
    events
}

/// The event log is whole: numbered 1..=N, one session, one result, no tool
/// call twice, and it ends with the final status.
pub fn assert_whole_log(events: &[Event]) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "gaps or repeats"
    );
    let sessions = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::Agent(AgentEvent::SessionStarted { .. })))
        .count();
    assert!(sessions <= 1, "{sessions} session_started events");
    let results = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::Agent(AgentEvent::Result(_))))
        .count();
    assert!(results <= 1, "{results} result events");
    let mut calls: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Agent(AgentEvent::ToolCall { id, .. }) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let total = calls.len();
    calls.sort();
    calls.dedup();
    assert_eq!(calls.len(), total, "a tool call was recorded twice");
    assert!(agentd::client::is_final(events.last().expect("events")));
}

/// True once an event of `kind` (its JSON "type") was stored.
pub fn has(events: &[Event], kind: &str) -> bool {
    events
        .iter()
        .any(|e| serde_json::to_value(e).unwrap()["type"] == kind)
}

/// Asserts nothing labelled for `execution` is left on the engine or in the run dir.
pub fn assert_nothing_left(execution: &str, run_dir: &Path) {
    crate::common::assert_nothing_left(execution, Some(run_dir));
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::common::sweep(&self.run_dir(), self.root.path());
        }
        crate::common::assert_run_dir_clean(&self.run_dir());
        crate::common::assert_no_workspaces(self.root.path());
    }
}

/// A new, empty database on the test PostgreSQL server; its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("AGENTD_TEST_POSTGRES_URL")
        .expect("AGENTD_TEST_POSTGRES_URL: the replica test needs PostgreSQL (scripts/postgres)");
    let name = format!("agentd_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}
