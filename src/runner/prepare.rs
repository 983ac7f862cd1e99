//! Preparing a sandbox: mirror, socket, volume, container — each recorded
//! before it is created, so nothing escapes the clean-up.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::agent::claude;
use crate::engine::layers;
use crate::engine::spec::{AGENT_HOME, WORKSPACE};
use crate::engine::workspace::{self, WorkspaceKind};
use crate::engine::{Bind, HardenedSpec};
use crate::execution::{
    AGENT_UID, COLLECT_GID, EventBody, Status, container_name, is_execution_id, volume_name,
};
use crate::gateway::{
    Cassette, CassetteRecorder, CassetteWriter, DailySpend, ReplayModel, Route, TenantRules,
    Upstream,
};
use crate::git::reach::{self, Pinned};
use crate::git::{Mirror, RepoSource, ResolvedRef};
use crate::store::Facts;

use super::Runner;
use super::driver::{self, SOCKET_NAME};
use super::gateway_events::GatewayEvents;
use super::ledger::StoreLedger;
use super::run::{Run, RunError, stop_requested};
use super::sandbox::Sandbox;

/// What a prepared (or re-attached) sandbox consists of.
pub struct Prepared {
    /// The repository's mirror on the host.
    pub mirror: Mirror,
    /// The commit the execution starts from.
    pub resolved: ResolvedRef,
    /// The workspace volume.
    pub volume: String,
    /// The agent container.
    pub container: String,
    /// The agent's standard input (streaming input), attached before start.
    pub input: std::sync::Mutex<Option<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>>>,
}

impl Runner {
    /// Fetches the repository, creates the sandbox and starts the agent.
    #[tracing::instrument(name = "prepare", skip_all)]
    pub(crate) async fn prepare(
        &self,
        run: &Run,
        repo: &str,
        sandbox: &mut Sandbox,
    ) -> Result<Prepared, RunError> {
        tracing::info!("preparing the sandbox");
        let source = RepoSource::parse(repo)?;
        run.recorder
            .emit(EventBody::progress(format!(
                "fetching {}",
                source.location()
            )))
            .await;
        let parent = self.parent_of(run).await?;
        // A follow-up starts from what its parent left in this replica's
        // mirror; only a replica without one fetches.
        let existing = parent.as_ref().and_then(|_| {
            self.mirrors
                .for_tenant(&run.record.tenant_id)
                .existing(&source)
        });
        let mirror = match existing {
            Some(mirror) => mirror,
            None => self.sync_mirror(run, &source).await?,
        };
        let continued = match &parent {
            Some(parent) => Some(self.continue_from(run, parent, &mirror).await?),
            None => None,
        };
        let resolved = match continued.as_ref().and_then(|c| c.start.clone()) {
            Some(start) => start,
            None => {
                let mirror = mirror.clone();
                let git_ref = run.record.request.git_ref.clone();
                let task = tokio::task::spawn_blocking(move || mirror.resolve(git_ref.as_deref()));
                self.interruptible(run, task).await??
            }
        };
        run.recorder
            .emit(EventBody::progress(format!(
                "starting from {} at {}",
                resolved.name,
                &resolved.commit[..12.min(resolved.commit.len())]
            )))
            .await;
        self.store
            .update_facts(
                &run.id,
                self.owner(),
                &Facts {
                    base_commit: Some(resolved.commit.clone()),
                    git_ref: Some(resolved.name.clone()),
                    image: Some(self.image_of(run).to_string()),
                    ..Facts::default()
                },
            )
            .await?;

        let socket_dir = self
            .identity
            .run_dir
            .socket_dir(&self.identity.owner.supervisor, &run.id);
        sandbox.add_socket_dir(socket_dir.clone()).await;
        std::fs::create_dir_all(&socket_dir).map_err(|source| RunError::Io {
            path: socket_dir.display().to_string(),
            source,
        })?;
        self.open_socket(run, sandbox, &socket_dir).await?;

        let volume = volume_name(&run.id);
        sandbox.add_volume(&volume).await;
        let disks = self.config.data_dir.workspaces();
        if self.config.workspace == WorkspaceKind::Limited {
            sandbox.set_disk(workspace::image_path(&disks, &run.id));
        }
        let device = self
            .engine
            .create_workspace(
                self.config.workspace,
                &volume,
                self.labels(&run.id, "workspace"),
                &disks,
                &run.id,
                run.record.request.limits.workspace_bytes,
            )
            .await?;
        if let Some(device) = device {
            self.layer_workspace(run, &mirror, &resolved, &volume, &device, sandbox)
                .await?;
        }
        self.check_runtime(run).await?;
        let policy = super::tool_policy::write_policy(&run.record.policy.tools, &socket_dir)?;
        let resumed = continued.and_then(|c| c.session);
        let session = claude::Session {
            id: Some(run.id.clone()),
            resume: resumed.as_ref().map(|(id, _)| id.clone()),
            streaming: run.record.request.streaming_input,
        };
        let argv = claude::command(
            &run.record.request.prompt,
            &run.record.request.agent,
            &session,
        );
        let mut spec = self
            .spec(
                run,
                &mirror,
                &resolved,
                &volume,
                driver::run_command(argv),
                "agent",
            )
            .bind(Bind {
                host: socket_dir.display().to_string(),
                container: driver::SOCKET_MOUNT.to_string(),
                read_only: true,
            });
        if let Some(policy) = policy {
            spec = spec.bind(policy);
        }
        if let Some((id, bind)) = resumed {
            spec = spec.bind(bind).env("AGENTD_RESUME_SESSION", &id);
        }
        if session.streaming {
            spec = spec.streaming_input().env("AGENTD_STDIN", "1");
        }
        let container = container_name(&run.id);
        sandbox.add_container(&container).await;
        let starting = std::time::Instant::now();
        self.engine.create_container(&container, &spec).await?;
        let input = if session.streaming {
            Some(self.engine.attach_input(&container).await?)
        } else {
            None
        };
        stop_requested(run)?;
        self.engine.start(&container).await?;
        crate::metrics::global().container_started(starting.elapsed());
        self.store
            .transition(&run.id, self.owner(), Status::Running)
            .await?;
        run.recorder
            .emit(EventBody::status(Status::Running, None))
            .await;
        Ok(Prepared {
            mirror,
            resolved,
            volume,
            container,
            input: std::sync::Mutex::new(input),
        })
    }

