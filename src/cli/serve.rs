//! `agentd serve`: the long-running supervisor with its HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use agentd::api::StreamCaps;
use agentd::api::{ApiConfig, AuthConfig};
use agentd::engine::Engine;
use agentd::results::{Results, ResultsLocation};
use agentd::runner::hub::EventHub;
use agentd::runner::{Runner, RunnerConfig};
use agentd::supervisor::instance::SupervisorInstance;

use super::sandbox::DiskArgs;
use agentd::supervisor::{ShutdownMode, Supervisor, SupervisorConfig};

use super::common::{Failure, Global, check_runtime, use_runtime};
use super::image::{ImageArgs, ensure_image};
use super::migrate::{database_url, open_store};
use super::upstream::{GatewayArgs, upstream};

/// Run the supervisor: an HTTP API (under /v1, OpenAPI at /v1/openapi.json) to
/// submit, watch (Server-Sent Events), cancel and collect executions, a queue in
/// the database that survives restarts, and a cap on concurrent executions.
///
/// On start-up, and every --reconcile-interval, agentd re-attaches executions a
/// previous process left running and removes orphaned containers and volumes.
/// SIGTERM or Ctrl-C: stop taking work, end event streams, and leave within
/// --shutdown-grace; running executions are detached (the next start re-attaches
/// them), with --on-shutdown cancel cancelled, or with --on-shutdown drain left
/// to finish within the grace period and then cancelled (for an engine that
/// stops with agentd, like a dockerd sidecar in its pod).
///
/// Every option can also come from the environment (shown below) or from a TOML
/// file given with --config (keys are the long option names, in a [serve] table
/// or at the top level for global options); flags win over the environment,
/// which wins over the file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "AGENTD_LISTEN",
        default_value = "127.0.0.1:8700",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// File holding the admin credential (its first line). The credential may
    /// also come from AGENTD_ADMIN_TOKEN. Without one, admin routes answer 403,
    /// requests without a key act as the default tenant, and agentd refuses to
    /// listen on anything but a loopback address.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// File holding the secret key (its first line, at least 32 characters;
    /// e.g. `openssl rand -hex 32`) that seals tenants' stored git
    /// credentials at rest. It may also come from AGENTD_SECRET_KEY. Without
    /// one no credential can be registered, and agentd refuses to start when
    /// credentials are already stored. Keep it: credentials sealed with a
    /// lost key must be registered again.
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Database: sqlite://PATH (the default is agentd.db in the data directory) or
    /// postgres://USER:PASSWORD@HOST/DB for production and several replicas.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Where result files (diff, bundle, artifacts, transcript, cassette, event
    /// log) are kept so every replica serves them: `local` (this replica's data
    /// directory), `database` (PostgreSQL, chunked) or `s3://BUCKET[/PREFIX]`
    /// (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP). Default: `database`
    /// with PostgreSQL, `local` with SQLite.
    #[arg(long, env = "AGENTD_RESULTS", value_name = "WHERE")]
    pub results: Option<ResultsLocation>,

    /// Event streams (SSE) open at once, all tenants; beyond it 503 with
    /// Retry-After. Each stream holds at most 256 KiB of unwritten events.
    #[arg(
        long,
        env = "AGENTD_MAX_STREAMS",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub max_streams: usize,

    /// Event streams one tenant may hold open; beyond it 429 with Retry-After.
    #[arg(
        long,
        env = "AGENTD_MAX_STREAMS_PER_TENANT",
        default_value_t = 128,
        value_name = "N"
    )]
    pub max_streams_per_tenant: usize,

    /// Executions running at once on this replica; the rest wait in the
    /// queue, served fairly across tenants.
    #[arg(
        long,
        env = "AGENTD_MAX_CONCURRENT",
        default_value_t = 4,
        value_name = "N"
    )]
    pub max_concurrent: usize,

    /// What happens to running executions on SIGTERM.
    #[arg(long, env = "AGENTD_ON_SHUTDOWN", value_enum, default_value_t = ShutdownMode::Detach)]
    pub on_shutdown: ShutdownMode,

    /// Longest a shutdown may take (in drain mode: how long running executions
    /// may go on; those cancelled after it get 30 s more to be recorded).
    #[arg(long, env = "AGENTD_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// How often to reconcile with the Docker engine (re-attach, remove orphans).
    #[arg(long, env = "AGENTD_RECONCILE_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub reconcile_interval: Duration,

    /// How long a webhook receiver may take to answer one delivery.
    #[arg(long, env = "AGENTD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// Attempts at one webhook delivery before it is dead-lettered (listed,
    /// redeliverable by hand).
    #[arg(long, env = "AGENTD_WEBHOOK_ATTEMPTS", default_value_t = 8)]
    pub webhook_attempts: u32,

    /// The first pause between a webhook delivery's attempts; it doubles each
    /// time (with jitter), up to 10 minutes.
    #[arg(long, env = "AGENTD_WEBHOOK_BACKOFF", default_value = "2s", value_parser = humantime::parse_duration)]
    pub webhook_backoff: Duration,

    /// How long a claim on an execution lasts without a heartbeat (another
    /// replica takes over after that).
    #[arg(long, env = "AGENTD_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease: Duration,

    /// OCI runtime for sandboxes, e.g. runsc (gVisor) where installed.
    /// Default: the engine's default (runc). It is checked against the engine at
    /// start-up: gVisor must be registered with runtimeArgs --network=none and
    /// --host-uds=open (see the README, "Running the sandbox under gVisor").
    #[arg(long, env = "AGENTD_RUNTIME")]
    pub runtime: Option<String>,

    /// Play this scenario file as the model for every execution (demos, tests).
    #[arg(long, env = "AGENTD_SCRIPTED_MODEL", value_name = "FILE")]
    pub scripted_model: Option<PathBuf>,

    #[command(flatten)]
    pub disk: DiskArgs,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub gateway: GatewayArgs,
}

