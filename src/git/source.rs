//! Where a repository comes from, with its credentials split off so they never
//! reach a file, a log line or a container.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use url::Url;

use super::GitError;
use crate::tenancy::Location;

/// A repository location as a client gave it, made safe to store and show.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoSource {
    /// Credential-free location: a URL without user info, or an absolute local path.
    location: String,
    /// `user:password` (or a token as user) taken out of an http(s) URL.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for RepoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSource")
            .field("location", &self.location)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl RepoSource {
    /// Parses a git URL (`https://…`, `http://…`, `ssh://…`, `git://…`, `file://…`),
    /// an scp-style `user@host:path`, or a path to a local repository.
    ///
    /// User info in an http(s) URL is taken out and used only as an HTTP
    /// `Authorization` header when agentd fetches; a local path must exist.
    pub fn parse(input: &str) -> Result<RepoSource, GitError> {
        let invalid = |reason: &str| GitError::InvalidSource {
            input: redact(input),
            reason: reason.to_string(),
        };
        let input = input.trim();
        if input.is_empty() {
            return Err(invalid("is empty"));
        }
        if input.contains('\n') || input.contains('\0') {
            return Err(invalid("contains a newline or NUL"));
        }
        if input.starts_with('-') {
            return Err(invalid("must not start with '-'"));
        }
        if let Ok(mut url) = Url::parse(input)
            && url.scheme().len() > 1
        {
            return match url.scheme() {
                "http" | "https" => {
                    let credentials = if url.username().is_empty() && url.password().is_none() {
                        None
                    } else {
                        let user = percent_decode(url.username());
                        let password = url.password().map(percent_decode).unwrap_or_default();
                        let _ = url.set_username("");
                        let _ = url.set_password(None);
                        Some((user, password))
                    };
                    Ok(RepoSource {
                        location: url.to_string(),
                        credentials,
                    })
                }
                // git decodes these URLs before it splits them into host,
                // port and path: `git://127.0.0.1:6379%2f@8.8.8.8/` names
                // 8.8.8.8 to every check and connects git to 127.0.0.1.
                "ssh" | "git" | "file" if url.as_str().contains('%') => Err(invalid(
                    "must not contain percent-escapes (git decodes them)",
                )),
                "ssh" | "git" | "file" => Ok(RepoSource {
                    location: url.to_string(),
                    credentials: None,
                }),
                other => Err(invalid(&format!("unsupported URL scheme `{other}`"))),
            };
        }
        // git takes `scheme://…` for a URL whatever follows: one the URL
        // parser refuses (a space, a zone id, a bad port) is not scp-like,
        // whose host would be read as the scheme's name.
        if looks_like_url(input) {
            return Err(invalid("is not a valid URL"));
        }
        if is_scp_like(input) {
            return Ok(RepoSource {
                location: input.to_string(),
                credentials: None,
            });
        }
        let path = Path::new(input);
        let absolute = std::fs::canonicalize(path)
            .map_err(|_| invalid("is neither a URL nor an existing local path"))?;
        if !absolute.is_dir() {
            return Err(invalid("is a local path but not a directory"));
        }
        Ok(RepoSource {
            location: absolute.to_string_lossy().into_owned(),
            credentials: None,
        })
    }

    /// The credential-free location, safe to log, store and show.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// True when a local path (not a URL) was given.
    pub fn is_local(&self) -> bool {
        Path::new(&self.location).is_absolute()
    }

    /// A short readable name for directories: the last path component without `.git`.
    pub fn short_name(&self) -> String {
        let trimmed = self.location.trim_end_matches('/');
        let last = trimmed
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git");
        let clean: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if clean.is_empty() {
            "repo".to_string()
        } else {
            clean
        }
    }

    /// Environment for a git process that fetches from this source: the
    /// credentials as an extra HTTP header through `GIT_CONFIG_*`, so they appear
    /// neither on a command line nor in a config file.
    pub fn git_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())];
        if let Some((user, password)) = &self.credentials {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
            env.push(("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()));
            env.push((
                "GIT_CONFIG_VALUE_0".into(),
                format!("Authorization: Basic {token}"),
            ));
        }
        env
    }

    /// The user name and password the location carried, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The secret values a redactor should remove from logs (empty without credentials).
    pub fn secrets(&self) -> Vec<String> {
        match &self.credentials {
            Some((user, password)) if !password.is_empty() => {
                vec![password.clone(), user.clone()]
            }
            Some((user, _)) => vec![user.clone()],
            None => Vec::new(),
        }
    }

    /// Where a fetch from this source connects: scheme, host (as written;
    /// brackets kept for v6) and port. `None` for a local path or `file://`.
    pub fn endpoint(&self) -> Option<(String, String, u16)> {
        match crate::tenancy::locate(&self.location) {
            Location::Network { scheme, host, port } => Some((scheme, host, port)),
            Location::Local(_) => None,
        }
    }

    /// The location as a path when the source is local.
    pub fn local_path(&self) -> Option<PathBuf> {
        self.is_local().then(|| PathBuf::from(&self.location))
    }
}

