//! `agentd gc`: remove what dead supervisors left on the Docker engine.

use std::collections::HashSet;

use clap::Args;

use agentd::engine::Engine;
use agentd::runner::sweep_workspaces;
use agentd::supervisor::instance::SupervisorInstance;

use super::common::{Failure, Global};
use super::migrate::open_store;

/// Remove containers, volumes and sockets left behind by agentd processes that
/// died (a crash, `kill -9`, a reboot). Live supervisors' resources are never
/// touched, unless --all is given.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Remove every agentd-labelled container and volume on the engine, including
    /// those of running supervisors (they will see their executions fail).
    #[arg(long)]
    pub all: bool,

    /// The database whose live executions are never touched (default: agentd.db
    /// in the data directory): work another supervisor took over stays.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

pub async fn gc(global: &Global, args: &GcArgs) -> Result<i32, Failure> {
    let engine = Engine::connect().await?;
    let data_dir = global.data_dir();
    let (removed, live) = if args.all {
        let everything = engine.list_managed(None).await?;
        for error in engine.remove_all(&everything).await {
            eprintln!("agentd: {error}");
        }
        (everything, HashSet::new())
    } else {
        let store = open_store(&data_dir, args.database_url.as_deref()).await?;
        let instance = SupervisorInstance::acquire(global.run_dir())?;
        instance
            .remove_orphans(&engine, Some(store.as_ref()))
            .await?
    };
    let workspaces = sweep_workspaces(&engine, &data_dir, &live).await;
    eprintln!(
        "removed {} containers and {} volumes",
        removed.containers.len(),
        removed.volumes.len()
    );
    eprintln!("released {} workspace filesystems", workspaces.len());
    Ok(0)
}
