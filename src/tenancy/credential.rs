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

    /// Whether it is for `location`: its pattern is anchored to one scheme
    /// and host (see [`anchor`]), the location has that scheme, and the
    /// pattern matches the whole location. A credential is never sent to a
    /// host its pattern does not name, nor over `http` when it names `https`.
    pub fn fits(&self, location: &str) -> bool {
        let Some(pattern) = self.repo_pattern.as_deref() else {
            return false;
        };
        let Some((scheme, kind)) = anchor(pattern) else {
            return false;
        };
        kind == self.kind
            && CredentialKind::for_location(location) == Some(kind)
            && location_scheme(location) == scheme
            && pattern::matches(pattern, location)
    }
}

/// The scheme and kind a credential's pattern is anchored to, or `None`
/// when it is not anchored: it must begin `https://`, `http://` or `ssh://`,
/// then the authority written out (no `*` in it) and a `/` — so whatever the
/// `*`s match, only that host is ever sent the credential.
pub fn anchor(pattern: &str) -> Option<(&'static str, CredentialKind)> {
    let (scheme, rest) = pattern.split_once("://")?;
    let (authority, _) = rest.split_once('/')?;
    if authority.is_empty() || authority.contains('*') {
        return None;
    }
    match scheme {
        "https" => Some(("https", CredentialKind::Https)),
        "http" => Some(("http", CredentialKind::Https)),
        "ssh" => Some(("ssh", CredentialKind::Ssh)),
        _ => None,
    }
}

/// A location's URL scheme (`""` for git's scp-like `user@host:path`, which
/// no credential pattern names: write it as `ssh://user@host/path`).
fn location_scheme(location: &str) -> &str {
    location.split_once("://").map_or("", |(scheme, _)| scheme)
}

/// The credential `location` is pushed with: of those that fit, the one
/// with the longest pattern (the most specific).
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
                .map_or(0, String::len)
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

    /// A tenant names the repository; it must not be able to name one that
    /// makes agentd send the admin's credential elsewhere.
    #[test]
    fn a_credential_goes_only_to_the_host_its_pattern_names() {
        let all = [credential(
            "team",
            CredentialKind::Https,
            Some("https://git.example.org/team/*"),
        )];
        for hostile in [
            "https://attacker.example/team/x.git",
            "https://git.example.org.attacker.example/team/x.git",
            "https://git.example.org@attacker.example/team/x.git",
            "https://attacker.example/https://git.example.org/team/x.git",
            "http://git.example.org/team/x.git",
            "ssh://git.example.org/team/x.git",
        ] {
            assert!(choose(&all, hostile).is_none(), "{hostile}");
        }
        // No pattern, or one that does not pin a host: never used.
        for loose in [
            None,
            Some("https://*"),
            Some("*"),
            Some("https://*.example.org/*"),
            Some("git@*:x"),
        ] {
            let all = [credential("loose", CredentialKind::Https, loose)];
            assert!(
                choose(&all, "https://git.example.org/team/x.git").is_none(),
                "{loose:?}"
            );
        }
    }

    #[test]
    fn the_most_specific_fitting_credential_is_chosen() {
        let all = [
            credential(
                "any-https",
                CredentialKind::Https,
                Some("https://git.example.org/*"),
            ),
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
            credential(
                "ssh",
                CredentialKind::Ssh,
                Some("ssh://git@git.example.org/*"),
            ),
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
            id("https://git.example.org/x.git").as_deref(),
            Some("any-https")
        );
        assert_eq!(id("https://other.example.org/x.git"), None);
        assert_eq!(
            id("ssh://git@git.example.org/team/app.git").as_deref(),
            Some("ssh")
        );
        assert_eq!(id("git@git.example.org:team/app.git"), None);
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
