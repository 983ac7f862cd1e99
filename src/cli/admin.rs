//! `agentd admin …`: tenants, keys and the audit log of an agentd server,
//! over its HTTP API with the admin credential.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use agentd::api::admin::NewKey;
use agentd::api::claiming::{ClaimingChange, ClaimingScope};
use agentd::client::Client;

use super::common::Failure;
use super::safe_text::one_line;

/// Manage a server's tenants, keys and audit log (needs the admin credential).
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The agentd server.
    #[arg(
        long,
        env = "AGENTD_SERVER",
        default_value = "http://127.0.0.1:8700",
        value_name = "URL"
    )]
    pub server: String,

    /// File holding the admin credential (its first line); or AGENTD_ADMIN_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Print answers as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: AdminCommand,
}

/// What to manage.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants: create, list, show, disable.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// A tenant's API keys: create (shown once), list, revoke.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Policies: the global one, or a tenant's overrides.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Claiming of queued work: show, pause, resume (on the replica that
    /// answers, or with --cluster on every replica). Running executions carry
    /// on; new ones still queue.
    #[command(subcommand)]
    Claiming(ClaimingCommand),
    /// Read the audit log, newest first.
    Audit(AuditArgs),
}

/// Claiming of queued work, for maintenance.
#[derive(Debug, Subcommand)]
pub enum ClaimingCommand {
    /// Whether the replica that answers, and every replica, claim work.
    Show,
    /// Stop claiming queued work (and, on one replica, taking over abandoned
    /// work) until resumed.
    Pause {
        /// Every replica sharing the database, not only the one that answers.
        #[arg(long)]
        cluster: bool,
    },
    /// Claim queued work again.
    Resume {
        /// Every replica sharing the database, not only the one that answers.
        #[arg(long)]
        cluster: bool,
    },
}

