//! The real model endpoint behind the gateway, and the credential for it.

use url::Url;

use super::GatewayError;
use super::routes::Allowed;

/// The public Anthropic API, used when `ANTHROPIC_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// How agentd authenticates upstream. Held only in agentd's memory.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `ANTHROPIC_API_KEY`, sent as `x-api-key`.
    ApiKey(String),
    /// `ANTHROPIC_AUTH_TOKEN`, sent as `Authorization: Bearer …`.
    BearerToken(String),
}

impl Credential {
    /// The secret itself, for redaction.
    pub fn secret(&self) -> &str {
        match self {
            Credential::ApiKey(secret) | Credential::BearerToken(secret) => secret,
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Credential::BearerToken(_) => f.write_str("BearerToken(<redacted>)"),
        }
    }
}

/// Where the gateway forwards model requests, and with what credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    base_url: Url,
    credential: Option<Credential>,
}

impl Upstream {
    /// An upstream at `base_url` (any http(s) URL speaking the Messages API; a
    /// path prefix is kept) with an optional credential.
    pub fn new(base_url: &str, credential: Option<Credential>) -> Result<Upstream, GatewayError> {
        let mut base_url = Url::parse(base_url).map_err(|e| GatewayError::InvalidUpstream {
            url: base_url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(GatewayError::InvalidUpstream {
                url: base_url.to_string(),
                reason: "must be http or https".into(),
            });
        }
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(Upstream {
            base_url,
            credential,
        })
    }

    /// Reads `ANTHROPIC_BASE_URL` (default: the public API) and the credential
    /// from `ANTHROPIC_API_KEY` or else `ANTHROPIC_AUTH_TOKEN`, like the official SDKs.
    pub fn from_env() -> Result<Upstream, GatewayError> {
        let base = std::env::var("ANTHROPIC_BASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let credential = non_empty("ANTHROPIC_API_KEY")
            .map(Credential::ApiKey)
            .or_else(|| non_empty("ANTHROPIC_AUTH_TOKEN").map(Credential::BearerToken));
        Upstream::new(&base, credential)
    }

    /// The base URL, ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The credential, if any.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// The upstream URL for an admitted route: the base URL's path, then the
    /// route's own path and query (rebuilt by the route table, never the
    /// sandbox's string). Checked to stay under the base path.
    pub fn url_for_route(&self, allowed: &Allowed) -> Result<Url, GatewayError> {
        let relative = allowed.upstream_path();
        let mut url = self.base_url.clone();
        let path = format!("{}{relative}", self.base_url.path());
        url.set_path(&path);
        url.set_query(allowed.upstream_query().as_deref());
        if url.path() != path {
            return Err(GatewayError::InvalidUpstream {
                url: self.base_url.to_string(),
                reason: format!("cannot append {relative} to its path"),
            });
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: hyper::Method, target: &str) -> Allowed {
        crate::gateway::admit(&method, &target.parse().unwrap()).unwrap()
    }

    #[test]
    fn keeps_path_prefix_and_rebuilds_the_query() {
        let up = Upstream::new("https://llm.example/anthropic", None).unwrap();
        assert_eq!(
            up.url_for_route(&route(hyper::Method::POST, "/v1/messages?beta=true"))
                .unwrap()
                .as_str(),
            "https://llm.example/anthropic/v1/messages?beta=true"
        );
        let up = Upstream::new("http://127.0.0.1:9000/", None).unwrap();
        assert_eq!(
            up.url_for_route(&route(hyper::Method::POST, "/v1/messages"))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/v1/messages"
        );
        assert_eq!(
            up.url_for_route(&route(
                hyper::Method::GET,
                "/v1/models/claude-x.1?beta=true"
            ))
            .unwrap()
            .as_str(),
            "http://127.0.0.1:9000/v1/models/claude-x.1?beta=true"
        );
    }

    #[test]
    fn refuses_non_http_and_hides_secrets() {
        assert!(Upstream::new("unix:///x", None).is_err());
        let up = Upstream::new(
            "https://a.example",
            Some(Credential::ApiKey("sk-secret".into())),
        )
        .unwrap();
        assert!(!format!("{up:?}").contains("sk-secret"));
    }
}
