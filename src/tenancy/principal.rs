//! Who a request acts as.

/// The identity a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator holding the admin credential: manages tenants, keys and
    /// policies, reads every execution and the audit log.
    Admin,
    /// A tenant, through one of its keys (`key_id`: none for the local
    /// operator, who acts as the default tenant without a key).
    Tenant {
        tenant: String,
        key_id: Option<String>,
    },
}

impl Principal {
    /// The tenant whose executions this principal sees: `None` for the admin (all).
    pub fn scope(&self) -> Option<&str> {
        match self {
            Principal::Admin => None,
            Principal::Tenant { tenant, .. } => Some(tenant),
        }
    }
}
