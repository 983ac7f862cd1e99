//! `/v1/admin/tenants/{tenant}/credentials`: the credentials a tenant's
//! deliveries push with. Registered by the admin, sealed at once with the
//! operator's secret key, never shown again by any route (a listing shows
//! what each is for), never in the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::admin::tenant_not_found;
use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::executions::audit;
use super::extract::{JsonBody, PathParams};
use super::state::AppState;
use crate::tenancy::{Credential, CredentialKind, CredentialSecret, SealedCredential};

/// The credential routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/tenants/{tenant}/credentials",
            post(create_credential).get(list_credentials),
        )
        .route(
            "/v1/admin/tenants/{tenant}/credentials/{credential_id}",
            delete(delete_credential),
        )
}

/// Which transport a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CredentialKind)]
pub enum CredentialKindView {
    /// HTTP(S) basic authentication with a token or password.
    Https,
    /// An SSH key and the remote's pinned host keys.
    Ssh,
}

/// A credential to register: `https` takes `token` (and `username`), `ssh`
/// takes `private_key` and `known_hosts`.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// `https` or `ssh`.
    pub kind: CredentialKindView,
    /// The repositories it is for: a pattern over the repository URL where `*`
    /// matches any run of characters. Default: every repository of its kind.
    /// The most specific fitting pattern wins.
    #[schema(example = "https://git.example.org/team/*", max_length = 1000)]
    pub repo_pattern: Option<String>,
    /// `https`: the user name presented. Default: `x-access-token`.
    #[schema(example = "agentd-bot", max_length = 200)]
    pub username: Option<String>,
    /// `https`: the token or password.
    #[schema(max_length = 4096)]
    pub token: Option<String>,
    /// `ssh`: the private key, OpenSSH or PEM format, without a passphrase.
    #[schema(max_length = 16384)]
    pub private_key: Option<String>,
    /// `ssh`: the remote's host keys, as `known_hosts` lines; a host key not
    /// among them ends the push (never `StrictHostKeyChecking=no`).
    #[schema(example = "git.example.org ssh-ed25519 AAAAC3Nza…", max_length = 65536)]
    pub known_hosts: Option<String>,
}

/// A credential as listed: what it is for, never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Credential)]
pub struct CredentialView {
    /// Its id.
    pub id: String,
    /// `https` or `ssh`.
    pub kind: CredentialKindView,
    /// The repositories it is for (none: every repository of its kind).
    pub repo_pattern: Option<String>,
    /// The user name an `https` credential presents.
    pub username: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl From<Credential> for CredentialView {
    fn from(credential: Credential) -> Self {
        CredentialView {
            id: credential.id,
            kind: match credential.kind {
                CredentialKind::Https => CredentialKindView::Https,
                CredentialKind::Ssh => CredentialKindView::Ssh,
            },
            repo_pattern: credential.repo_pattern,
            username: credential.username,
            created_at: credential.created_at,
        }
    }
}

/// A tenant's credentials.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialList {
    /// Oldest first.
    pub items: Vec<CredentialView>,
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

/// Checks a new credential field by field; answers its secret and user name.
fn check(new: &NewCredential) -> Result<(CredentialSecret, Option<String>), ApiError> {
    let text_ok = |text: &str, max: usize| {
        !text.trim().is_empty() && text.len() <= max && !text.contains('\0')
    };
    if let Some(pattern) = &new.repo_pattern
        && (!text_ok(pattern, 1000) || pattern.chars().any(char::is_control))
    {
        return Err(invalid(
            "repo_pattern",
            "must be 1 to 1000 characters without control characters",
        ));
    }
    match new.kind {
        CredentialKindView::Https => {
            for (field, given) in [
                ("private_key", new.private_key.is_some()),
                ("known_hosts", new.known_hosts.is_some()),
            ] {
                if given {
                    return Err(invalid(field, "belongs to an `ssh` credential"));
                }
            }
            let token = new
                .token
                .as_deref()
                .ok_or_else(|| invalid("token", "is required for an `https` credential"))?;
            if !text_ok(token, 4096) || token.chars().any(char::is_control) {
                return Err(invalid(
                    "token",
                    "must be 1 to 4096 characters without control characters",
                ));
            }
            if let Some(username) = &new.username
                && (!text_ok(username, 200)
                    || username.contains(':')
                    || username.chars().any(char::is_control))
            {
                return Err(invalid(
                    "username",
                    "must be 1 to 200 characters without `:` or control characters",
                ));
            }
            Ok((
                CredentialSecret::Https {
                    token: token.to_string(),
                },
                Some(
                    new.username
                        .clone()
                        .unwrap_or_else(|| "x-access-token".into()),
                ),
            ))
        }
        CredentialKindView::Ssh => {
            for (field, given) in [
                ("token", new.token.is_some()),
                ("username", new.username.is_some()),
            ] {
                if given {
                    return Err(invalid(field, "belongs to an `https` credential"));
                }
            }
            let key = new
                .private_key
                .as_deref()
                .ok_or_else(|| invalid("private_key", "is required for an `ssh` credential"))?;
            let key_trimmed = key.trim();
            if !text_ok(key, 16384)
                || !key_trimmed.starts_with("-----BEGIN ")
                || !key_trimmed.ends_with("PRIVATE KEY-----")
            {
                return Err(invalid(
                    "private_key",
                    "must be a private key in OpenSSH or PEM format (-----BEGIN … PRIVATE KEY-----), at most 16 KiB",
                ));
            }
            let hosts = new.known_hosts.as_deref().ok_or_else(|| {
                invalid(
                    "known_hosts",
                    "is required for an `ssh` credential: agentd pins the remote's host keys",
                )
            })?;
            let lines: Vec<&str> = hosts
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .collect();
            let well_formed = |line: &&str| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let offset = usize::from(fields.first().is_some_and(|f| f.starts_with('@')));
                fields.len() >= 3 + offset && !line.chars().any(|c| c.is_control() && c != '\t')
            };
            if !text_ok(hosts, 65536) || lines.is_empty() || !lines.iter().all(well_formed) {
                return Err(invalid(
                    "known_hosts",
                    "must be `known_hosts` lines (`host key-type base64-key`), at most 64 KiB",
                ));
            }
            Ok((
                CredentialSecret::Ssh {
                    private_key: key.to_string(),
                    known_hosts: hosts.to_string(),
                },
                None,
            ))
        }
    }
}

