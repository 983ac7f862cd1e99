//! How agentd's git proves who it is to a team's remote, on the host only.
//!
//! The secret reaches git as a process environment variable (an HTTP
//! header) or as a file in the scratch home (an SSH key, 0600), both gone
//! with the scratch repository. It is never written into a repository's
//! configuration, never in a URL, never in a container.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;

use super::PushError;
use crate::git::scratch::ScratchGit;

/// A credential for pushing, decrypted for the length of one delivery.
#[derive(Clone, PartialEq, Eq)]
pub enum RemoteAuth {
    /// No credential (a local remote, or one that needs none).
    None,
    /// HTTP basic authentication: a user name and a token or password.
    Basic { username: String, password: String },
    /// An SSH private key (OpenSSH format) and the remote's pinned host keys
    /// (`known_hosts` lines): a host key not among them ends the push.
    Ssh {
        private_key: String,
        known_hosts: String,
    },
}

impl std::fmt::Debug for RemoteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RemoteAuth::None => "RemoteAuth::None",
            RemoteAuth::Basic { .. } => "RemoteAuth::Basic(…)",
            RemoteAuth::Ssh { .. } => "RemoteAuth::Ssh(…)",
        })
    }
}

impl RemoteAuth {
    /// The texts that must never appear in a message agentd keeps or shows.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            RemoteAuth::None => Vec::new(),
            RemoteAuth::Basic { username, password } => {
                use base64::Engine;
                let header = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let mut secrets = vec![password.clone(), header];
                // A token given as the user name (`https://TOKEN@host`).
                if password.is_empty() {
                    secrets.push(username.clone());
                }
                secrets.retain(|secret| !secret.is_empty());
                secrets
            }
            RemoteAuth::Ssh { private_key, .. } => private_key
                .lines()
                .filter(|line| line.len() >= 16 && !line.starts_with("-----"))
                .map(str::to_string)
                .collect(),
        }
    }

    /// Sets up `git` to present this credential; `host_name` is the address
    /// an ssh connection is held to (a tenant's vetted address), whose host
    /// key is still checked under the name the URL gives.
    pub(crate) fn apply(
        &self,
        git: &mut ScratchGit,
        pinned_ssh: Option<(&str, &str)>,
    ) -> Result<(), PushError> {
        match self {
            RemoteAuth::None => {
                // Still no prompt, no agent, no user configuration for ssh.
                let known_hosts = git.home().join("known_hosts");
                write_private(&known_hosts, "")?;
                git.set_env(
                    "GIT_SSH_COMMAND",
                    ssh_command(None, &known_hosts, pinned_ssh),
                );
            }
            RemoteAuth::Basic { username, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                git.set_env("GIT_CONFIG_COUNT", "1");
                git.set_env("GIT_CONFIG_KEY_0", "http.extraHeader");
                git.set_env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {token}"),
                );
            }
            RemoteAuth::Ssh {
                private_key,
                known_hosts,
            } => {
                let key = git.home().join("id");
                let mut text = private_key.trim_end().to_string();
                text.push('\n');
                write_private(&key, &text)?;
                let hosts = git.home().join("known_hosts");
                write_private(&hosts, known_hosts)?;
                git.set_env(
                    "GIT_SSH_COMMAND",
                    ssh_command(Some(&key), &hosts, pinned_ssh),
                );
            }
        }
        git.set_env("GIT_SSH_VARIANT", "ssh");
        Ok(())
    }
}

/// OpenSSH with nothing from the host's or a user's configuration: this key
/// only, these host keys only, no questions.
fn ssh_command(key: Option<&Path>, known_hosts: &Path, pinned: Option<(&str, &str)>) -> String {
    let mut command = vec![
        "ssh".to_string(),
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!(
            "UserKnownHostsFile={}",
            quote(&known_hosts.display().to_string())
        ),
        "-o".into(),
        "GlobalKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "UpdateHostKeys=no".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "IdentityAgent=none".into(),
        "-o".into(),
        "ConnectTimeout=20".into(),
        "-o".into(),
        "ServerAliveInterval=15".into(),
        "-o".into(),
        "ServerAliveCountMax=4".into(),
        "-o".into(),
        "PasswordAuthentication=no".into(),
        "-o".into(),
        "KbdInteractiveAuthentication=no".into(),
    ];
    match key {
        Some(key) => {
            command.push("-i".into());
            command.push(quote(&key.display().to_string()));
        }
        None => {
            command.push("-o".into());
            command.push("PubkeyAuthentication=no".into());
        }
    }
    if let Some((address, host)) = pinned {
        command.push("-o".into());
        command.push(quote(&format!("HostName={address}")));
        command.push("-o".into());
        command.push(quote(&format!("HostKeyAlias={host}")));
    }
    command.join(" ")
}

/// Single-quotes a word for the shell git runs its ssh command with.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn write_private(path: &Path, text: &str) -> Result<(), PushError> {
    let io = |source| PushError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_never_prints_itself() {
        let auth = RemoteAuth::Basic {
            username: "bot".into(),
            password: "s3cret-token".into(),
        };
        assert!(!format!("{auth:?}").contains("s3cret"));
        let secrets = auth.secrets();
        assert!(secrets.contains(&"s3cret-token".to_string()));
        // The header's value too (base64 of `bot:s3cret-token`).
        assert!(secrets.contains(&"Ym90OnMzY3JldC10b2tlbg==".to_string()));
        assert!(
            !secrets.contains(&"bot".to_string()),
            "a user name is no secret"
        );
        let token_as_user = RemoteAuth::Basic {
            username: "ghp_tokenasuser".into(),
            password: String::new(),
        };
        assert!(
            token_as_user
                .secrets()
                .contains(&"ghp_tokenasuser".to_string())
        );
    }

    #[test]
    fn the_ssh_command_reads_no_configuration_and_checks_host_keys() {
        let command = ssh_command(
            Some(Path::new("/data/scratch/home/id")),
            Path::new("/data/scratch/home/known hosts"),
            Some(("203.0.113.7", "git.example.org")),
        );
        for part in [
            "-F /dev/null",
            "StrictHostKeyChecking=yes",
            "UserKnownHostsFile='/data/scratch/home/known hosts'",
            "GlobalKnownHostsFile=/dev/null",
            "IdentityAgent=none",
            "-i '/data/scratch/home/id'",
            "'HostName=203.0.113.7'",
            "'HostKeyAlias=git.example.org'",
        ] {
            assert!(command.contains(part), "{part} in {command}");
        }
        assert!(!command.contains("StrictHostKeyChecking=no"));
    }
}
