//! Who is calling: the admin credential or a tenant's key, sent as
//! `Authorization: Bearer …`, resolved to a [`Principal`] — or refused, with a
//! line in the audit log.
//!
//! Keys are looked up by their SHA-256 (the text is never stored) and compared
//! in constant time; a found key is remembered for [`KEY_CACHE_TTL`] so a busy
//! client costs one hash per request, and its last use is written at most once
//! a minute. Revoking a key on this server forgets it at once; other replicas
//! stop accepting it within the cache's lifetime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::AppState;
use crate::store::Store;
use crate::tenancy::{
    ApiKey, AuditEntry, DEFAULT_TENANT, KEY_PREFIX, Principal, hash_key, looks_like_key,
};

/// How long a key found in the store is trusted without asking again: 2 s.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// How often a key's last use is written: at most once a minute.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Audit lines for refused credentials, per client address and minute (a
/// flood of bad requests must not flood the audit log).
const REFUSALS_AUDITED_PER_MINUTE: usize = 30;

/// How the API authenticates.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// The admin credential. `None`: admin routes answer 403.
    pub admin_token: Option<String>,
    /// A request without any credential acts as the default tenant (only when
    /// there is no admin credential and the server listens on loopback: the
    /// single-user development mode).
    pub anonymous_is_default_tenant: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "…"))
            .field(
                "anonymous_is_default_tenant",
                &self.anonymous_is_default_tenant,
            )
            .finish()
    }
}

impl AuthConfig {
    /// The development mode: no admin credential, anonymous requests are the
    /// default tenant (what `agentd serve` on loopback does without a token).
    pub fn local() -> AuthConfig {
        AuthConfig {
            admin_token: None,
            anonymous_is_default_tenant: true,
        }
    }

    /// Full authentication with `admin_token`.
    pub fn with_admin(admin_token: impl Into<String>) -> AuthConfig {
        AuthConfig {
            admin_token: Some(admin_token.into()),
            anonymous_is_default_tenant: false,
        }
    }
}

/// Resolves credentials; shared by every request.
#[derive(Default)]
pub struct Authenticator {
    config: AuthConfig,
    admin_hash: Option<[u8; 32]>,
    keys: Mutex<HashMap<String, Cached>>,
    touched: Mutex<HashMap<String, Instant>>,
    refusals: Mutex<HashMap<String, (Instant, usize)>>,
}

#[derive(Clone)]
struct Cached {
    key: ApiKey,
    tenant_disabled: bool,
    at: Instant,
}

impl Authenticator {
    /// An authenticator for `config`.
    pub fn new(config: AuthConfig) -> Authenticator {
        let admin_hash = config
            .admin_token
            .as_deref()
            .map(|token| Sha256::digest(token.as_bytes()).into());
        Authenticator {
            config,
            admin_hash,
            ..Authenticator::default()
        }
    }

    /// Whether an admin credential is configured.
    pub fn has_admin(&self) -> bool {
        self.admin_hash.is_some()
    }