pub async fn serve(global: &Global, args: &ServeArgs) -> Result<i32, Failure> {
    let engine = Engine::connect().await?;
    let runtime = check_runtime(&engine, args.runtime.as_deref()).await?;
    let data_dir = global.data_dir();
    let store = open_store(&data_dir, args.database_url.as_deref()).await?;
    let database = database_url(args.database_url.as_deref(), &data_dir);
    let location = args
        .results
        .clone()
        .unwrap_or_else(|| ResultsLocation::default_for(&database));
    location
        .check(&database)
        .map_err(|e| Failure::fatal(e.to_string()))?;
    let results = Results::open(&location, &data_dir.executions(), &database)
        .await
        .map_err(|e| Failure::fatal(format!("results ({location}): {e}")))?;
    let instance = Arc::new(SupervisorInstance::acquire_persistent(
        global.run_dir(),
        &data_dir.root().join("supervisor-id"),
    )?);
    let image = ensure_image(&engine, &data_dir, &args.image).await?;
    let (upstream, scripted) = upstream(args.scripted_model.as_deref(), false).await?;
    let hub = Arc::new(EventHub::default());
    let mut config = RunnerConfig::new(data_dir.clone(), image);
    use_runtime(&mut config, args.runtime.as_deref(), &runtime);
    config.lease = args.lease;
    config.results = results;
    config.secrets = args.gateway.redact.clone();
    config.secret_key = secret_key(args, store.as_ref()).await?;
    args.disk.apply(&mut config);
    let runner = Arc::new(Runner::new(
        engine,
        args.gateway.gateway(upstream)?,
        instance.identity(),
        store.clone(),
        hub.clone(),
        config,
    ));
    let supervisor = Supervisor::new(
        store,
        hub,
        runner,
        instance,
        data_dir,
        SupervisorConfig {
            max_concurrent: args.max_concurrent.max(1),
            reconcile_interval: args.reconcile_interval,
            webhooks: agentd::supervisor::webhooks::WebhookConfig {
                timeout: args.webhook_timeout,
                max_attempts: args.webhook_attempts.max(1),
                backoff: args.webhook_backoff,
                ..Default::default()
            },
            on_shutdown: args.on_shutdown,
            shutdown_grace: args.shutdown_grace,
            ..SupervisorConfig::default()
        },
    );
    let reconciled = supervisor.start().await?;
    if !reconciled.resumed.is_empty() || reconciled.containers_removed > 0 {
        eprintln!(
            "agentd: resumed {} executions, removed {} orphaned containers and {} volumes",
            reconciled.resumed.len(),
            reconciled.containers_removed,
            reconciled.volumes_removed
        );
    }
    let auth = auth_config(args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::fatal(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener.local_addr()?;
    eprintln!("agentd: listening on http://{address} (API under /v1, OpenAPI at /v1/openapi.json)");
    tracing::info!(%address, "listening");

    let stopping = supervisor.clone();
    let (began, begun) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        wait_for_signal().await;
        eprintln!("agentd: shutting down");
        let _ = began.send(());
        stopping.shutdown().await;
    };
    // Requests in flight get the grace period to finish; a stalled client
    // (a download nobody reads) cannot hold the process beyond it.
    let grace = supervisor.config().shutdown_budget();
    let deadline = async move {
        if begun.await.is_ok() {
            tokio::time::sleep(grace + Duration::from_secs(1)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = agentd::api::serve_with(
            listener,
            supervisor.clone(),
            ApiConfig {
                auth,
                stream_caps: StreamCaps {
                    total: args.max_streams,
                    per_tenant: args.max_streams_per_tenant,
                },
                ..ApiConfig::default()
            },
            shutdown,
        ) => served?,
        _ = deadline => tracing::warn!("requests still open after the grace period; leaving"),
    }
    if let Some(server) = scripted {
        server.shutdown().await;
    }
    Ok(0)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
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
}

/// The key that seals stored credentials, from `--secret-key-file` or
/// `AGENTD_SECRET_KEY`. Stored credentials need it, and the same key that
/// sealed them: agentd refuses to start otherwise (a delivery would fail
/// later, far from the cause).
async fn secret_key(
    args: &ServeArgs,
    store: &dyn agentd::store::Store,
) -> Result<Option<agentd::tenancy::SecretKey>, Failure> {
    let text = match &args.secret_key_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--secret-key-file {}: {e}", path.display())))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        None => std::env::var("AGENTD_SECRET_KEY").ok(),
    }
    .filter(|text| !text.trim().is_empty());
    let key = text
        .map(|text| agentd::tenancy::SecretKey::from_text(&text))
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let stored = store
        .count_credentials()
        .await
        .map_err(|e| Failure::fatal(e.to_string()))?;
    if stored > 0 && key.is_none() {
        return Err(Failure::usage(format!(
            "{stored} stored git credential(s) need the secret key that sealed them: set \
             AGENTD_SECRET_KEY or --secret-key-file"
        )));
    }
    if let Some(key) = &key {
        let fingerprint = key.fingerprint();
        let sealed_with = store
            .credential_key_fingerprints()
            .await
            .map_err(|e| Failure::fatal(e.to_string()))?;
        if let Some(other) = sealed_with.iter().find(|f| **f != fingerprint) {
            return Err(Failure::usage(format!(
                "the secret key (fingerprint {fingerprint}) is not the one that sealed the \
                 stored credentials (fingerprint {other}): set the key they were sealed with"
            )));
        }
    }
    Ok(key)
}

/// How the API authenticates: with the admin credential from
/// `--admin-token-file` or `AGENTD_ADMIN_TOKEN`; without one only on loopback.
fn auth_config(args: &ServeArgs) -> Result<AuthConfig, Failure> {
    let from_file = match &args.admin_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!("--admin-token-file {}: {e}", path.display()))
            })?;
            Some(text.lines().next().unwrap_or_default().trim().to_string())
        }
        None => None,
    };
    let token = from_file
        .or_else(|| std::env::var("AGENTD_ADMIN_TOKEN").ok())
        .map(|token| token.trim().to_string())
        .filter(|token| !token.is_empty());
    match token {
        Some(token) if token.len() < 16 => Err(Failure::usage(
            "the admin credential must be at least 16 characters (use e.g. `openssl rand -hex 32`)",
        )),
        Some(token) => Ok(AuthConfig::with_admin(token)),
        None if args.listen.ip().is_loopback() => {
            eprintln!(
                "agentd: no admin credential (AGENTD_ADMIN_TOKEN or --admin-token-file): admin \
                 routes answer 403 and requests without a key act as the default tenant"
            );
            Ok(AuthConfig::local())
        }
        None => Err(Failure::usage(format!(
            "listening on {} needs an admin credential: set AGENTD_ADMIN_TOKEN or \
             --admin-token-file (without one agentd only listens on a loopback address)",
            args.listen
        ))),
    }
}
