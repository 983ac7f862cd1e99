//! git in a scratch bare repository that borrows a mirror's objects, with a
//! configuration no repository can influence: no system or global config, no
//! replace objects, no attributes, no hooks, no fsmonitor, no transport unless
//! a caller allows one by name. Reading a bundle back and delivering a branch
//! both run their git here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::verify::{ChangedPath, VerifyError};

pub(crate) fn io(path: &Path, source: std::io::Error) -> VerifyError {
    VerifyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// git in a scratch bare repository that borrows the mirror's objects, with a
/// configuration no repository can influence.
pub(crate) struct ScratchGit {
    dir: PathBuf,
    home: PathBuf,
    timeout: Duration,
    /// Configuration given with `-c` after agentd's own (transports allowed by name).
    config: Vec<String>,
    /// Environment added to every command (a credential's header, an ssh command).
    env: Vec<(OsString, OsString)>,
}

impl ScratchGit {
    pub(crate) async fn create(
        scratch: &Path,
        mirror: &Path,
        timeout: Duration,
    ) -> Result<Self, VerifyError> {
        let _ = tokio::fs::remove_dir_all(scratch).await;
        let dir = scratch.join("repo.git");
        let home = scratch.join("home");
        for path in [&dir, &home] {
            tokio::fs::create_dir_all(path)
                .await
                .map_err(|source| io(path, source))?;
        }
        let git = ScratchGit {
            dir,
            home,
            timeout,
            config: Vec::new(),
            env: Vec::new(),
        };
        git.run(
            "creating the scratch repository",
            &["init", "--quiet", "--bare"],
        )
        .await?;
        let alternates = git.dir.join("objects/info/alternates");
        let objects = mirror.join("objects");
        tokio::fs::write(&alternates, format!("{}\n", objects.display()))
            .await
            .map_err(|source| io(&alternates, source))?;
        Ok(git)
    }

    /// Adds `-c` options given after agentd's own (a transport allowed by
    /// name, a pin to vetted addresses).
    pub(crate) fn configure(&mut self, options: impl IntoIterator<Item = String>) {
        self.config.extend(options);
    }

    /// Adds an environment variable to every later command.
    pub(crate) fn set_env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        self.env.push((key.into(), value.into()));
    }

    /// The scratch home: agentd's own files for this repository's commands
    /// (a key, a known-hosts file), removed with it.
    pub(crate) fn home(&self) -> &Path {
        &self.home
    }

    pub(crate) fn command(&self, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
        let mut command = Command::new("git");
        command
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_ATTR_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_DIR", &self.dir)
            .current_dir(&self.dir)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.fsmonitor=false",
                "-c",
                "core.attributesFile=/dev/null",
                "-c",
                "core.quotePath=false",
                "-c",
                "gc.auto=0",
                "-c",
                "protocol.allow=never",
            ])
            .args(
                self.config
                    .iter()
                    .flat_map(|option| ["-c", option.as_str()]),
            )
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs a command within the time limit and returns what it printed.
    pub(crate) async fn output(
        &self,
        step: &'static str,
        mut command: Command,
    ) -> Result<std::process::Output, VerifyError> {
        tokio::time::timeout(self.timeout, command.output())
            .await
            .map_err(|_| VerifyError::Timeout {
                step,
                seconds: self.timeout.as_secs(),
            })?
            .map_err(VerifyError::Spawn)
    }

    /// Runs a step and returns its stdout; a failure names the step and quotes
    /// the end of git's stderr.
    pub(crate) async fn run(
        &self,
        step: &'static str,
        args: &[&str],
    ) -> Result<Vec<u8>, VerifyError> {
        let mut command = self.command(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = self.output(step, command).await?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(refused(step, &output.stderr))
        }
    }

    /// True when the command exits 0, false when it exits 1; anything else fails.
    pub(crate) async fn succeeds(&self, args: &[&str]) -> Result<bool, VerifyError> {
        let step = "checking ancestry";
        let mut command = self.command(args);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let output = self.output(step, command).await?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(refused(step, &output.stderr)),
        }
    }

    /// Runs a step with its stdout going straight to `path`.
    pub(crate) async fn run_to_file(
        &self,
        step: &'static str,
        args: &[String],
        path: &Path,
    ) -> Result<(), VerifyError> {
        let file = std::fs::File::create(path).map_err(|source| io(path, source))?;
        let mut command = self.command(args);
        command.stdout(Stdio::from(file)).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(VerifyError::Spawn)?;
        let mut stderr = child.stderr.take();
        let waited = tokio::time::timeout(self.timeout, async {
            let mut text = Vec::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.take(64 << 10).read_to_end(&mut text).await;
            }
            (child.wait().await, text)
        })
        .await;
        let (status, text) = waited.map_err(|_| VerifyError::Timeout {
            step,
            seconds: self.timeout.as_secs(),
        })?;
        let status = status.map_err(VerifyError::Spawn)?;
        if status.success() {
            Ok(())
        } else {
            let _ = std::fs::remove_file(path);
            Err(refused(step, &text))
        }
    }

    /// The size of each file's new blob (0 for deletions and submodules).
    pub(crate) async fn blob_sizes(
        &self,
        files: &[(ChangedPath, Option<String>)],
    ) -> Result<Vec<u64>, VerifyError> {
        let blobs: Vec<&str> = files
            .iter()
            .filter_map(|(_, blob)| blob.as_deref())
            .collect();
        if blobs.is_empty() {
            return Ok(vec![0; files.len()]);
        }
        let step = "reading blob sizes";
        let mut command = self.command(&["cat-file", "--batch-check=%(objectsize)"]);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().map_err(VerifyError::Spawn)?;
        let input = blobs.join("\n") + "\n";
        let mut stdin = child.stdin.take();
        let writer = async move {
            if let Some(stdin) = stdin.as_mut() {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(input.as_bytes()).await;
            }
            drop(stdin);
        };
        let (_, output) = tokio::time::timeout(self.timeout, async {
            tokio::join!(writer, child.wait_with_output())
        })
        .await
        .map_err(|_| VerifyError::Timeout {
            step,
            seconds: self.timeout.as_secs(),
        })?;
        let output = output.map_err(VerifyError::Spawn)?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut sizes = text
            .lines()
            .map(|line| line.trim().parse::<u64>().unwrap_or(0));
        Ok(files
            .iter()
            .map(|(_, blob)| {
                if blob.is_some() {
                    sizes.next().unwrap_or(0)
                } else {
                    0
                }
            })
            .collect())
    }
}

fn refused(step: &'static str, stderr: &[u8]) -> VerifyError {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(500);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    VerifyError::Refused {
        step,
        message: text[start..].to_string(),
    }
}
