//! Who may do what: tenants, their API keys, the principal a request acts as,
//! and the audit log of what was done and refused.
//!
//! Identity is established at the edge (the API); below it every execution
//! belongs to a tenant and every store query is scoped by it. This room holds
//! the vocabulary and the key material rules; it uses only the domain.

mod apply;
mod audit;
mod credential;
mod key;
mod location;
mod pattern;
mod policy;
mod principal;
mod sealing;
mod tenant;
mod webhook;

pub use apply::{Applied, PolicyRefusal, ServerSandbox, SourceCheck, apply, lexically_under};
pub use audit::{Actor, AuditEntry, AuditEvent, AuditQuery};
pub use credential::{
    Credential, CredentialKind, CredentialSecret, SealedCredential, anchor as credential_anchor,
    choose as choose_credential,
};
pub use key::{ApiKey, IssuedKey, KEY_PREFIX, hash_key, issue_key, looks_like_key};
pub use location::{Location, locate};
pub use pattern::any_matches;
pub use policy::{
    Caps, GitPolicy, HooksPolicy, OverCap, Policy, Scope, Sources, ToolPolicy, day_start,
    is_author_email, is_author_name,
};
pub use principal::Principal;
pub use sealing::{MIN_SECRET_KEY_CHARS, SealError, SecretKey};
pub use tenant::{DEFAULT_TENANT, InvalidName, Tenant, check_tenant_name};
pub use webhook::{
    DeliveryState, SealedWebhook, Webhook, WebhookDelivery, WebhookEvent, sign as sign_webhook,
    verify as verify_webhook,
};
