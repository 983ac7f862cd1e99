//! The audit log: who did (or was refused) what, when, from where. Keys and
//! other secrets never appear in it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Principal;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The admin credential.
    Admin,
    /// A tenant's key (or the local operator as the default tenant).
    Tenant,
    /// Nobody could be identified (a missing or bad credential).
    Anonymous,
}

impl Actor {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Admin => "admin",
            Actor::Tenant => "tenant",
            Actor::Anonymous => "anonymous",
        }
    }
}

/// One thing to write to the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Who.
    pub actor: Actor,
    /// The tenant acted for (or concerned), if any.
    pub tenant_id: Option<String>,
    /// The key used, by id (never its text).
    pub key_id: Option<String>,
    /// What: `execution.create`, `execution.cancel`, `tenant.create`,
    /// `tenant.disable`, `key.create`, `key.revoke`, `policy.set`,
    /// `request.refused`, …
    pub action: String,
    /// What it was done to (an execution, tenant or key id; a route).
    pub target: Option<String>,
    /// `ok`, or `refused`.
    pub outcome: String,
    /// The rule that refused it.
    pub rule: Option<String>,
    /// More, as JSON (never a secret).
    pub detail: Value,
    /// The client's address.
    pub peer: Option<String>,
}

impl AuditEntry {
    /// An entry for `action` by `principal` (`None`: not authenticated).
    pub fn new(principal: Option<&Principal>, action: &str) -> AuditEntry {
        let (actor, tenant_id, key_id) = match principal {
            None => (Actor::Anonymous, None, None),
            Some(Principal::Admin) => (Actor::Admin, None, None),
            Some(Principal::Tenant { tenant, key_id }) => {
                (Actor::Tenant, Some(tenant.clone()), key_id.clone())
            }
        };
        AuditEntry {
            actor,
            tenant_id,
            key_id,
            action: action.to_string(),
            target: None,
            outcome: "ok".into(),
            rule: None,
            detail: Value::Object(Default::default()),
            peer: None,
        }
    }

    /// Names what the action was done to.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Marks it refused by `rule`.
    pub fn refused(mut self, rule: impl Into<String>) -> Self {
        self.outcome = "refused".into();
        self.rule = Some(rule.into());
        self
    }

    /// Adds detail (JSON).
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// Names the concerned tenant (for an admin's action on a tenant).
    pub fn for_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// Records the client's address.
    pub fn from_peer(mut self, peer: Option<String>) -> Self {
        self.peer = peer;
        self
    }
}

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Its position in the log (increasing).
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// The tenant acted for or concerned.
    pub tenant_id: Option<String>,
    /// The key used.
    pub key_id: Option<String>,
    /// What.
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// `ok` or `refused`.
    pub outcome: String,
    /// The refusing rule.
    pub rule: Option<String>,
    /// More.
    pub detail: Value,
    /// From where.
    pub peer: Option<String>,
}

/// A listing of the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only this tenant's events.
    pub tenant_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this outcome (`ok`, `refused`).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Page size (0: 50; at most 200).
    pub limit: u32,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}
