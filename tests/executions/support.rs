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
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentd"));
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
            .arg("4m")
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
                agentd::execution::EventBody::Agent(agentd::agent::AgentEvent::ToolResult {
                    content,
                    ..
                }) => Some(content),
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
