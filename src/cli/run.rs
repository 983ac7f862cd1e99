//! `agentd run`: one execution on the local Docker engine, watched live.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use agentd::engine::Engine;
use agentd::execution::AgentOptions;
use agentd::execution::{
    ExecutionRequest, FollowUpRequest, InputKind, Limits, Lineage, SandboxOptions, Summary,
    is_execution_id, parse_bytes,
};
use agentd::runner::hub::EventHub;
use agentd::runner::sweep_workspaces;
use agentd::runner::{Job, Runner, RunnerConfig};
use agentd::store::DEFAULT_TENANT;
use agentd::supervisor::admission::{self, Admitted};
use agentd::supervisor::instance::SupervisorInstance;

use super::common::{Failure, Global, check_runtime, use_runtime};
use super::image::{ImageArgs, ensure_image};
use super::migrate::open_store;
use super::remote::{Submission, run_remote};
use super::render::Terminal;
use super::sandbox::DiskArgs;
use super::upstream::{GatewayArgs, upstream};

/// Run one execution: clone the repository into a fresh hardened container, run
/// Claude Code on the prompt, stream what it does, and write the diff, a git
/// bundle of branch agent/<id> and the artifacts under the data directory.
///
/// The model is reached through agentd's gateway with the ANTHROPIC_API_KEY (or
/// ANTHROPIC_AUTH_TOKEN) and ANTHROPIC_BASE_URL of this process; the key never
/// enters the container. With --scripted-model, a scenario file plays the model
/// instead (nothing leaves the machine).
///
/// Exit codes: 0 succeeded, 1 failed, 2 bad usage, 3 budget exceeded, 124 timed
/// out, 130 cancelled (Ctrl-C), 137 out of memory.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Repository: a git URL (https://user:token@host/org/repo.git works; the
    /// credentials stay on this host) or a local path.
    #[arg(
        long,
        value_name = "URL|PATH",
        required_unless_present = "continue_from"
    )]
    pub repo: Option<String>,

    /// Continue the conversation of this execution: the agent resumes its
    /// session (the model sees the earlier turns) on its branch, from its
    /// last commit. The repository, ref, limits and options are the
    /// execution's; --model, --max-turns and the tool flags replace its agent
    /// options. Works locally and with --server.
    /// Example: agentd run --continue 0190… --prompt 'also handle the empty case'
    #[arg(
        long = "continue",
        value_name = "EXECUTION_ID",
        conflicts_with_all = ["repo", "git_ref", "branch_template", "agent_id", "task_id"]
    )]
    pub continue_from: Option<String>,

    /// Talk to the agent while it runs: the prompt and every line typed on
    /// stdin reach it as user messages between its turns (streaming input;
    /// the run still ends by itself once the agent reported its result with
    /// nothing pending).
    #[arg(long)]
    pub interactive: bool,

    /// Branch, tag or commit to start from. Default: the repository's default branch.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,

    /// The task for the agent.
    #[arg(
        long,
        value_name = "TEXT",
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    pub prompt: Option<String>,

    /// Read the task from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,

    /// Model, e.g. claude-sonnet-4-5. Default: the CLI's default.
    #[arg(long)]
    pub model: Option<String>,

    /// Stop after this many agent turns (status failed, reason error_max_turns).
    #[arg(long, value_name = "N")]
    pub max_turns: Option<u32>,

    /// End the execution (budget_exceeded) once the model cost passes this many
    /// US dollars, as agentd's gateway meters and prices it.
    #[arg(long, value_name = "USD")]
    pub max_budget_usd: Option<f64>,

    /// A tool rule the agent may use, e.g. 'Bash(git diff *)' (repeatable).
    #[arg(long = "allowed-tool", value_name = "RULE")]
    pub allowed_tools: Vec<String>,

    /// A tool rule the agent may never use, e.g. WebFetch (repeatable).
    #[arg(long = "disallowed-tool", value_name = "RULE")]
    pub disallowed_tools: Vec<String>,

    /// Text appended to the agent's system prompt.
    #[arg(long, value_name = "TEXT")]
    pub append_system_prompt: Option<String>,

    /// Time limit, e.g. 90s, 10m, 1h. The container is killed when it passes.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// CPU quota in cores.
    #[arg(long, default_value_t = 1.0)]
    pub cpus: f64,

    /// Memory limit (no swap), e.g. 512m, 2g.
    #[arg(long, default_value = "2g", value_parser = parse_bytes)]
    pub memory: u64,

    /// Process and thread limit.
    #[arg(long, default_value_t = 256)]
    pub pids: u32,

    /// End the execution (budget_exceeded) once the model has used this many
    /// tokens of every kind, as agentd's gateway counts them.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,

    /// End the execution (budget_exceeded) instead of making more model requests than this.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,

    /// Slow the agent down to this many model requests per minute (429 with retry-after).
    #[arg(long, value_name = "N")]
    pub requests_per_minute: Option<u32>,

    /// Record every model exchange into a cassette (cassette.jsonl beside the
    /// results, secrets redacted) to replay later.
    #[arg(long)]
    pub record: bool,

    /// Play the model's side from a cassette instead of calling a model: a
    /// cassette file, or the id of an execution recorded with --record.
    #[arg(long, value_name = "FILE|ID", conflicts_with = "scripted_model")]
    pub replay: Option<String>,

    /// Your name for the agent doing the work, for --branch-template (`{agent_id}`):
    /// letters, digits, `_` and `-`.
    #[arg(long, value_name = "ID")]
    pub agent_id: Option<String>,

    /// Your name for the task, for --branch-template (`{task_id}`).
    #[arg(long, value_name = "ID")]
    pub task_id: Option<String>,

    /// The branch the work is committed to, from a template of `/`-joined
    /// components and the variables {execution_id}, {short_id}, {tenant},
    /// {agent_id}, {task_id}. Default: agent/{execution_id}. Example:
    /// --agent-id coder --task-id JIRA-42 --branch-template 'agent/{agent_id}-{task_id}'
    #[arg(long, value_name = "TEMPLATE")]
    pub branch_template: Option<String>,

    /// Push the work's branch to the repository's remote when the execution
    /// succeeds. The push runs on the host, never forced (a remote branch of
    /// that name that does not lead to the work is left alone and the
    /// delivery is `rejected`); on a server, with the tenant's stored
    /// credential for the repository (`agentd admin credential add`).
    #[arg(long)]
    pub push: bool,

    /// With --push, also merge the branch into this integration branch on the
    /// remote (fast-forward when possible, else a merge commit; a conflict
    /// leaves it as it was and lists the paths).
    #[arg(long, value_name = "BRANCH", requires = "push")]
    pub merge_into: Option<String>,

    /// A bash command run in the sandbox before the agent, in the repository,
    /// as the agent's user, without network (repeatable; in order). One that
    /// fails ends the execution `setup_failed` before the agent starts.
    /// Example: --setup 'npm ci --offline'
    #[arg(long = "setup", value_name = "COMMAND")]
    pub setup: Vec<String>,

    /// A bash command run in the sandbox after the agent, before its work is
    /// collected (what it changes is part of the work; repeatable).
    /// Example: --teardown 'cargo fmt'
    #[arg(long = "teardown", value_name = "COMMAND")]
    pub teardown: Vec<String>,

    /// What a failing --teardown does: `fail` the execution
    /// (`teardown_failed`) or `warn` and go on.
    #[arg(long, value_name = "POLICY", default_value = "fail", value_parser = ["fail", "warn"])]
    pub teardown_on_failure: String,

    /// Time limit of each --setup and --teardown command, in seconds (1 to 3600).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub hook_timeout: u32,

    /// With --server: how many times the execution may be queued again from
    /// the start when the replica running it is lost with its engine (0 to 3;
    /// 0 ends it `failed`, reason `engine_lost`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// Cap on the artifacts brought back, e.g. 100m.
    #[arg(long, default_value = "1g", value_parser = parse_bytes)]
    pub max_artifacts: u64,

    /// Size of the workspace the agent works in (the repository and anything it
    /// writes under /workspace), e.g. 512m, 10g. A write beyond it fails with
    /// "no space left on device"; ending with it full fails with reason disk_limit.
    #[arg(long, default_value = "4g", value_parser = parse_bytes)]
    pub workspace_size: u64,

    #[command(flatten)]
    pub disk: DiskArgs,

    /// OCI runtime for the sandbox, e.g. runsc (gVisor) where installed.
    /// Default: the engine's default (runc). It is checked against the engine at
    /// start-up: gVisor must be registered with runtimeArgs --network=none and
    /// --host-uds=open (see the README, "Running the sandbox under gVisor").
    #[arg(long, env = "AGENTD_RUNTIME")]
    pub runtime: Option<String>,

    /// Play this scenario file as the model instead of calling a real one.
    #[arg(long, value_name = "FILE")]
    pub scripted_model: Option<PathBuf>,

    /// Text file given to the agent as project instructions (a CLAUDE.md memory),
    /// without adding it to the repository.
    #[arg(long, value_name = "FILE")]
    pub context_file: Option<PathBuf>,

    /// Database recording the execution: sqlite://PATH (default: agentd.db in the
    /// data directory, shared with `agentd serve`) or postgres://….
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Run on the agentd server at this URL (e.g. http://agentd:8700) instead of
    /// the local Docker engine; the output is the same, and the diff, bundle and
    /// artifacts are downloaded into the local data directory.
    #[arg(long, env = "AGENTD_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// With --server: the tenant's API key (`agentd_…`), sent as a bearer token.
    #[arg(long, env = "AGENTD_TOKEN", value_name = "KEY", hide_env_values = true)]
    pub token: Option<String>,

    /// Print the final summary as one JSON object on stdout (events still go to stderr).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub gateway: GatewayArgs,
}

