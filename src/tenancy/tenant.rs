//! A tenant: a team, customer or pipeline whose executions agentd keeps apart
//! from everyone else's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The tenant every execution stored before tenants existed belongs to, and
/// the one `agentd run` on this machine runs as.
pub const DEFAULT_TENANT: &str = "default";

/// One tenant. Its name is its id: short, lowercase, readable in URLs and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// The tenant's name (`[a-z0-9][a-z0-9-]*`, at most 63 characters).
    pub id: String,
    /// A disabled tenant's keys are refused and it may not submit work.
    pub disabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A tenant name that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a tenant name is 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit"
)]
pub struct InvalidName;

/// Checks a tenant name: 1 to 63 of `a-z`, `0-9`, `-`, not starting with `-`.
pub fn check_tenant_name(name: &str) -> Result<(), InvalidName> {
    let valid = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    valid.then_some(()).ok_or(InvalidName)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_slugs() {
        for good in ["acme", "team-7", "a", "0x", &"a".repeat(63)] {
            assert!(check_tenant_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "Acme",
            "a b",
            "a/b",
            "é",
            &"a".repeat(64),
            "a_b",
            "../x",
        ] {
            assert!(check_tenant_name(bad).is_err(), "{bad}");
        }
    }
}
