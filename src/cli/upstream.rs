//! Where the gateway sends model requests: the environment's API, or a scripted
//! model started in-process for demos and tests.

use std::path::{Path, PathBuf};

use clap::Args;

use agentd::gateway::{Gateway, PriceTable, Upstream};
use agentd::scripted::{Scenario, ScriptedModel};

use super::common::Failure;

/// The upstream to use, and the scripted model serving it (keep it alive).
/// Without a scenario, a credential must be configured — unless every
/// execution replays a cassette (`replaying`), which never calls upstream.
pub async fn upstream(
    scenario: Option<&Path>,
    replaying: bool,
) -> Result<(Upstream, Option<ScriptedModel>), Failure> {
    match scenario {
        Some(path) => {
            let scenario = Scenario::from_file(path)?;
            let server = ScriptedModel::start(scenario, ([127, 0, 0, 1], 0).into())
                .await
                .map_err(|e| Failure::fatal(format!("starting the scripted model: {e}")))?;
            eprintln!(
                "agentd: using the scripted model {} (no real model is contacted)",
                path.display()
            );
            let credential = Upstream::from_env()
                .ok()
                .and_then(|u| u.credential().cloned());
            Ok((Upstream::new(&server.base_url(), credential)?, Some(server)))
        }
        None => {
            let upstream = Upstream::from_env()?;
            if upstream.credential().is_none() && !replaying {
                return Err(Failure::usage(
                    "ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) is not set; set it, or play a \
                     scenario with --scripted-model FILE",
                ));
            }
            Ok((upstream, None))
        }
    }
}

/// How the gateway prices and what it redacts.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Price table (TOML, per-million-token prices per model; see
    /// src/gateway/pricing.toml for the format and the built-in values).
    #[arg(long, env = "AGENTD_PRICING", value_name = "FILE")]
    pub pricing: Option<PathBuf>,

    /// A value to remove from every event, log line and cassette (repeatable;
    /// the API key and repository credentials are always removed).
    #[arg(
        long = "redact",
        env = "AGENTD_REDACT",
        value_delimiter = ',',
        value_name = "VALUE"
    )]
    pub redact: Vec<String>,
}

impl GatewayArgs {
    /// The gateway forwarding to `upstream` with these prices.
    pub fn gateway(&self, upstream: Upstream) -> Result<Gateway, Failure> {
        let prices = match &self.pricing {
            Some(path) => PriceTable::from_file(path)
                .map_err(|e| Failure::usage(format!("--pricing {}: {e}", path.display())))?,
            None => PriceTable::builtin(),
        };
        Ok(Gateway::with_prices(upstream, prices)?)
    }
}
