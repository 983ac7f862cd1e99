//! Admission: the one path every new execution takes, whoever asks — the HTTP
//! API, `agentd run` on this machine, `agentd run --server` before it sends.
//!
//! The request is validated (every field, naming the one at fault), its
//! repository location split from any credentials (the store keeps the
//! credential-free location; the credentials stay in memory for the run), the
//! request hashed (a retried POST with the same idempotency key is recognised
//! by it), and the record to store is built. A replay is checked against the
//! store where clients may only name recorded executions.

use sha2::{Digest, Sha256};

use crate::execution::{
    AgentOptions, AppliedPolicy, ExecutionRequest, InvalidField, NewExecution, RuleSource,
    ToolRule, ToolRules, is_execution_id,
};
use crate::git::RepoSource;
use crate::store::{Store, StoreError};

/// What can stop an admission.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The store could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Where results are kept could not be asked.
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
}

/// An admitted execution: the record to store, and the repository location as
/// given (credentials included; never stored, kept only to fetch).
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The record to store.
    pub new: NewExecution,
    /// The repository location with its credentials.
    pub repo: String,
}

/// Validates `request` and builds what the store keeps for `tenant`.
pub fn admit(
    request: ExecutionRequest,
    tenant: &str,
    idempotency_key: Option<String>,
) -> Result<Admitted, InvalidField> {
    request.validate()?;
    let source = RepoSource::parse(&request.repo).map_err(|e| InvalidField {
        field: "repo",
        rule: e.to_string(),
    })?;
    let request_hash = request_hash(&request);
    let stored_agent = request.agent.clone();
    let repo = request.repo.trim().to_string();
    let stored = ExecutionRequest {
        repo: source.location().to_string(),
        ..request
    };
    Ok(Admitted {
        new: NewExecution {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_string(),
            idempotency_key,
            request_hash,
            request: stored,
            policy: AppliedPolicy {
                tools: request_rules(&stored_agent),
                ..AppliedPolicy::operator()
            },
            lineage: None,
        },
        repo,
    })
}

/// A replay named by a client must be an execution of the same tenant that
/// recorded a cassette (never a path: clients do not choose files on this host).
pub async fn check_replay(
    store: &dyn Store,
    results: &crate::results::Results,
    tenant: &str,
    replay: &str,
) -> Result<(), AdmissionError> {
    let refuse = |rule: &str| {
        AdmissionError::Invalid(InvalidField {
            field: "replay",
            rule: rule.to_string(),
        })
    };
    if !is_execution_id(replay) {
        return Err(refuse(
            "must be the id of an execution recorded with `record`",
        ));
    }
    let Some(source) = store.get_execution(Some(tenant), replay).await? else {
        return Err(refuse("names no execution of this tenant"));
    };
    let recorded = source.request.record
        && results
            .size(replay, &crate::results::ResultFile::Cassette)
            .await?
            .is_some();
    if !recorded {
        return Err(refuse("names an execution that recorded no cassette"));
    }
    Ok(())
}

/// The request's own tool rules (`agent.allowed_tools`, `agent.disallowed_tools`).
fn request_rules(agent: &AgentOptions) -> ToolRules {
    let rules = |texts: &[String]| {
        texts
            .iter()
            .map(|rule| ToolRule {
                rule: rule.clone(),
                source: RuleSource::Request,
            })
            .collect()
    };
    ToolRules {
        allow: rules(&agent.allowed_tools),
        deny: rules(&agent.disallowed_tools),
        only_allowed: false,
    }
}

/// A stable hash of what a request asks for (to recognise a retried POST).
fn request_hash(request: &ExecutionRequest) -> String {
    let json = serde_json::to_vec(request).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(repo: &str) -> ExecutionRequest {
        serde_json::from_value(serde_json::json!({"repo": repo, "prompt": "fix it"})).unwrap()
    }

    #[test]
    fn credentials_stay_out_of_the_record() {
        let admitted = admit(
            request("https://user:s3cret@example.com/org/repo.git"),
            "acme",
            Some("key-1".into()),
        )
        .unwrap();
        assert_eq!(
            admitted.repo,
            "https://user:s3cret@example.com/org/repo.git"
        );
        assert_eq!(
            admitted.new.request.repo,
            "https://example.com/org/repo.git"
        );
        assert!(
            !serde_json::to_string(&admitted.new)
                .unwrap()
                .contains("s3cret")
        );
        assert_eq!(admitted.new.tenant_id, "acme");
        assert_eq!(admitted.new.idempotency_key.as_deref(), Some("key-1"));
        assert!(is_execution_id(&admitted.new.id));
    }

    #[test]
    fn the_same_request_hashes_the_same_and_a_different_one_does_not() {
        let a = admit(request("https://example.com/a.git"), "t", None).unwrap();
        let b = admit(request("https://example.com/a.git"), "t", None).unwrap();
        let c = admit(request("https://example.com/b.git"), "t", None).unwrap();
        assert_eq!(a.new.request_hash, b.new.request_hash);
        assert_ne!(a.new.request_hash, c.new.request_hash);
        assert_ne!(a.new.id, b.new.id);
    }

    #[test]
    fn a_broken_rule_names_its_field() {
        let mut bad = request("https://example.com/a.git");
        bad.prompt = " ".into();
        assert_eq!(admit(bad, "t", None).unwrap_err().field, "prompt");
        assert_eq!(admit(request("-x"), "t", None).unwrap_err().field, "repo");
    }
}