/// git's test for a URL: `scheme://`, the scheme a letter then letters,
/// digits, `+`, `-` or `.`.
fn looks_like_url(input: &str) -> bool {
    input.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

fn is_scp_like(input: &str) -> bool {
    // user@host:path or host:path, but not a Windows drive or a local path.
    match input.split_once(':') {
        Some((host, path)) => {
            !host.is_empty()
                && !host.contains('/')
                && host.len() > 1
                && !path.is_empty()
                && !Path::new(input).exists()
        }
        None => false,
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// A URL with any user info replaced, for error messages.
fn redact(input: &str) -> String {
    match Url::parse(input) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("***");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => input.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_credentials_are_split_off() {
        let source =
            RepoSource::parse("https://bot:s3cr%2Ft@git.example.com/org/repo.git").unwrap();
        assert_eq!(source.location(), "https://git.example.com/org/repo.git");
        assert_eq!(source.short_name(), "repo");
        assert!(!format!("{source:?}").contains("s3cr"));
        let env = source.git_env();
        let header = &env
            .iter()
            .find(|(k, _)| k == "GIT_CONFIG_VALUE_0")
            .unwrap()
            .1;
        let encoded = header.trim_start_matches("Authorization: Basic ");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"bot:s3cr/t");
        assert_eq!(
            source.secrets(),
            vec!["s3cr/t".to_string(), "bot".to_string()]
        );
    }

    #[test]
    fn other_forms_are_accepted() {
        assert_eq!(
            RepoSource::parse("git@github.example:org/app.git")
                .unwrap()
                .short_name(),
            "app"
        );
        assert!(
            RepoSource::parse("ssh://git@host/x.git")
                .unwrap()
                .git_env()
                .len()
                == 1
        );
        let dir = tempfile::tempdir().unwrap();
        let local = RepoSource::parse(dir.path().to_str().unwrap()).unwrap();
        assert!(local.is_local());
        assert!(local.local_path().unwrap().is_absolute());
    }

    #[test]
    fn bad_sources_are_refused_with_a_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("-uhoh", "must not start"),
            ("ftp://host/x", "unsupported URL scheme"),
            ("/definitely/not/here", "neither a URL nor"),
            // What git would decode or read otherwise than the URL parser.
            ("git://127.0.0.1:6379%2f@8.8.8.8/x", "percent-escapes"),
            ("ssh://127.0.0.1%2f@8.8.8.8/x", "percent-escapes"),
            ("git://%6c%6fcalhost/x", "percent-escapes"),
            ("file:///srv/repos/a%2f..%2f..%2fetc", "percent-escapes"),
            ("git://127.0.0.1 /x", "not a valid URL"),
            ("https://[::1%25lo]/x", "not a valid URL"),
            ("http://127.0.0.1:99999/x", "not a valid URL"),
            ("ssh://host:22:33/x", "not a valid URL"),
        ] {
            let error = RepoSource::parse(input).unwrap_err().to_string();
            assert!(error.contains(reason), "{input}: {error}");
        }
        let error = RepoSource::parse("ftp://u:pw@host/x")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("pw"), "{error}");
    }
}
