//! Where a repository location points, read one way wherever it is asked:
//! when the admins' policy admits a source, and when git fetches it (the
//! fetch-time check must see the same host the admission saw).

/// A repository location, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on this host (absolute, or a `file://` URL's path).
    Local(String),
    /// A host to connect to: the URL's scheme, its host as written (brackets
    /// kept for v6) and port (the scheme's default when not written;
    /// git's scp-like `user@host:path` is ssh on 22).
    Network {
        scheme: String,
        host: String,
        port: u16,
    },
}

/// Takes `location` apart.
pub fn locate(location: &str) -> Location {
    if location.starts_with('/') {
        return Location::Local(location.to_string());
    }
    match url::Url::parse(location) {
        Ok(url) if url.scheme() == "file" => Location::Local(url.path().to_string()),
        Ok(url) => {
            let scheme = url.scheme().to_string();
            let port = url
                .port_or_known_default()
                .unwrap_or(match scheme.as_str() {
                    "ssh" => 22,
                    "git" => 9418,
                    _ => 0,
                });
            Location::Network {
                host: url.host_str().unwrap_or_default().to_string(),
                scheme,
                port,
            }
        }
        // `user@host:path`, git's scp-like ssh syntax.
        Err(_) => {
            let before_colon = location.split(':').next().unwrap_or_default();
            let host = before_colon.rsplit('@').next().unwrap_or_default();
            Location::Network {
                scheme: "ssh".to_string(),
                host: host.to_string(),
                port: 22,
            }
        }
    }
}
