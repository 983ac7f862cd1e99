//! A real agentd service per test: SQLite store in a temp folder, the real
//! Docker engine and agent image, a scripted model of the test's choosing, the
//! supervisor, and the HTTP API on 127.0.0.1:0.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentd::engine::Engine;
use agentd::gateway::{Gateway, Upstream};
use agentd::runner::hub::EventHub;
use agentd::runner::layout::{DataDir, RunDir};
use agentd::runner::{Runner, RunnerConfig};
use agentd::scripted::{Scenario, ScriptedModel};
use agentd::supervisor::instance::SupervisorInstance;
use agentd::supervisor::{ShutdownMode, Supervisor, SupervisorConfig};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use crate::common::{agent_image, docker, git, sample_repo};

/// One running service and what a test needs to drive it.
pub struct App {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub client: reqwest::Client,
    pub supervisor: Arc<Supervisor>,
    pub model: ScriptedModel,
    /// The sample repository executions run against.
    pub repo: PathBuf,
    root: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    created: Mutex<Vec<String>>,
}

/// A service whose model plays `scenario`, running at most `max_concurrent`
/// executions (0: none ever start, for tests of the API alone).
pub async fn spawn_app(scenario: Value, max_concurrent: usize) -> App {
    spawn_app_with(scenario, max_concurrent, agentd::api::AuthConfig::local()).await
}

/// [`spawn_app`] authenticating with `auth`.
pub async fn spawn_app_with(
    scenario: Value,
    max_concurrent: usize,
    auth: agentd::api::AuthConfig,
) -> App {
    let config = agentd::api::ApiConfig {
        auth,
        ..agentd::api::ApiConfig::default()
    };
    spawn_app_configured(scenario, max_concurrent, config).await
}

/// [`spawn_app`] with the API's `config`.
pub async fn spawn_app_configured(
    scenario: Value,
    max_concurrent: usize,
    config: agentd::api::ApiConfig,
) -> App {
    spawn_app_tuned(scenario, max_concurrent, config, |_, _| {}).await
}

/// [`spawn_app_configured`] with the runner's and the supervisor's
/// configurations changed by `tune`.
pub async fn spawn_app_tuned(
    scenario: Value,
    max_concurrent: usize,
    config: agentd::api::ApiConfig,
    tune: impl FnOnce(&mut RunnerConfig, &mut SupervisorConfig),
) -> App {
    agentd::wire::install_crypto_provider();
    let root = tempfile::Builder::new()
        .prefix("aa")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = root.path().join("sample");
    sample_repo(&repo);

    let store = agentd::store::open(&format!(
        "sqlite://{}",
        root.path().join("agentd.db").display()
    ))
    .await
    .expect("store");
    store.migrate().await.expect("migrations");
    let model = ScriptedModel::start(
        Scenario::from_json(&scenario.to_string()).expect("scenario"),
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let engine = Engine::connect().await.expect("docker");
    let instance =
        Arc::new(SupervisorInstance::acquire(RunDir::new(root.path().join("run"))).unwrap());
    let gateway = Gateway::new(Upstream::new(&model.base_url(), None).unwrap()).unwrap();
    let hub = Arc::new(EventHub::default());
    let data = DataDir::new(root.path().join("data"));
    let mut runner_config = RunnerConfig::new(data.clone(), agent_image().await);
    let mut supervisor_config = SupervisorConfig {
        max_concurrent,
        on_shutdown: ShutdownMode::Cancel,
        ..SupervisorConfig::default()
    };
    tune(&mut runner_config, &mut supervisor_config);
    let runner = Runner::new(
        engine,
        gateway,
        instance.identity(),
        store.clone(),
        hub.clone(),
        runner_config,
    );
    let supervisor = Supervisor::new(
        store,
        hub,
        Arc::new(runner),
        instance,
        data,
        supervisor_config,
    );
    supervisor.start().await.expect("supervisor starts");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(agentd::api::serve_with(
        listener,
        supervisor.clone(),
        config,
        async {
            let _ = stopped.await;
        },
    ));
    App {
        base,
        client: reqwest::Client::new(),
        supervisor,
        model,
        repo,
        root,
        shutdown: Some(shutdown),
        server: Some(server),
        created: Mutex::new(Vec::new()),
    }
}

/// A response read whole: status, headers, body parsed as JSON when it is JSON.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the API's error shape with this status, code and field.
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert_eq!(body["error"]["field"].as_str(), field, "{body}");
        assert!(
            self.header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "{:?}",
            self.headers
        );
    }
}

pub async fn read(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        bytes: response.bytes().await.unwrap().to_vec(),
    }
}