    /// Layers the new workspace (attached as `device`) over the checkout
    /// template of the base commit, when there is one to be had; otherwise
    /// the sandbox checks the repository out as usual.
    async fn layer_workspace(
        &self,
        run: &Run,
        mirror: &Mirror,
        resolved: &ResolvedRef,
        volume: &str,
        device: &str,
        sandbox: &mut Sandbox,
    ) -> Result<(), RunError> {
        let Some(template) = self
            .template_for(run, mirror, resolved, volume, sandbox)
            .await?
        else {
            return Ok(());
        };
        let image = workspace::image_path(&self.config.data_dir.workspaces(), &run.id);
        match layers::stack(&image, device, &template.image).await {
            Ok(_) => {
                crate::metrics::global().checkout_template(if template.built {
                    "built"
                } else {
                    "reused"
                });
                run.recorder
                    .emit(EventBody::progress(format!(
                        "starting from the checkout template of {}",
                        &resolved.commit[..12.min(resolved.commit.len())]
                    )))
                    .await
            }
            Err(error) => {
                self.template_warning(run, format!("cannot layer the workspace over it: {error}"))
                    .await
            }
        }
        Ok(())
    }

    /// Serves the model socket for this execution in `dir` (again, after a
    /// restart): through the gateway to upstream, or to a replay of a recorded
    /// cassette; recording into this execution's cassette when asked.
    pub(crate) async fn open_socket(
        &self,
        run: &Run,
        sandbox: &mut Sandbox,
        dir: &Path,
    ) -> Result<(), RunError> {
        if let Some(replay) = &run.record.request.replay
            && sandbox.replay_url().is_none()
        {
            if is_execution_id(replay) {
                // Recorded on another replica: its cassette comes from where
                // results are kept.
                self.config
                    .results
                    .fetch(replay, &crate::results::ResultFile::Cassette)
                    .await
                    .map_err(|e| RunError::Replay(format!("fetching the cassette: {e}")))?;
            }
            let cassette = self.cassette_path(replay);
            let loaded = Cassette::load(&cassette)
                .map_err(|e| RunError::Replay(format!("cassette {}: {e}", cassette.display())))?;
            let server = ReplayModel::start(loaded, ([127, 0, 0, 1], 0).into())
                .await
                .map_err(|e| RunError::Replay(format!("cannot start the replay: {e}")))?;
            run.recorder
                .emit(EventBody::progress(format!(
                    "replaying the model from {}",
                    cassette.display()
                )))
                .await;
            sandbox.set_replay(server);
        }
        let upstream = match sandbox.replay_url() {
            Some(url) => Upstream::new(&url, None)?,
            None => self.gateway.upstream().clone(),
        };
        let recorder: Option<Arc<dyn crate::gateway::Recorder>> = if run.record.request.record {
            let writer = CassetteWriter::resume(&run.dir.cassette()).map_err(|e| RunError::Io {
                path: run.dir.cassette().display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
            Some(Arc::new(CassetteRecorder::new(
                Arc::new(writer),
                run.recorder.redactor().clone(),
            )))
        } else {
            None
        };
        let tool_calls = super::tool_policy::open_tool_door(
            &run.record.policy.tools,
            &run.recorder,
            dir,
            sandbox,
        )?;
        let route = Route {
            upstream,
            account: run.account.clone(),
            observer: Arc::new(GatewayEvents::start(
                run.recorder.clone(),
                self.store.clone(),
                run.budget.clone(),
                run.account.clone(),
                run.record.tenant_id.clone(),
            )),
            recorder,
            tenant: self.tenant_rules(run),
            tool_uses: tool_calls.map(|calls| calls as Arc<dyn crate::gateway::ToolUseObserver>),
        };
        sandbox.set_socket(self.gateway.open(&dir.join(SOCKET_NAME), route)?);
        Ok(())
    }

    /// What the tenant's policy asks of the gateway: the models it may use
    /// and its daily spend (the local operator's executions: nothing).
    fn tenant_rules(&self, run: &Run) -> TenantRules {
        let policy = &run.record.policy;
        if policy.operator {
            return TenantRules::default();
        }
        TenantRules {
            models: policy.models.clone(),
            daily: policy.daily_spend_usd.map(|limit_usd| DailySpend {
                limit_usd,
                ledger: Arc::new(StoreLedger {
                    store: self.store.clone(),
                    tenant: run.record.tenant_id.clone(),
                }),
            }),
        }
    }

    /// The cassette a replay names: a recorded execution's id, or (from the
    /// command line) a cassette file.
    fn cassette_path(&self, replay: &str) -> std::path::PathBuf {
        if is_execution_id(replay) {
            self.config.data_dir.execution(replay).cassette()
        } else {
            std::path::PathBuf::from(replay)
        }
    }

    pub(crate) fn labels(&self, id: &str, role: &str) -> HashMap<String, String> {
        self.identity.owner.labels(id, role)
    }

    /// The image the execution asked for (admitted by its policy), else the
    /// runner's.
    /// A tenant's network source, vetted again just before the fetch (DNS
    /// may answer differently than at submission): the fetch is held to the
    /// public addresses found, or refused. The operator's own executions and
    /// tenants the policy lets reach private hosts are not held.
    /// Vets `source` and brings the tenant's mirror of it up to date (the
    /// first fetch, and a replica's fetch again after a takeover).
    pub(super) async fn sync_mirror(
        &self,
        run: &Run,
        source: &RepoSource,
    ) -> Result<Mirror, RunError> {
        let pinned = self.vet_record_source(&run.record, source).await?;
        let mirrors = self.mirrors.for_tenant(&run.record.tenant_id);
        let source = source.clone();
        let task = tokio::task::spawn_blocking(move || mirrors.sync(&source, pinned.as_ref()));
        Ok(self.interruptible(run, task).await??)
    }

    pub(super) async fn vet_record_source(
        &self,
        record: &crate::execution::ExecutionRecord,
        source: &RepoSource,
    ) -> Result<Option<Pinned>, RunError> {
        let policy = &record.policy;
        if policy.operator || policy.allow_private_hosts {
            return Ok(None);
        }
        let Some((scheme, host, port)) = source.endpoint() else {
            return Ok(None);
        };
        let Some(addresses) = reach::public_addresses(&host, port).await else {
            tracing::warn!(%host, port, "refused to fetch: the host resolves to no public address");
            return Err(RunError::SourceRefused);
        };
        let authority = source
            .location()
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap_or(&host)
            .to_string();
        Ok(Some(Pinned {
            scheme,
            authority,
            host,
            port,
            addresses,
        }))
    }

    pub(crate) fn image_of<'a>(&'a self, run: &'a Run) -> &'a str {
        run.record
            .request
            .sandbox
            .image
            .as_deref()
            .unwrap_or(&self.config.image)
    }

    /// The OCI runtime the execution asked for (admitted, or forced, by its
    /// policy), else the runner's; and whether it is gVisor.
    pub(super) fn runtime_of(&self, run: &Run) -> (Option<String>, bool) {
        match run.record.request.sandbox.runtime.as_deref() {
            Some(asked) if self.config.runtime.as_deref() != Some(asked) => (
                Some(asked.to_string()),
                crate::engine::is_gvisor_name(asked),
            ),
            _ => (self.config.runtime.clone(), self.config.gvisor),
        }
    }

    /// A runtime other than the runner's must be registered with the engine
    /// (and, for gVisor, configured as agentd needs it).
    async fn check_runtime(&self, run: &Run) -> Result<(), RunError> {
        if let (Some(asked), _) = self.runtime_of(run)
            && self.config.runtime.as_deref() != Some(asked.as_str())
        {
            self.engine
                .sandbox_runtime(Some(&asked))
                .await
                .map_err(|e| RunError::Sandbox(e.to_string()))?;
        }
        Ok(())
    }

    /// The hardened spec for this execution's containers.
    pub(crate) fn spec(
        &self,
        run: &Run,
        mirror: &Mirror,
        resolved: &ResolvedRef,
        volume: &str,
        cmd: Vec<String>,
        role: &str,
    ) -> HardenedSpec {
        let limits = &run.record.request.limits;
        let llm_url = format!("http://127.0.0.1:{}", driver::LLM_PORT);
        let (runtime, gvisor) = self.runtime_of(run);
        let mut spec = HardenedSpec::new(self.image_of(run), cmd)
            .labels(self.labels(&run.id, role))
            .workspace_volume(volume)
            .bind(Bind {
                host: mirror.path().display().to_string(),
                container: driver::MIRROR_MOUNT.to_string(),
                read_only: true,
            })
            .memory_bytes(limits.memory_bytes)
            .cpus(limits.cpus)
            .pids_limit(limits.pids)
            .runtime(runtime)
            .gvisor(gvisor)
            .working_dir(WORKSPACE)
            .env("HOME", AGENT_HOME)
            .env("ANTHROPIC_BASE_URL", &llm_url)
            .env("ANTHROPIC_API_KEY", driver::PLACEHOLDER_KEY)
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("AGENTD_EXECUTION_ID", &run.id)
            .env("AGENTD_BASE", &resolved.commit)
            .env("AGENTD_BRANCH", &run.record.branch)
            .env("AGENTD_LLM_PORT", &driver::LLM_PORT.to_string())
            .env("AGENTD_ARTIFACTS_DIR", driver::ARTIFACTS_DIR)
            .env("AGENTD_AGENT_UID", &AGENT_UID.to_string())
            .env("AGENTD_COLLECT_GID", &COLLECT_GID.to_string())
            .env(
                "AGENTD_OUTPUT_BUDGET",
                &driver::OUTPUT_BUDGET_BYTES.to_string(),
            )
            .env(
                "AGENTD_OUTPUT_LINES",
                &driver::OUTPUT_BUDGET_LINES.to_string(),
            )
            .env(
                "AGENTD_MAX_FILE_BYTES",
                &self.config.max_file_bytes.to_string(),
            )
            .env("AGENTD_GIT_NAME", self.git_name(&run.record))
            .env("AGENTD_GIT_EMAIL", self.git_email(&run.record))
            .env("AGENTD_COMMIT_MESSAGE", &commit_message(&run.record))
            .env(
                "AGENTD_SESSION_PROJECT",
                &crate::agent::claude::session::project_folder(WORKSPACE),
            );
        if let Some(context) = &run.record.request.context_file {
            spec = spec.env("AGENTD_CONTEXT", context);
        }
        // A workspace layered over a checkout template: its repository is
        // the overlay, already checked out.
        let image = workspace::image_path(&self.config.data_dir.workspaces(), &run.id);
        if layers::is_stacked(&image) {
            spec = spec
                .bind(Bind {
                    host: layers::repo_mount(&image).display().to_string(),
                    container: driver::REPO_MOUNT.to_string(),
                    read_only: false,
                })
                .env("AGENTD_TEMPLATE", "1");
        }
        for (name, value) in run.record.request.hooks.driver_env() {
            spec = spec.env(&name, &value);
        }
        spec
    }
}

impl Runner {
    /// The name the work is committed as: the tenant's policy's, else the server's.
    pub(super) fn git_name<'a>(&'a self, record: &'a crate::execution::ExecutionRecord) -> &'a str {
        record
            .policy
            .git_author_name
            .as_deref()
            .unwrap_or(&self.config.git_name)
    }

    /// The email the work is committed as: the tenant's policy's, else the server's.
    pub(super) fn git_email<'a>(
        &'a self,
        record: &'a crate::execution::ExecutionRecord,
    ) -> &'a str {
        record
            .policy
            .git_author_email
            .as_deref()
            .unwrap_or(&self.config.git_email)
    }
}

/// The work's commit message: the tenant's template with its variables
/// filled in, else agentd's.
fn commit_message(record: &crate::execution::ExecutionRecord) -> String {
    let first_line: String = record
        .request
        .prompt
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("agent changes")
        .trim()
        .chars()
        .take(72)
        .collect();
    let Some(template) = &record.policy.commit_message else {
        return format!("agentd: {first_line}\n\nExecution: {}\n", record.id);
    };
    [
        ("{prompt}", first_line.as_str()),
        ("{execution_id}", record.id.as_str()),
        ("{branch}", record.branch.as_str()),
        ("{tenant}", record.tenant_id.as_str()),
        (
            "{agent_id}",
            record.request.agent_id.as_deref().unwrap_or(""),
        ),
        ("{task_id}", record.request.task_id.as_deref().unwrap_or("")),
    ]
    .iter()
    .fold(template.clone(), |text, (name, value)| {
        text.replace(name, value)
    })
}
