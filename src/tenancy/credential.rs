//! A tenant's credentials for its git remotes, registered by an admin: an
//! HTTPS token or an SSH key with the remote's pinned host keys, optionally
//! for the repositories one URL pattern names. Listed and stored without
//! their secret (which is sealed, [`super::sealing`]); used only on the
//! host, by delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pattern;

/// A credential as listed: what it is for, never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Its id (a UUID v7).
    pub id: String,
    /// The tenant whose pushes use it.
    pub tenant_id: String,
    /// `https` or `ssh`.
    pub kind: CredentialKind,
    /// The repositories it is for (a `*` pattern over the repository URL);
    /// none: every repository of its kind.
    pub repo_pattern: Option<String>,
    /// The user name an HTTPS credential presents (not secret).
    pub username: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Which transport a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// HTTP(S) basic authentication with a token or password.
    Https,
    /// An SSH key and the host keys it trusts.
    Ssh,
}

impl CredentialKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Https => "https",
            CredentialKind::Ssh => "ssh",
        }
    }

    /// The kind a repository location's scheme takes (`None` for a local path
    /// or git's unauthenticated protocol).
    pub fn for_location(location: &str) -> Option<CredentialKind> {
        match super::locate(location) {
            super::Location::Network { scheme, .. } => match scheme.as_str() {
                "https" | "http" => Some(CredentialKind::Https),
                "ssh" => Some(CredentialKind::Ssh),
                _ => None,
            },
            super::Location::Local(_) => None,
        }
    }
}

/// A credential's secret part, as sealed at rest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialSecret {
    /// The token (or password) of an HTTPS credential.
    Https { token: String },
    /// An OpenSSH private key and the `known_hosts` lines it trusts.
    Ssh {
        private_key: String,
        known_hosts: String,
    },
}

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialSecret(…)")
    }
}

/// A credential with its sealed secret, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredential {
    pub credential: Credential,
    /// The secret, sealed for this row ([`Credential::seal_binding`]).
    pub sealed: String,
    /// The fingerprint of the key that sealed it.
    pub key_fingerprint: String,
}

impl Credential {
    /// What a sealed secret is bound to: its row's id and tenant.
    pub fn seal_binding(&self) -> String {
        format!("agentd credential {} of {}", self.id, self.tenant_id)
    }

    /// Whether it is for `location`: its kind fits the scheme and its pattern,
    /// if any, matches.
    pub fn fits(&self, location: &str) -> bool {
        CredentialKind::for_location(location) == Some(self.kind)
            && self
                .repo_pattern
                .as_deref()
                .is_none_or(|pattern| pattern::matches(pattern, location))
    }
}

/// The credential `location` is pushed with: of those that fit, one with a
/// pattern before one without; of patterns, the longest (the most specific).
pub fn choose<'a>(
    credentials: &'a [SealedCredential],
    location: &str,
) -> Option<&'a SealedCredential> {
    credentials
        .iter()
        .filter(|sealed| sealed.credential.fits(location))
        .max_by_key(|sealed| {
            sealed
                .credential
                .repo_pattern
                .as_ref()
                .map_or(0, |pattern| pattern.len() + 1)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(id: &str, kind: CredentialKind, pattern: Option<&str>) -> SealedCredential {
        SealedCredential {
            credential: Credential {
                id: id.into(),
                tenant_id: "acme".into(),
                kind,
                repo_pattern: pattern.map(str::to_string),
                username: None,
                created_at: Utc::now(),
            },
            sealed: String::new(),
            key_fingerprint: String::new(),
        }
    }

    #[test]
    fn the_most_specific_fitting_credential_is_chosen() {
        let all = [
            credential("any-https", CredentialKind::Https, None),
            credential(
                "team",
                CredentialKind::Https,
                Some("https://git.example.org/team/*"),
            ),
            credential(
                "app",
                CredentialKind::Https,
                Some("https://git.example.org/team/app.git"),
            ),
            credential("ssh", CredentialKind::Ssh, None),
        ];
        let id = |location: &str| choose(&all, location).map(|c| c.credential.id.clone());
        assert_eq!(
            id("https://git.example.org/team/app.git").as_deref(),
            Some("app")
        );
        assert_eq!(
            id("https://git.example.org/team/lib.git").as_deref(),
            Some("team")
        );
        assert_eq!(
            id("https://other.example.org/x.git").as_deref(),
            Some("any-https")
        );
        assert_eq!(
            id("ssh://git@git.example.org/team/app.git").as_deref(),
            Some("ssh")
        );
        assert_eq!(id("/srv/git/app.git"), None);
        assert_eq!(id("git://git.example.org/app.git"), None);
    }

    #[test]
    fn a_secret_never_prints_itself() {
        let secret = CredentialSecret::Https {
            token: "ghp_secret".into(),
        };
        assert!(!format!("{secret:?}").contains("ghp_secret"));
    }
}
