//! `agentd migrate`, and opening the database the way every verb does.

use std::sync::Arc;

use clap::Args;

use agentd::runner::layout::DataDir;
use agentd::store::Store;

use super::common::{Failure, Global};

/// Database options of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database: sqlite://PATH (default: agentd.db in the data directory) or postgres://….
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

/// The default database: SQLite in the data directory.
pub fn database_url(explicit: Option<&str>, data_dir: &DataDir) -> String {
    match explicit {
        Some(url) => url.to_string(),
        None => format!("sqlite://{}", data_dir.root().join("agentd.db").display()),
    }
}

/// Creates the data directory, opens the database (`explicit` or the default)
/// and brings its schema up to date.
pub async fn open_store(
    data_dir: &DataDir,
    explicit: Option<&str>,
) -> Result<Arc<dyn Store>, Failure> {
    std::fs::create_dir_all(data_dir.root()).map_err(|e| {
        Failure::fatal(format!("data directory {}: {e}", data_dir.root().display()))
    })?;
    let store = agentd::store::open(&database_url(explicit, data_dir)).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn migrate(global: &Global, args: &MigrateArgs) -> Result<i32, Failure> {
    open_store(&global.data_dir(), args.database_url.as_deref()).await?;
    eprintln!("agentd: database is up to date");
    Ok(0)
}