/// Registers a credential for a tenant's pushes. Its secret is sealed with
/// the operator's secret key at once and never shown again.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant}/credentials", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    request_body(content = NewCredential, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered (without its secret)", body = CredentialView),
        (status = 400, description = "Malformed JSON or a field of the wrong shape", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "agentd has no secret key to seal it with", body = ErrorBody),
        (status = 422, description = "A field breaks its rule", body = ErrorBody),
    ))]
pub async fn create_credential(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(new): JsonBody<NewCredential>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    let store = state.supervisor.store();
    store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| tenant_not_found(&tenant))?;
    let (secret, username) = check(&new)?;
    let key = state.supervisor.secret_key().ok_or_else(|| {
        ApiError::Conflict(
            "agentd has no secret key (AGENTD_SECRET_KEY or --secret-key-file): credentials \
             cannot be stored"
                .into(),
        )
    })?;
    let credential = Credential {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.clone(),
        kind: match new.kind {
            CredentialKindView::Https => CredentialKind::Https,
            CredentialKindView::Ssh => CredentialKind::Ssh,
        },
        repo_pattern: new.repo_pattern.clone(),
        username,
        created_at: Utc::now(),
    };
    let plain = serde_json::to_vec(&secret).map_err(ApiError::internal)?;
    let sealed = SealedCredential {
        sealed: key.seal(&plain, &credential.seal_binding()),
        key_fingerprint: key.fingerprint(),
        credential: credential.clone(),
    };
    store.create_credential(&sealed).await?;
    let entry = caller
        .audit("credential.create")
        .target(&credential.id)
        .for_tenant(&tenant)
        .detail(json!({"kind": credential.kind.as_str(), "repo_pattern": credential.repo_pattern}));
    audit(&state, &entry).await;
    Ok((StatusCode::CREATED, Json(credential.into())))
}

/// A tenant's credentials: what each is for, never a secret.
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant}/credentials", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The credentials", body = CredentialList),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn list_credentials(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<CredentialList>, ApiError> {
    let store = state.supervisor.store();
    store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| tenant_not_found(&tenant))?;
    let items = store.list_credentials(&tenant).await?;
    Ok(Json(CredentialList {
        items: items
            .into_iter()
            .map(|sealed| sealed.credential.into())
            .collect(),
    }))
}

/// Deletes a credential at once; later pushes no longer use it.
#[utoipa::path(delete, path = "/v1/admin/tenants/{tenant}/credentials/{credential_id}", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name"), ("credential_id" = String, Path, description = "The credential's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "The tenant has no such credential", body = ErrorBody),
    ))]
pub async fn delete_credential(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams((tenant, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let deleted = state
        .supervisor
        .store()
        .delete_credential(&tenant, &id)
        .await?;
    if !deleted {
        // The path is not echoed (a secret pasted there by mistake).
        return Err(ApiError::NotFound(format!(
            "tenant {tenant} has no such credential"
        )));
    }
    audit(
        &state,
        &caller
            .audit("credential.delete")
            .target(&id)
            .for_tenant(&tenant),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