impl RunArgs {
    fn request(&self) -> Result<ExecutionRequest, Failure> {
        let prompt = match (&self.prompt, &self.prompt_file) {
            (Some(prompt), _) => prompt.clone(),
            (None, Some(path)) if path.as_os_str() == "-" => {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Failure::usage(format!("reading the prompt from stdin: {e}")))?
            }
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--prompt-file {}: {e}", path.display())))?,
            (None, None) => return Err(Failure::usage("--prompt or --prompt-file is required")),
        };
        let request = ExecutionRequest {
            repo: self.repo.clone().unwrap_or_default(),
            git_ref: self.git_ref.clone(),
            prompt,
            context_file: match &self.context_file {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(format!("--context-file {}: {e}", path.display()))
                })?),
                None => None,
            },
            agent: AgentOptions {
                model: self.model.clone(),
                max_turns: self.max_turns,
                max_budget_usd: self.max_budget_usd,
                allowed_tools: self.allowed_tools.clone(),
                disallowed_tools: self.disallowed_tools.clone(),
                append_system_prompt: self.append_system_prompt.clone(),
            },
            sandbox: SandboxOptions {
                image: None,
                runtime: self.runtime.clone(),
            },
            limits: Limits {
                timeout: self.timeout,
                cpus: self.cpus,
                memory_bytes: self.memory,
                pids: self.pids,
                max_artifact_bytes: self.max_artifacts,
                workspace_bytes: self.workspace_size,
                max_tokens: self.max_tokens,
                max_requests: self.max_requests,
                requests_per_minute: self.requests_per_minute,
            },
            record: self.record,
            replay: self.replay.clone(),
            agent_id: self.agent_id.clone(),
            task_id: self.task_id.clone(),
            branch_template: self.branch_template.clone(),
            push: self.push,
            merge_into: self.merge_into.clone(),
            hooks: agentd::execution::Hooks {
                setup: self
                    .setup
                    .iter()
                    .map(|command| agentd::execution::SetupHook {
                        command: command.clone(),
                        timeout_seconds: self.hook_timeout,
                    })
                    .collect(),
                teardown: self
                    .teardown
                    .iter()
                    .map(|command| agentd::execution::TeardownHook {
                        command: command.clone(),
                        timeout_seconds: self.hook_timeout,
                        on_failure: if self.teardown_on_failure == "warn" {
                            agentd::execution::OnFailure::Warn
                        } else {
                            agentd::execution::OnFailure::Fail
                        },
                    })
                    .collect(),
            },
            retries: self.retries,
            streaming_input: self.interactive,
        };
        Ok(request)
    }

    /// The follow-up `--continue` asks for: this run's prompt; agent options
    /// only when one was given on the command line.
    fn follow_up(&self, request: &ExecutionRequest) -> FollowUpRequest {
        let agent_given = self.model.is_some()
            || self.max_turns.is_some()
            || self.max_budget_usd.is_some()
            || !self.allowed_tools.is_empty()
            || !self.disallowed_tools.is_empty()
            || self.append_system_prompt.is_some();
        FollowUpRequest {
            prompt: request.prompt.clone(),
            agent: agent_given.then(|| request.agent.clone()),
            limits: None,
            context_file: request.context_file.clone(),
            hooks: (!request.hooks.is_empty()).then(|| request.hooks.clone()),
            push: self.push.then_some(true),
            merge_into: request.merge_into.clone(),
            record: request.record,
            replay: request.replay.clone(),
            streaming_input: request.streaming_input,
            retries: request.retries,
        }
    }
}