/// Policies (see the README's "Policies" section for the document).
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the global policy, or with --tenant that tenant's overrides and
    /// the policy it runs under.
    Get {
        /// The tenant whose policy to show.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Replace the global policy, or with --tenant a tenant's overrides, with
    /// a JSON document (`-` reads standard input). Applies to the next
    /// submission; audited.
    Set {
        /// The tenant whose overrides to replace.
        #[arg(long)]
        tenant: Option<String>,
        /// The policy document, e.g. {"caps": {"cpus": 2}, "max_concurrent": 4}.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

/// Tenants.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (a name of lowercase letters, digits and dashes).
    Create { name: String },
    /// List every tenant.
    List,
    /// Show one tenant.
    Show { name: String },
    /// Disable a tenant: its keys stop working at once.
    Disable { name: String },
}

/// API keys.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key for a tenant. The key is printed once and never again.
    Create {
        tenant: String,
        /// Let the key expire after this long, e.g. 30d, 12h.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// List a tenant's keys (ids and prefixes, never the keys).
    List { tenant: String },
    /// Revoke a key at once.
    Revoke { tenant: String, id: String },
}

/// Audit log filters.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this action (e.g. execution.create, key.revoke, request.refused).
    #[arg(long)]
    pub action: Option<String>,
    /// Only `ok` or `refused`.
    #[arg(long)]
    pub outcome: Option<String>,
    /// How many events (1–200).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

pub async fn admin(args: &AdminArgs) -> Result<i32, Failure> {
    let token = admin_token(args)?;
    let client = Client::with_token(&args.server, Some(&token))?;
    let print = |value: serde_json::Value, text: String| {
        if args.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    match &args.command {
        AdminCommand::Tenant(TenantCommand::Create { name }) => {
            let tenant = client.create_tenant(name).await?;
            print(
                serde_json::to_value(&tenant)?,
                format!("created tenant {}", one_line(&tenant.id)),
            );
        }
        AdminCommand::Tenant(TenantCommand::List) => {
            let tenants = client.tenants().await?;
            let rows: Vec<String> = tenants
                .items
                .iter()
                .map(|t| {
                    format!(
                        "{}{}",
                        one_line(&t.id),
                        if t.disabled { "  (disabled)" } else { "" }
                    )
                })
                .collect();
            print(serde_json::to_value(&tenants)?, rows.join("\n"));
        }
        AdminCommand::Tenant(TenantCommand::Show { name }) => {
            let tenant = client.tenant(name).await?;
            let text = format!(
                "{}  created {}{}",
                one_line(&tenant.id),
                tenant.created_at,
                if tenant.disabled { "  (disabled)" } else { "" }
            );
            print(serde_json::to_value(&tenant)?, text);
        }
        AdminCommand::Tenant(TenantCommand::Disable { name }) => {
            let tenant = client.disable_tenant(name).await?;
            print(
                serde_json::to_value(&tenant)?,
                format!("disabled tenant {}", one_line(&tenant.id)),
            );
        }
        AdminCommand::Key(KeyCommand::Create { tenant, expires_in }) => {
            let expires_at = expires_in
                .map(|d| chrono::Duration::from_std(d).map(|d| chrono::Utc::now() + d))
                .transpose()
                .map_err(|_| Failure::usage("--expires-in is too long"))?;
            let issued = client.create_key(tenant, &NewKey { expires_at }).await?;
            let text = format!(
                "{}\n(key {} for tenant {}; shown this once: store it now{})",
                issued.key,
                issued.id,
                one_line(tenant),
                issued
                    .expires_at
                    .map(|at| format!("; expires {at}"))
                    .unwrap_or_default()
            );
            print(serde_json::to_value(&issued)?, text);
        }
        AdminCommand::Key(KeyCommand::List { tenant }) => {
            let keys = client.keys(tenant).await?;
            let rows: Vec<String> = keys
                .items
                .iter()
                .map(|k| {
                    format!(
                        "{}  {}…  created {}{}{}",
                        k.id,
                        one_line(&k.prefix),
                        k.created_at,
                        k.revoked_at
                            .map(|at| format!("  revoked {at}"))
                            .unwrap_or_default(),
                        k.last_used_at
                            .map(|at| format!("  last used {at}"))
                            .unwrap_or_default(),
                    )
                })
                .collect();
            print(serde_json::to_value(&keys)?, rows.join("\n"));
        }
        AdminCommand::Key(KeyCommand::Revoke { tenant, id }) => {
            client.revoke_key(tenant, id).await?;
            print(
                serde_json::json!({"revoked": id}),
                format!("revoked key {}", one_line(id)),
            );
        }
        AdminCommand::Policy(PolicyCommand::Get { tenant }) => {
            let view = client.policy(tenant.as_deref()).await?;
            let text = serde_json::to_string_pretty(&view)?;
            print(serde_json::to_value(&view)?, text);
        }
        AdminCommand::Policy(PolicyCommand::Set { tenant, file }) => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(file)
            }
            .map_err(|e| Failure::usage(format!("--file {}: {e}", file.display())))?;
            let policy: agentd::tenancy::Policy = serde_json::from_str(&text)
                .map_err(|e| Failure::usage(format!("--file {}: {e}", file.display())))?;
            let view = client.set_policy(tenant.as_deref(), &policy).await?;
            print(
                serde_json::to_value(&view)?,
                format!("policy of {} stored", one_line(&view.scope)),
            );
        }
        AdminCommand::Claiming(command) => {
            let view = match command {
                ClaimingCommand::Show => client.claiming().await?,
                ClaimingCommand::Pause { cluster } | ClaimingCommand::Resume { cluster } => {
                    let change = ClaimingChange {
                        paused: matches!(command, ClaimingCommand::Pause { .. }),
                        scope: if *cluster {
                            ClaimingScope::Cluster
                        } else {
                            ClaimingScope::Replica
                        },
                    };
                    client.set_claiming(&change).await?
                }
            };
            let state = |paused: bool| if paused { "paused" } else { "claiming" };
            let text = format!(
                "replica {}: {} ({} of {} running)\ncluster: {}{}",
                one_line(&view.replica.id),
                state(view.replica.paused),
                view.replica.running,
                view.replica.max_concurrent,
                state(view.cluster.paused),
                match (&view.cluster.since, &view.cluster.by) {
                    (Some(since), Some(by)) => format!(" since {since} by {}", one_line(by)),
                    _ => String::new(),
                }
            );
            print(serde_json::to_value(&view)?, text);
        }
        AdminCommand::Audit(filters) => {
            let mut query = vec![("limit", filters.limit.to_string())];
            for (name, value) in [
                ("tenant", &filters.tenant),
                ("action", &filters.action),
                ("outcome", &filters.outcome),
            ] {
                if let Some(value) = value {
                    query.push((name, value.clone()));
                }
            }
            let page = client.audit(&query).await?;
            let rows: Vec<String> = page
                .items
                .iter()
                .map(|e| {
                    one_line(&format!(
                        "{} {} {} {} {} {}{}",
                        e.at,
                        e.actor,
                        e.tenant_id.as_deref().unwrap_or("-"),
                        e.action,
                        e.target.as_deref().unwrap_or("-"),
                        e.outcome,
                        e.rule
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ))
                })
                .collect();
            print(serde_json::to_value(&page)?, rows.join("\n"));
        }
    }
    Ok(0)
}

fn admin_token(args: &AdminArgs) -> Result<String, Failure> {
    let token = match &args.admin_token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("--admin-token-file {}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        None => std::env::var("AGENTD_ADMIN_TOKEN").unwrap_or_default(),
    };
    if token.trim().is_empty() {
        return Err(Failure::usage(
            "the admin credential is needed: set AGENTD_ADMIN_TOKEN or --admin-token-file",
        ));
    }
    Ok(token.trim().to_string())
}