    /// The principal for the request's `Authorization` header (`None`: none sent).
    pub async fn resolve(
        &self,
        store: &dyn Store,
        authorization: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let Some(value) = authorization else {
            if self.config.anonymous_is_default_tenant {
                return Ok(Principal::Tenant {
                    tenant: DEFAULT_TENANT.to_string(),
                    key_id: None,
                });
            }
            return Err(unauthorized(
                "an `Authorization: Bearer` credential is required",
                false,
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                unauthorized(
                    "the Authorization header must be `Bearer <credential>`",
                    true,
                )
            })?;
        if let Some(admin) = &self.admin_hash {
            let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if constant_time_eq(&given, admin) {
                return Ok(Principal::Admin);
            }
        }
        if !looks_like_key(token) {
            return Err(unauthorized("the credential is not valid", true));
        }
        let hash = hash_key(token);
        let (key, tenant_disabled) = self.find(store, &hash).await?;
        if !key.is_usable(Utc::now()) {
            return Err(unauthorized("the credential is expired or revoked", true));
        }
        if tenant_disabled {
            return Err(ApiError::Forbidden {
                code: "tenant_disabled",
                message: format!("tenant {} is disabled", key.tenant_id),
            });
        }
        self.touch(store, &key.id).await;
        Ok(Principal::Tenant {
            tenant: key.tenant_id,
            key_id: Some(key.id),
        })
    }

    async fn find(&self, store: &dyn Store, hash: &str) -> Result<(ApiKey, bool), ApiError> {
        if let Some(cached) = self.lock_keys().get(hash).cloned()
            && cached.at.elapsed() < KEY_CACHE_TTL
        {
            return Ok((cached.key, cached.tenant_disabled));
        }
        let found = store.find_key(hash).await?;
        let Some((key, tenant_disabled)) = found else {
            return Err(unauthorized("the credential is not valid", true));
        };
        self.lock_keys().insert(
            hash.to_string(),
            Cached {
                key: key.clone(),
                tenant_disabled,
                at: Instant::now(),
            },
        );
        Ok((key, tenant_disabled))
    }

    /// Forgets a key (revoked here) or every key of a tenant (disabled here).
    pub fn forget(&self, key_id: Option<&str>, tenant: Option<&str>) {
        self.lock_keys().retain(|_, cached| {
            key_id.is_none_or(|id| cached.key.id != id)
                && tenant.is_none_or(|t| cached.key.tenant_id != t)
        });
    }

    async fn touch(&self, store: &dyn Store, key_id: &str) {
        let due = {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            let due = touched
                .get(key_id)
                .is_none_or(|last| last.elapsed() >= TOUCH_EVERY);
            if due {
                touched.insert(key_id.to_string(), Instant::now());
            }
            due
        };
        if due && let Err(error) = store.touch_key(key_id, Utc::now()).await {
            tracing::warn!(%error, "cannot record a key's last use");
        }
    }

    /// Whether a refusal from `peer` is still within the audit budget.
    fn audit_refusal(&self, peer: &str) -> bool {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if refusals.len() > 10_000 {
            refusals.retain(|_, (since, _)| since.elapsed() < Duration::from_secs(60));
        }
        let entry = refusals
            .entry(peer.to_string())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Duration::from_secs(60) {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 <= REFUSALS_AUDITED_PER_MINUTE
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unauthorized(message: &str, given: bool) -> ApiError {
    ApiError::Unauthorized {
        message: message.to_string(),
        given,
    }
}

/// Equal bytes, compared without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The client's address, when the server knows it.
pub fn peer(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.to_string())
}

/// The authenticated caller of a request. Refusals are audited.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// From where.
    pub peer: Option<String>,
}

impl Caller {
    /// An audit entry for `action` by this caller.
    pub fn audit(&self, action: &str) -> AuditEntry {
        AuditEntry::new(Some(&self.principal), action).from_peer(self.peer.clone())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let peer = peer(parts);
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("\u{fffd}"));
        let store = state.supervisor.store().clone();
        match state.auth.resolve(store.as_ref(), authorization).await {
            Ok(principal) => {
                let caller = Caller { principal, peer };
                parts.extensions.insert(caller.clone());
                Ok(caller)
            }
            Err(error) => {
                audit_refusal(state, parts, None, peer, &error).await;
                Err(error)
            }
        }
    }
}

/// Writes a refused request to the audit log (within the per-client budget).
pub async fn audit_refusal(
    state: &AppState,
    parts: &Parts,
    principal: Option<&Principal>,
    peer: Option<String>,
    error: &ApiError,
) {
    if !state
        .auth
        .audit_refusal(peer.as_deref().unwrap_or("unknown"))
    {
        return;
    }
    let entry = AuditEntry::new(principal, "request.refused")
        .refused(error.code())
        .target(format!(
            "{} {}",
            parts.method,
            without_keys(parts.uri.path())
        ))
        .from_peer(peer);
    if let Err(error) = state.supervisor.store().audit(&entry).await {
        tracing::warn!(%error, "cannot write the audit log");
    }
}

/// A request path for the audit log, with any segment that could be a key
/// (sent in the path by mistake) replaced: keys never reach the log.
fn without_keys(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            // Every key starts with the prefix (`looks_like_key` checks more).
            if segment.starts_with(KEY_PREFIX) {
                "(a key, not recorded)"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A caller acting as a tenant: its id. The admin credential is for the admin
/// API and is refused here (403).
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.principal {
            Principal::Tenant { tenant, .. } => Ok(Tenant(tenant)),
            Principal::Admin => {
                let error = ApiError::Forbidden {
                    code: "forbidden",
                    message: "the admin credential manages agentd; executions belong to tenants: use a tenant's key".into(),
                };
                audit_refusal(state, parts, Some(&Principal::Admin), caller.peer, &error).await;
                Err(error)
            }
        }
    }
}

/// A caller holding the admin credential. A tenant's key gets 403; without
/// an admin credential configured, every admin route answers 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.auth.has_admin() {
            let error = ApiError::Forbidden {
                code: "admin_disabled",
                message:
                    "no admin credential is configured (AGENTD_ADMIN_TOKEN or --admin-token-file)"
                        .into(),
            };
            audit_refusal(state, parts, None, peer(parts), &error).await;
            return Err(error);
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.principal == Principal::Admin {
            return Ok(Admin(caller));
        }
        let error = ApiError::Forbidden {
            code: "forbidden",
            message: "this route needs the admin credential".into(),
        };
        audit_refusal(state, parts, Some(&caller.principal), caller.peer, &error).await;
        Err(error)
    }
}

/// Who may read `/metrics`: the admin — or anyone, in the loopback mode
/// without an admin credential (where the whole API is the local user's).
#[derive(Debug, Clone)]
pub struct MetricsReader;

impl FromRequestParts<AppState> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.auth.has_admin() && state.auth.config.anonymous_is_default_tenant {
            return Ok(MetricsReader);
        }
        Admin::from_request_parts(parts, state)
            .await
            .map(|_| MetricsReader)
    }
}

/// The shared authenticator of an app.
pub type SharedAuth = Arc<Authenticator>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sent_in_a_path_stay_out_of_the_audit_log() {
        let key = crate::tenancy::issue_key().text;
        let path = format!("/v1/admin/tenants/acme/keys/{key}");
        let recorded = without_keys(&path);
        assert!(!recorded.contains(&key), "{recorded}");
        assert_eq!(
            recorded,
            "/v1/admin/tenants/acme/keys/(a key, not recorded)"
        );
        assert_eq!(without_keys("/v1/executions/abc"), "/v1/executions/abc");
    }

    #[test]
    fn comparison_is_exact() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }

    #[test]
    fn the_admin_token_is_never_printed() {
        let config = AuthConfig::with_admin("s3cret-admin");
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