pub async fn run(global: &Global, args: &RunArgs) -> Result<i32, Failure> {
    let request = args.request()?;
    let follow_up = match &args.continue_from {
        Some(parent) if !is_execution_id(parent) => {
            return Err(Failure::usage(format!(
                "--continue: `{parent}` is not an execution id"
            )));
        }
        Some(parent) => Some((parent.clone(), args.follow_up(&request))),
        None => None,
    };
    // The one admission every entry takes: a request it refuses stops here,
    // whether it runs here or on a server (which admits it again). A
    // follow-up is admitted once its parent's request is known.
    let admitted = match &follow_up {
        None => Some(
            admission::admit(request.clone(), DEFAULT_TENANT, None)
                .map_err(|invalid| Failure::usage(format!("invalid {invalid}")))?,
        ),
        Some(_) => None,
    };
    let terminal = Arc::new(Terminal::stderr());
    if let Some(server) = &args.server {
        let cancel = CancellationToken::new();
        let interrupts = tokio::spawn(watch_interrupts(cancel.clone()));
        let submission = match &follow_up {
            Some((parent, follow_up)) => Submission::FollowUp { parent, follow_up },
            None => Submission::New(&request),
        };
        let summary = run_remote(
            server,
            args.token.as_deref(),
            submission,
            &global.data_dir(),
            terminal.clone(),
            cancel,
            args.interactive,
        )
        .await;
        interrupts.abort();
        return finish(args, &terminal, summary?);
    }
    let (upstream, scripted) =
        upstream(args.scripted_model.as_deref(), args.replay.is_some()).await?;

    let engine = Engine::connect().await?;
    let runtime = check_runtime(&engine, args.runtime.as_deref()).await?;
    let data_dir = global.data_dir();
    let store = open_store(&data_dir, args.database_url.as_deref()).await?;
    let instance = Arc::new(SupervisorInstance::acquire(global.run_dir())?);
    let (orphans, live) = instance
        .remove_orphans(&engine, Some(store.as_ref()))
        .await?;
    sweep_workspaces(&engine, &data_dir, &live).await;
    if !orphans.is_empty() {
        eprintln!(
            "agentd: removed {} containers and {} volumes left by a dead agentd",
            orphans.containers.len(),
            orphans.volumes.len()
        );
    }
    let image = ensure_image(&engine, &data_dir, &args.image).await?;

    let mut config = RunnerConfig::new(data_dir, image);
    use_runtime(&mut config, args.runtime.as_deref(), &runtime);
    config.secrets = args.gateway.redact.clone();
    args.disk.apply(&mut config);
    let owner = instance.id().to_string();
    let hub = Arc::new(EventHub::default());
    let runner = Arc::new(Runner::new(
        engine,
        args.gateway.gateway(upstream)?,
        instance.identity(),
        store.clone(),
        hub,
        config,
    ));

    let Admitted { new, repo } = match (admitted, follow_up) {
        (Some(admitted), _) => admitted,
        (None, Some((parent, follow_up))) => {
            let parent = store
                .get_execution(None, &parent)
                .await?
                .ok_or_else(|| Failure::usage(format!("--continue: no execution {parent} here")))?;
            let lineage = Lineage::of(&parent);
            let request = follow_up.onto(&parent.request);
            let mut admitted = admission::admit(request, &parent.tenant_id, None)
                .map_err(|invalid| Failure::usage(format!("invalid {invalid}")))?;
            admitted.new.lineage = Some(lineage);
            admitted
        }
        (None, None) => unreachable!("a request is admitted or follows up"),
    };
    let id = new.id.clone();
    store.create_execution(new).await?;
    let record = store
        .claim(&id, &owner, RunnerConfig::default_lease())
        .await?
        .ok_or_else(|| {
            Failure::fatal(format!(
                "execution {id} could not be claimed: another supervisor took it, or the execution it continues is still running"
            ))
        })?;
    eprintln!("agentd: execution {id}");
    let cancel = CancellationToken::new();
    let interrupts = tokio::spawn(watch_interrupts(cancel.clone()));
    let typing = args.interactive.then(|| {
        let store = store.clone();
        let runner = runner.clone();
        let id = id.clone();
        tokio::spawn(read_messages(move |text| {
            let store = store.clone();
            let runner = runner.clone();
            let id = id.clone();
            async move {
                store
                    .add_input(&id, InputKind::Message, &text, "operator")
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the agent no longer reads input")?;
                runner.nudge_input(&id);
                Ok(())
            }
        }))
    });
    let job = Job { record, repo };
    let summary = runner.run(job, terminal.clone(), cancel).await;
    interrupts.abort();
    if let Some(typing) = typing {
        typing.abort();
    }
    if let Some(server) = scripted {
        server.shutdown().await;
    }
    finish(args, &terminal, summary)
}

/// Reads lines typed on stdin and hands each non-blank one to `send` (a
/// message to the running agent), until stdin ends.
pub(super) async fn read_messages<F, Fut>(send: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        if let Err(error) = send(line).await {
            eprintln!(
                "agentd: the message was not delivered: {}",
                super::safe_text::one_line(&error)
            );
        }
    }
}

/// Prints the summary (and with --json, the JSON) and picks the exit code.
fn finish(args: &RunArgs, terminal: &Terminal, summary: Summary) -> Result<i32, Failure> {
    terminal.summary(&summary);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(summary.status.exit_code())
}

/// First Ctrl-C (or SIGTERM) cancels the execution cleanly; later ones only say
/// that clean-up is under way, so nothing is leaked by an impatient user.
async fn watch_interrupts(cancel: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        let terminate = async {
            match term.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
        if cancel.is_cancelled() {
            eprintln!("agentd: still removing the sandbox, one moment");
        } else {
            eprintln!("agentd: cancelling (the sandbox is being removed)");
            cancel.cancel();
        }
    }
}
