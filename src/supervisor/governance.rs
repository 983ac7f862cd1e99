//! A tenant's request under the admins' policy: the effective policy is read
//! from the store (so a change applies to the next submission, on every
//! replica), applied to the request's text, and then the host answers what
//! the text cannot — where a path really leads, where a host name points,
//! what the tenant has spent today. Every refusal of a source carries the
//! same words whatever the host found, so the answers are no oracle.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::execution::ExecutionRequest;
use crate::git::reach;
use crate::store::{Store, StoreError};
use crate::tenancy::{
    Applied, Policy, PolicyRefusal, Scope, ServerSandbox, SourceCheck, apply, day_start,
};

/// What can stop a governed admission.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// The policy does not admit the request.
    #[error(transparent)]
    Refused(#[from] PolicyRefusal),
    /// The store could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The policy `tenant` runs under now: its overrides on the global policy.
pub async fn effective_policy(store: &dyn Store, tenant: &str) -> Result<Policy, StoreError> {
    let global = store.get_policy(Scope::Global).await?;
    let own = store.get_policy(Scope::Tenant(tenant)).await?;
    Ok(Policy::effective(global.as_ref(), own.as_ref()))
}

/// Refuses, before anything touches the host's file system, a repository
/// written as a host path the policy does not allow. (Parsing a path asks
/// the file system whether it exists; for a tenant that question must not
/// be asked outside an allowed prefix.)
pub fn precheck_repo(policy: &Policy, repo: &str) -> Result<(), PolicyRefusal> {
    let repo = repo.trim();
    if url::Url::parse(repo).is_ok_and(|url| url.scheme().len() > 1) || looks_scp_like(repo) {
        return Ok(());
    }
    let prefixes = policy.sources.local_paths.clone().unwrap_or_default();
    if crate::tenancy::lexically_under(repo, &prefixes) {
        Ok(())
    } else {
        Err(PolicyRefusal::source("sources.local_paths"))
    }
}

/// `host:path` or `user@host:path` by its text alone.
fn looks_scp_like(repo: &str) -> bool {
    match repo.split_once(':') {
        Some((host, path)) => {
            host.len() > 1 && !host.contains('/') && !path.is_empty() && !repo.starts_with('/')
        }
        None => false,
    }
}

/// Applies `policy` to the admitted `request` (whose repository is
/// `location`, credentials removed), then the host's checks and the daily
/// spend. Returns what the execution carries.
pub async fn govern(
    store: &dyn Store,
    tenant: &str,
    policy: &Policy,
    request: &mut ExecutionRequest,
    location: &str,
    server: &ServerSandbox,
    now: DateTime<Utc>,
) -> Result<Applied, GovernanceError> {
    let applied = apply(policy, request, location, server)?;
    match &applied.source {
        SourceCheck::Local { path, prefixes } => {
            let (path, prefixes) = (path.clone(), prefixes.clone());
            let under =
                tokio::task::spawn_blocking(move || reach::real_path_under(&path, &prefixes))
                    .await
                    .unwrap_or(false);
            if !under {
                return Err(PolicyRefusal::source("sources.local_paths").into());
            }
        }
        SourceCheck::Network { host, port } => {
            if !applied.policy.allow_private_hosts
                && reach::public_addresses(host, *port).await.is_none()
            {
                tracing::info!(%tenant, %host, port, "refused a source: no public address");
                return Err(PolicyRefusal::source("sources.private_hosts").into());
            }
        }
    }
    if let Some(limit) = applied.policy.daily_spend_usd {
        check_daily_spend(store, tenant, limit, request, now).await?;
    }
    Ok(applied)
}

/// Refuses a submission once the tenant's spend today has reached its daily
/// limit, or when the execution's own budget would cross it.
async fn check_daily_spend(
    store: &dyn Store,
    tenant: &str,
    limit: f64,
    request: &ExecutionRequest,
    now: DateTime<Utc>,
) -> Result<(), GovernanceError> {
    let spent = store.spent_since(tenant, day_start(now)).await?;
    let remaining = (limit - spent).max(0.0);
    let asked = request.agent.max_budget_usd;
    let refusal = |message: String| PolicyRefusal {
        field: "agent.max_budget_usd",
        rule: "daily_spend_usd",
        message,
        asked: asked.map(|a| json!(a)),
        allowed: Some(json!(round_micros(remaining))),
    };
    if remaining <= 0.0 {
        return Err(refusal(format!(
            "this tenant's daily spend limit of ${limit:.2} is reached (${spent:.2} spent today, UTC)"
        ))
        .into());
    }
    if let Some(asked) = asked
        && asked > remaining
    {
        return Err(refusal(format!(
            "${asked:.2} would cross this tenant's daily spend limit of ${limit:.2}: ${remaining:.2} is left today (UTC)"
        ))
        .into());
    }
    Ok(())
}

fn round_micros(usd: f64) -> f64 {
    (usd * 1e6).floor() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowing(prefix: &str) -> Policy {
        serde_json::from_value(json!({"sources": {"local_paths": [prefix]}})).unwrap()
    }

    #[test]
    fn host_paths_are_refused_by_their_text_first() {
        let none = Policy::default();
        for repo in [
            "/etc/shadow",
            "/root/.ssh",
            "relative/dir",
            ".",
            "/srv/repos/../../etc",
        ] {
            let refusal = precheck_repo(&none, repo).unwrap_err();
            assert_eq!(refusal, PolicyRefusal::source("sources.local_paths"));
        }
        assert!(precheck_repo(&allowing("/srv/repos"), "/srv/repos/app").is_ok());
        assert!(precheck_repo(&allowing("/srv/repos"), "/srv/repos/../../etc/shadow").is_err());
        assert!(precheck_repo(&none, "https://example.com/a.git").is_ok());
        assert!(precheck_repo(&none, "git@example.com:org/a.git").is_ok());
        assert!(
            precheck_repo(&none, "file:///etc").is_ok(),
            "file URLs are judged by apply"
        );
    }
}