impl App {
    /// Remembers an execution this test made, for the leak check at the end.
    pub fn created(&self, id: &str) {
        self.created.lock().unwrap().push(id.to_string());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Answer {
        read(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value, key: Option<&str>) -> Answer {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let answer = read(request.send().await.unwrap()).await;
        if answer.status == 202
            && let Some(id) = answer.json()["id"].as_str()
        {
            self.created.lock().unwrap().push(id.to_string());
        }
        answer
    }

    /// A request against the sample repository.
    pub fn request(&self, prompt: &str) -> Value {
        json!({
            "repo": self.repo.display().to_string(),
            "prompt": prompt,
            "limits": {"timeout": "4m"},
        })
    }

    /// Submits and returns the new execution's JSON.
    pub async fn submit(&self, prompt: &str) -> Value {
        let answer = self
            .post_json("/v1/executions", &self.request(prompt), None)
            .await;
        assert_eq!(answer.status, 202, "{}", answer.json());
        answer.json()
    }

    pub async fn execution(&self, id: &str) -> Value {
        let answer = self.get(&format!("/v1/executions/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.json());
        answer.json()
    }

    /// Polls until the execution satisfies `done`, or fails after `within`.
    pub async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let execution = self.execution(id).await;
            if done(&execution) {
                return execution;
            }
            assert!(
                started.elapsed() < within,
                "execution {id} did not get there in {within:?}: {execution}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the execution is final (3 min at most).
    pub async fn wait_final(&self, id: &str) -> Value {
        self.wait_for(id, Duration::from_secs(180), is_final).await
    }

    /// Reads an execution's SSE stream to its end with a real SSE client.
    pub async fn events(&self, id: &str, last_event_id: Option<&str>, query: &str) -> Vec<Sse> {
        let mut request = self
            .client
            .get(self.url(&format!("/v1/executions/{id}/events{query}")))
            .header("accept", "text/event-stream");
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"))
        );
        let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        let mut got = Vec::new();
        let read_all = async {
            while let Some(event) = stream.next().await {
                let event = event.expect("a well-formed SSE stream");
                got.push(Sse {
                    id: event.id,
                    event: event.event,
                    data: serde_json::from_str(&event.data).expect("JSON data"),
                });
            }
        };
        tokio::time::timeout(Duration::from_secs(180), read_all)
            .await
            .expect("the event stream ends");
        got
    }

    /// Stops the server and the supervisor, then checks nothing of any
    /// execution this test created is left on the engine.
    pub async fn finish(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the server stops")
                .unwrap()
                .unwrap();
        }
        self.supervisor.shutdown().await;
        let ids = self.created.lock().unwrap().clone();
        for id in ids {
            assert_nothing_left(&id);
        }
        crate::common::assert_run_dir_clean(&self.run_dir());
        crate::common::assert_no_workspaces(self.root.path());
    }

    /// The test world's folder (data, run directory, repository).
    pub fn root(&self) -> PathBuf {
        self.root.path().to_path_buf()
    }

    /// The run directory (sockets), for leak checks.
    pub fn run_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }
}

/// A test that failed (or gave up on the service) before [`App::finish`]:
/// the supervisor is stopped from taking more work and whatever it had
/// created is swept, so the failure leaves nothing on the engine.
impl Drop for App {
    fn drop(&mut self) {
        if self.server.is_none() {
            return;
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Cancel what runs and let it clean up after itself (cancel mode), so
        // no runner is left half-way through creating something; then sweep
        // what remains. Removing a sandbox under a live runner only makes it
        // collect, creating more.
        let supervisor = self.supervisor.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(supervisor.shutdown()));
            }
            _ => supervisor.stop_taking_work(),
        }
        crate::common::sweep(&self.run_dir(), self.root.path());
    }
}

/// One SSE message as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: String,
    pub event: String,
    pub data: Value,
}

pub fn is_final(execution: &Value) -> bool {
    execution["status"]
        .as_str()
        .is_some_and(crate::common::is_final_status)
}

/// Asserts no container or volume labelled with the execution remains.
pub fn assert_nothing_left(id: &str) {
    crate::common::assert_nothing_left(id, None);
}

/// A scenario that writes a file, hands back an artifact, and finishes: 30
/// input and 15 output tokens in all.
pub fn writing_scenario() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "turns": [
            {"content": [
                {"type": "text", "text": "Writing a note."},
                {"type": "tool_use", "name": "Write", "input": {
                    "file_path": "/workspace/repo/notes/hello.txt", "content": "hello from the agent\n"}}],
             "usage": {"input_tokens": 10, "output_tokens": 5}},
            {"content": [
                {"type": "tool_use", "name": "Bash", "input": {
                    "command": "mkdir -p \"$AGENTD_ARTIFACTS_DIR/reports\" && printf 'report body\\n' > \"$AGENTD_ARTIFACTS_DIR/reports/summary.txt\"",
                    "description": "write a report"}}],
             "usage": {"input_tokens": 10, "output_tokens": 5}},
            {"content": [{"type": "text", "text": "Added notes/hello.txt."}],
             "usage": {"input_tokens": 10, "output_tokens": 5}}
        ]
    })
}

/// A scenario whose first turn blocks in Bash for `seconds`. (The CLI refuses
/// a plain `sleep N`, so it waits on a file that never changes.)
pub fn sleeping_scenario(seconds: u32) -> Value {
    json!({
        "turns": [
            {"content": [{"type": "tool_use", "name": "Bash", "input": {
                "command": format!("timeout {seconds} tail -f /dev/null; echo woke"),
                "description": "wait", "timeout": 600000}}],
             "usage": {"input_tokens": 10, "output_tokens": 5}},
            {"content": [{"type": "text", "text": "Slept."}],
             "usage": {"input_tokens": 10, "output_tokens": 5}}
        ]
    })
}
