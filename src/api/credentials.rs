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

/// A credential to register, by `kind`: `https` (a token, and the user name
/// presented) or `ssh` (a private key and the remote's pinned host keys).
/// The document's picture of it is [`NewCredentialSchema`].
#[derive(Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewCredential {
    /// HTTP(S) basic authentication.
    Https {
        repo_pattern: String,
        username: Option<String>,
        token: String,
    },
    /// SSH with a key; the host key pinned.
    Ssh {
        repo_pattern: String,
        private_key: String,
        known_hosts: String,
    },
}

/// A credential to register: an HTTPS token or an SSH key. `repo_pattern`
/// names the repositories it is for (`*` matches any run of characters;
/// default: every repository of its kind; the most specific fitting
/// pattern wins).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = NewCredential)]
pub enum NewCredentialSchema {
    Https(NewHttpsCredential),
    Ssh(NewSshCredential),
}

/// `https`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpsKind {
    Https,
}

/// `ssh`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SshKind {
    Ssh,
}

/// An HTTP(S) credential: basic authentication with a token.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHttpsCredential {
    pub kind: HttpsKind,
    /// The repositories it is for: `https://` (or `http://`), the host as
    /// written in repository URLs (no `*`), `/`, then any pattern (`*`
    /// matches any run of characters). The credential is sent to that host
    /// alone, and over `http` only when the pattern says `http://`.
    #[schema(
        example = "https://git.example.org/team/*",
        max_length = 1000,
        pattern = r"^https?://[!-)+-.0-~]+/[!-~]*$"
    )]
    pub repo_pattern: String,
    /// The user name presented (no `:`). Default: `x-access-token`.
    #[schema(example = "agentd-bot", pattern = r"^[!-9;-~]{1,200}$")]
    pub username: Option<String>,
    /// The token or password (printable ASCII, no spaces).
    #[schema(pattern = r"^[!-~]{1,4096}$")]
    pub token: String,
}

/// An SSH credential: a key, and the remote's host keys, pinned (a host
/// key not among them ends the push; never `StrictHostKeyChecking=no`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSshCredential {
    pub kind: SshKind,
    /// The repositories it is for: `ssh://`, the user and host as written in
    /// repository URLs (no `*`), `/`, then any pattern. The key is offered to
    /// that host alone. (Write scp-like locations as `ssh://user@host/path`.)
    #[schema(
        example = "ssh://git@git.example.org/team/*",
        max_length = 1000,
        pattern = r"^ssh://[!-)+-.0-~]+/[!-~]*$"
    )]
    pub repo_pattern: String,
    /// The private key in OpenSSH or PEM armour, without a passphrase.
    #[schema(
        max_length = 16384,
        pattern = r"^-----BEGIN [A-Z0-9 ]+-----\n([A-Za-z0-9+/=]+\n)+-----END [A-Z0-9 ]+-----\n?$"
    )]
    pub private_key: String,
    /// The remote's host keys as `known_hosts` lines (`host key-type key`).
    #[schema(
        example = "git.example.org ssh-ed25519 AAAAC3Nza…",
        max_length = 65536,
        pattern = r"^[!-~]+( [!-~]+){2,}(\n[!-~]+( [!-~]+){2,})*\n?$"
    )]
    pub known_hosts: String,
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

/// Printable ASCII without spaces, `min..=max` bytes.
fn printable(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// `-----BEGIN …-----`, base64 lines, `-----END …-----`, as the schema's pattern.
fn armoured(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = body.split('\n').collect();
    let label = |line: &str, start: &str| {
        line.strip_prefix(start)
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
            })
    };
    text.len() <= 16384
        && lines.len() >= 3
        && label(lines[0], "-----BEGIN ")
        && label(lines[lines.len() - 1], "-----END ")
        && lines[1..lines.len() - 1].iter().all(|line| {
            !line.is_empty()
                && line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        })
}

/// `known_hosts` lines of three or more printable fields, as the schema's pattern.
fn host_lines(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    text.len() <= 65536
        && body.split('\n').all(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            fields.len() >= 3 && fields.iter().all(|field| printable(field, usize::MAX))
        })
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

/// Checks a new credential field by field; answers its kind, pattern, user
/// name and secret.
fn check(
    new: NewCredential,
) -> Result<
    (
        CredentialKind,
        Option<String>,
        Option<String>,
        CredentialSecret,
    ),
    ApiError,
