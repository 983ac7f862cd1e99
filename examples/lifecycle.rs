//! Embedding agentd's runner in a Rust program and observing every stage of
//! an execution through the in-process lifecycle ([`agentd::runner::Lifecycle`]).
//!
//! Runs one execution against a local repository with the scripted model (no
//! model API needed) and prints a line before and after each stage, and on a
//! stage's failure:
//!
//! ```sh
//! cargo run --example lifecycle -- REPOSITORY SCENARIO.json IMAGE [--setup CMD]
//! # e.g. with the demo's sample repository and scenario, and the image
//! # `agentd image build` printed:
//! cargo run --example lifecycle -- examples/sample-repo examples/scenarios/demo.json agentd-agent:…
//! ```

use std::sync::Arc;

use agentd::engine::Engine;
use agentd::execution::{ExecutionRecord, ExecutionRequest, Hooks, SetupHook};
use agentd::gateway::{Gateway, Upstream};
use agentd::runner::hub::EventHub;
use agentd::runner::layout::{DataDir, RunDir};
use agentd::runner::{Job, Lifecycle, Runner, RunnerConfig, Silent, Stage};
use agentd::scripted::{Scenario, ScriptedModel};
use agentd::supervisor::admission::admit;
use agentd::supervisor::instance::SupervisorInstance;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

/// Prints what it is told; a real program would meter, trace or notify.
struct Printer;

#[async_trait]
impl Lifecycle for Printer {
    async fn before(&self, stage: Stage, execution: &ExecutionRecord) {
        println!("before {} ({})", stage.as_str(), execution.status);
    }

    async fn after(&self, stage: Stage, execution: &ExecutionRecord) {
        match stage {
            Stage::Finish => println!(
                "after finish: {}{}",
                execution.status,
                execution
                    .reason
                    .as_deref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            ),
            _ => println!("after {}", stage.as_str()),
        }
    }

    async fn on_error(&self, stage: Stage, _execution: &ExecutionRecord, error: &str) {
        println!("error in {}: {error}", stage.as_str());
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, scenario, image, rest @ ..] = args.as_slice() else {
        eprintln!("usage: lifecycle REPOSITORY SCENARIO.json IMAGE [--setup CMD]");
        std::process::exit(2);
    };
    let setup: Vec<SetupHook> = rest
        .chunks(2)
        .filter(|pair| pair.len() == 2 && pair[0] == "--setup")
        .map(|pair| SetupHook {
            command: pair[1].clone(),
            timeout_seconds: 60,
        })
        .collect();
    agentd::wire::install_crypto_provider();
    let root = tempfile::Builder::new().prefix("lc").tempdir_in("/tmp")?;
    let store = agentd::store::open(&format!(
        "sqlite://{}",
        root.path().join("agentd.db").display()
    ))
    .await?;
    store.migrate().await?;
    let model = ScriptedModel::start(
        Scenario::from_file(std::path::Path::new(scenario))?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let instance = Arc::new(SupervisorInstance::acquire(RunDir::new(
        root.path().join("run"),
    ))?);
    let runner = Runner::new(
        Engine::connect().await?,
        Gateway::new(Upstream::new(&model.base_url(), None)?)?,
        instance.identity(),
        store.clone(),
        Arc::new(EventHub::default()),
        RunnerConfig::new(DataDir::new(root.path().join("data")), image.clone()),
    )
    .observe(Arc::new(Printer));

    let request: ExecutionRequest = serde_json::from_value(serde_json::json!({
        "repo": std::fs::canonicalize(repo)?.display().to_string(),
        "prompt": "Do what the scenario says",
    }))?;
    let request = ExecutionRequest {
        hooks: Hooks {
            setup,
            ..Hooks::default()
        },
        ..request
    };
    let admitted = admit(request, agentd::store::DEFAULT_TENANT, None)?;
    let id = admitted.new.id.clone();
    store.create_execution(admitted.new).await?;
    let record = store
        .claim(&id, instance.id(), RunnerConfig::default_lease())
        .await?
        .ok_or("the execution was claimed elsewhere")?;
    let job = Job {
        record,
        repo: admitted.repo,
    };
    let summary = runner
        .run(job, Arc::new(Silent), CancellationToken::new())
        .await;
    println!("status {}", summary.status);
    model.shutdown().await;
    Ok(())
}
