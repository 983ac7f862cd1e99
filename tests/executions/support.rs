//! What every execution test needs: the agent image, a sample repository, a
//! scripted model, the real `agentd` binary, and a check that nothing leaked.

pub use crate::common::{agent_image, bash, docker, done, git, sample_repo};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use agentd::execution::{Event, Summary};
use agentd::scripted::{Scenario, ScriptedModel};
use serde_json::Value;

/// A throwaway world for one execution: data dir, short run dir, sample repo.
pub struct World {
    pub root: tempfile::TempDir,
    pub repo: PathBuf,
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

impl World {
    pub fn new() -> World {
        let root = tempfile::Builder::new()
            .prefix("ad")
            .tempdir_in("/tmp")
            .unwrap();
        let repo = root.path().join("sample");
        sample_repo(&repo);
        World { root, repo }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }

    pub fn scenario(&self, json: Value) -> PathBuf {
        let path = self
            .root
            .path()
            .join(format!("scenario-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        Scenario::from_file(&path).expect("scenario is valid");
        path
    }

    /// An `agentd run` command against the sample repo, with --json.
    pub async fn agentd_run(&self, prompt: &str) -> Command {
        let mut command = self.agentd();
        command
            .arg("run")
            .arg("--repo")
            .arg(&self.repo)
            .arg("--prompt")
            .arg(prompt)
            .arg("--json")
            .arg("--image")
            .arg(agent_image().await)
            // A safety net so a broken test cannot hang the suite; tests may override it.
            .arg("--timeout")
            .arg("4m");
        command
    }

    /// The `agentd` binary in this world: its data and run folders, no
    /// model credential from the test's environment, no input.
    pub fn agentd(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentd"));
        command
            .env("AGENTD_DATA_DIR", self.data_dir())
            .env("AGENTD_RUN_DIR", self.run_dir())
            .env("NO_COLOR", "1")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("ANTHROPIC_AUTH_TOKEN")
            .env_remove("ANTHROPIC_BASE_URL")
            .stdin(Stdio::null());
        command
    }
}

/// What one `agentd run --json` produced.
pub struct Ran {
    pub code: i32,
    pub summary: Summary,
    pub json: Value,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    pub fn events(&self) -> Vec<Event> {
        std::fs::read_to_string(&self.summary.events_path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Every tool result's text, in order.
    pub fn tool_results(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|event| match event.body {
                agentd::execution::EventBody::Agent(
                    agentd::execution::AgentEvent::ToolResult { content, .. },
                ) => Some(content),
                _ => None,
            })
            .collect()
    }
}

/// Runs the command to completion and parses its JSON summary.
pub fn finish(mut command: Command) -> Ran {
    let started = Instant::now();
    let output: Output = command.output().expect("agentd runs");
    parse(output, started.elapsed())
}

pub fn parse(output: Output, elapsed: Duration) -> Ran {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout is not one JSON summary ({e}):\n{stdout}\n--- stderr ---\n{stderr}")
    });
    let summary: Summary = serde_json::from_value(json.clone()).unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        summary,
        json,
        stderr,
        elapsed,
    }
}

/// A scripted model owned by the test, so the test can see what reached upstream.
pub async fn model(json: Value) -> ScriptedModel {
    let scenario = Scenario::from_json(&json.to_string()).expect("scenario");
    ScriptedModel::start(scenario, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// Asserts no container, volume or socket of `execution` is left.
pub fn assert_nothing_left(execution: &str, run_dir: &Path) {
    crate::common::assert_nothing_left(execution, Some(run_dir));
}

/// An OCI runtime the sandbox tests run under.
///
/// To run an attack under both, loop over [`runtimes`] and build the command
/// with [`World::agentd_run_under`]; or write a second test that starts with
/// `let Some(gvisor) = gvisor().await else { return };` so each runtime is its
/// own test. Assert what each runtime really shows where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The engine's default (runc): no `--runtime` flag.
    Default,
    /// gVisor, registered with the engine as [`GVISOR_RUNTIME`].
    Gvisor,
}

/// The name `scripts/test` registers gVisor under (`need_runsc` in scripts/lib.sh).
pub const GVISOR_RUNTIME: &str = "runsc";

impl Runtime {
    /// The `--runtime` value, if any.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Runtime::Default => None,
            Runtime::Gvisor => Some(GVISOR_RUNTIME),
        }
    }
}

/// The runtimes a sandbox test runs under: the engine's default, and gVisor
/// when [`gvisor`] says so.
#[allow(dead_code)]
pub async fn runtimes() -> Vec<Runtime> {
    let mut runtimes = vec![Runtime::Default];
    runtimes.extend(gvisor().await);
    runtimes
}

/// gVisor, when the engine has it registered as agentd needs it (agentd's own
/// start-up check decides). Missing or misconfigured, the test is skipped with
/// a note, unless `AGENTD_TEST_RUNSC=1` (set by `scripts/test` after it
/// registered gVisor): then the test fails, so CI never passes without it.
pub async fn gvisor() -> Option<Runtime> {
    static CHECKED: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    let checked = CHECKED
        .get_or_init(|| async {
            let engine = agentd::engine::Engine::connect()
                .await
                .map_err(|e| e.to_string())?;
            engine
                .sandbox_runtime(Some(GVISOR_RUNTIME))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
    let required = std::env::var("AGENTD_TEST_RUNSC").is_ok_and(|v| v == "1");
    match checked {
        Ok(()) => Some(Runtime::Gvisor),
        Err(error) if required => panic!(
            "AGENTD_TEST_RUNSC=1 but gVisor cannot be used: {error}\n\
             (scripts/test registers it: see need_runsc in scripts/lib.sh)"
        ),
        Err(error) => {
            eprintln!("note: not testing under gVisor: {error}");
            None
        }
    }
}

impl World {
    /// [`World::agentd_run`] with the sandbox under `runtime` (`AGENTD_RUNTIME`
    /// of the test's environment does not apply).
    pub async fn agentd_run_under(&self, prompt: &str, runtime: Runtime) -> Command {
        let mut command = self.agentd_run(prompt).await;
        command.env_remove("AGENTD_RUNTIME");
        if let Some(name) = runtime.flag() {
            command.arg("--runtime").arg(name);
        }
        command
    }
}