> {
    let pattern_ok = |pattern: &str, kind: CredentialKind| {
        let anchored = crate::tenancy::credential_anchor(pattern).map(|(_, k)| k) == Some(kind);
        if printable(pattern, 1000) && anchored {
            return Ok(());
        }
        Err(invalid(
            "repo_pattern",
            match kind {
                CredentialKind::Https => {
                    "must begin https:// or http://, the host (no `*`) and `/`: at most 1000 \
                     printable ASCII characters without spaces"
                }
                CredentialKind::Ssh => {
                    "must begin ssh://, the user and host (no `*`) and `/`: at most 1000 \
                     printable ASCII characters without spaces"
                }
            },
        ))
    };
    match new {
        NewCredential::Https {
            repo_pattern,
            username,
            token,
        } => {
            pattern_ok(&repo_pattern, CredentialKind::Https)?;
            if !printable(&token, 4096) {
                return Err(invalid(
                    "token",
                    "must be 1 to 4096 printable ASCII characters without spaces",
                ));
            }
            if let Some(username) = &username
                && (!printable(username, 200) || username.contains(':'))
            {
                return Err(invalid(
                    "username",
                    "must be 1 to 200 printable ASCII characters without spaces or `:`",
                ));
            }
            Ok((
                CredentialKind::Https,
                Some(repo_pattern),
                Some(username.unwrap_or_else(|| "x-access-token".into())),
                CredentialSecret::Https { token },
            ))
        }
        NewCredential::Ssh {
            repo_pattern,
            private_key,
            known_hosts,
        } => {
            pattern_ok(&repo_pattern, CredentialKind::Ssh)?;
            if !armoured(&private_key) {
                return Err(invalid(
                    "private_key",
                    "must be a key in OpenSSH or PEM armour (-----BEGIN … KEY----- base64 lines -----END … KEY-----), at most 16 KiB",
                ));
            }
            if !host_lines(&known_hosts) {
                return Err(invalid(
                    "known_hosts",
                    "must be `known_hosts` lines (`host key-type key`, fields of printable ASCII), at most 64 KiB",
                ));
            }
            Ok((
                CredentialKind::Ssh,
                Some(repo_pattern),
                None,
                CredentialSecret::Ssh {
                    private_key,
                    known_hosts,
                },
            ))
        }
    }
}

/// Registers a credential for a tenant's pushes. Its secret is sealed with
/// the operator's secret key at once and never shown again.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant}/credentials", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    request_body(content = NewCredentialSchema, content_type = "application/json"),
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
    let (kind, repo_pattern, username, secret) = check(new)?;
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
        kind,
        repo_pattern,
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACB=\n-----END OPENSSH PRIVATE KEY-----\n";

    fn parsed(body: serde_json::Value) -> Result<NewCredential, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn the_document_describes_each_kind_exactly() {
        let doc = crate::api::openapi::document();
        let schemas = &doc["components"]["schemas"];
        let one_of = schemas["NewCredential"]["oneOf"].as_array().unwrap();
        assert_eq!(one_of.len(), 2, "{}", schemas["NewCredential"]);
        for (name, required) in [
            (
                "NewHttpsCredential",
                json!(["kind", "repo_pattern", "token"]),
            ),
            (
                "NewSshCredential",
                json!(["kind", "repo_pattern", "private_key", "known_hosts"]),
            ),
        ] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
            assert_eq!(schemas[name]["required"], required, "{name}");
        }
    }

    #[test]
    fn each_kind_takes_its_own_fields_and_the_rules_match_the_schema() {
        let https =
            parsed(json!({"kind": "https", "repo_pattern": "https://git.example.org/*", "token": "glpat-abc", "username": "bot"})).unwrap();
        let (kind, _, username, _) = check(https).unwrap();
        assert_eq!(
            (kind, username.as_deref()),
            (CredentialKind::Https, Some("bot"))
        );
        let ssh = parsed(json!({
            "kind": "ssh", "repo_pattern": "ssh://git@git.example.org/*", "private_key": KEY,
            "known_hosts": "[git.example.org]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n"
        }))
        .unwrap();
        assert_eq!(check(ssh).unwrap().0, CredentialKind::Ssh);
        // A field of the other kind is unknown here.
        assert!(parsed(json!({"kind": "https", "repo_pattern": "https://git.example.org/*", "token": "t", "private_key": KEY})).is_err());
        assert!(
            parsed(
                json!({"kind": "ssh", "repo_pattern": "ssh://git@git.example.org/*", "private_key": KEY, "known_hosts": "h t k", "token": "t"})
            )
            .is_err()
        );
        for (body, field) in [
            (
                json!({"kind": "https", "repo_pattern": "https://git.example.org/*", "token": "with space"}),
                "token",
            ),
            (
                json!({"kind": "https", "repo_pattern": "https://git.example.org/*", "token": "t", "username": "a:b"}),
                "username",
            ),
            (
                json!({"kind": "https", "token": "t", "repo_pattern": ""}),
                "repo_pattern",
            ),
            (
                json!({"kind": "https", "token": "t", "repo_pattern": "https://*/x"}),
                "repo_pattern",
            ),
            (
                json!({"kind": "https", "token": "t", "repo_pattern": "ssh://git@host/x"}),
                "repo_pattern",
            ),
            (
                json!({"kind": "ssh", "private_key": KEY, "known_hosts": "h t k", "repo_pattern": "https://host/x"}),
                "repo_pattern",
            ),
            (
                json!({"kind": "ssh", "repo_pattern": "ssh://git@git.example.org/*", "private_key": "ssh-rsa AAAA", "known_hosts": "h t k"}),
                "private_key",
            ),
            (
                json!({"kind": "ssh", "repo_pattern": "ssh://git@git.example.org/*", "private_key": KEY, "known_hosts": "only-two fields"}),
                "known_hosts",
            ),
            (
                json!({"kind": "ssh", "repo_pattern": "ssh://git@git.example.org/*", "private_key": KEY, "known_hosts": "a b c\n\nd e f"}),
                "known_hosts",
            ),
        ] {
            match check(parsed(body.clone()).unwrap()) {
                Err(ApiError::Invalid { field: named, .. }) => assert_eq!(named, field, "{body}"),
                _ => panic!("{body} should be refused"),
            }
        }
    }
}
