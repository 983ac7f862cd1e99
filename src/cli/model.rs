//! `agentd model serve`: the scripted model as a standalone server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use agentd::scripted::{Scenario, ScriptedModel};

use super::common::Failure;

/// The scripted model (tests, demos, offline work).
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Serve a scenario file as a Messages API endpoint. Point ANTHROPIC_BASE_URL
    /// at it (for agentd or any Messages API client); the client's tool calls run
    /// for real, only the model's answers are scripted. Ctrl-C stops it and prints
    /// the requests it received, one JSON object per line.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The scenario to play (JSON; see examples/scenarios/).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089", value_name = "ADDR")]
    pub listen: SocketAddr,
}

pub async fn model(command: &ModelCommand) -> Result<i32, Failure> {
    let ModelCommand::Serve(args) = command;
    let scenario = Scenario::from_file(&args.scenario)?;
    let usage = scenario.total_usage();
    let turns = scenario.turns.len();
    let server = ScriptedModel::start(scenario, args.listen)
        .await
        .map_err(|e| Failure::fatal(format!("cannot listen on {}: {e}", args.listen)))?;
    eprintln!(
        "scripted model on {} ({turns} turns, {} input / {} output tokens scripted); Ctrl-C to stop",
        server.base_url(),
        usage.input_tokens,
        usage.output_tokens
    );
    let _ = tokio::signal::ctrl_c().await;
    for request in server.requests() {
        println!("{}", serde_json::to_string(&request)?);
    }
    server.shutdown().await;
    Ok(0)
}
