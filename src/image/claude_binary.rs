//! The Claude Code CLI that goes into the agent image: extracted from the
//! `claude-agent-sdk` wheel on PyPI (cached per version, so it is downloaded once), or
//! a native executable the user installed another way (npm).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use zip::ZipArchive;

use super::base::tag_safe;
use super::process::run_logged;
use super::{ImageConfig, ImageError};

/// The CLI inside the wheel.
pub const WHEEL_BINARY: &str = "claude_agent_sdk/_bundled/claude";
/// The file inside the wheel naming the bundled CLI's version (`2.1.330 (Claude Code)`).
pub const WHEEL_VERSION: &str = "claude_agent_sdk/_bundled/claude.version";
/// How long `<binary> --version` may take; a hung binary must not hang the build.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);
const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// A native Claude Code executable on the host and the version it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeBinary {
    /// Where it is (symlinks resolved).
    pub path: PathBuf,
    /// Its version, e.g. `2.1.330`.
    pub version: String,
}

/// Where the wheel route caches the binary: `<cache_dir>/claude/<version>/claude`.
pub fn cached_path(cache_dir: &Path, version: &str) -> PathBuf {
    cache_dir
        .join("claude")
        .join(tag_safe(version))
        .join("claude")
}

/// The version in a `claude --version` line or a `claude.version` file: its first
/// word (`2.1.330 (Claude Code)` → `2.1.330`).
pub fn version_token(reported: &str) -> Option<&str> {
    reported.split_whitespace().next()
}

/// The version `reported` by `origin` if it is `expected`, otherwise the mismatch.
fn checked(reported: &str, expected: &str, origin: String) -> Result<String, ImageError> {
    match version_token(reported) {
        Some(found) if found == expected.trim() => Ok(found.to_string()),
        found => Err(ImageError::ClaudeVersionMismatch {
            origin,
            found: found.unwrap_or("nothing").to_string(),
            expected: expected.to_string(),
        }),
    }
}

/// The binary `config` asks for: its `claude_binary`, or the one bundled in the
/// `claude_sdk_version` wheel. Either must hold `claude_version`.
pub async fn resolve(
    config: &ImageConfig,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<ClaudeBinary, ImageError> {
    match &config.claude_binary {
        Some(path) => from_executable(path, &config.claude_version, progress).await,
        None => from_wheel(config, progress).await,
    }
}

async fn from_executable(
    path: &Path,
    expected: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<ClaudeBinary, ImageError> {
    let path = tokio::fs::canonicalize(path)
        .await
        .map_err(ImageError::io(format!("finding {}", path.display())))?;
    let mut magic = [0u8; 4];
    let mut file =
        File::open(&path).map_err(ImageError::io(format!("reading {}", path.display())))?;
    if file.read_exact(&mut magic).is_err() || magic != ELF_MAGIC {
        return Err(ImageError::NotNative { path });
    }
    progress(&format!("asking {} for its version", path.display()));
    let failed = |detail: String| ImageError::ClaudeVersion {
        path: path.clone(),
        detail,
    };
    let run = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .map_err(|_| failed(format!("no answer within {VERSION_TIMEOUT:?}")))?
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{}: {}", output.status, stderr.trim())));
    }
    let reported = String::from_utf8_lossy(&output.stdout);
    let version = checked(&reported, expected, path.display().to_string())?;
    Ok(ClaudeBinary { path, version })
}

async fn from_wheel(
    config: &ImageConfig,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<ClaudeBinary, ImageError> {
    let path = cached_path(&config.cache_dir, &config.claude_version);
    let cached = || ClaudeBinary {
        path: path.clone(),
        version: config.claude_version.clone(),
    };
    if path.is_file() {
        progress(&format!("using the cached {}", path.display()));
        return Ok(cached());
    }
    let dir = path.parent().unwrap_or(&config.cache_dir).to_path_buf();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ImageError::io(format!("creating {}", dir.display())))?;
    let _lock = lock(dir.join(".lock")).await?;
    if path.is_file() {
        progress(&format!("another build cached {}", path.display()));
        return Ok(cached());
    }
    let scratch = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&dir)
        .map_err(ImageError::io(format!(
            "creating a scratch dir in {}",
            dir.display()
        )))?;
    let wheel = download_wheel(&config.claude_sdk_version, scratch.path(), progress).await?;
    progress(&format!("extracting {WHEEL_BINARY} to {}", path.display()));
    let (wheel_path, dest, expected) = (wheel, path.clone(), config.claude_version.clone());
    let version =
        tokio::task::spawn_blocking(move || extract_from_wheel(&wheel_path, &dest, &expected))
            .await
            .map_err(|error| {
                ImageError::io("extracting the wheel")(std::io::Error::other(error))
            })??;
    Ok(ClaudeBinary { path, version })
}

/// An exclusive lock on `path`, held until the file is dropped (or the process dies),
/// so concurrent builds download the wheel once.
async fn lock(path: PathBuf) -> Result<File, ImageError> {
    let context = format!("locking {}", path.display());
    tokio::task::spawn_blocking(move || {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|locked| locked)
    .map_err(ImageError::io(context))
}

async fn download_wheel(
    sdk_version: &str,
    dest: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<PathBuf, ImageError> {
    progress(&format!(
        "downloading the claude-agent-sdk=={sdk_version} wheel with pip"
    ));
    let mut command = Command::new("python3");
    command
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar=off",
        ])
        .arg("--dest")
        .arg(dest)
        .arg(format!("claude-agent-sdk=={sdk_version}"));
    let finished = match run_logged(command, "pip", progress).await {
        Ok(finished) => finished,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::PythonMissing);
        }
        Err(error) => return Err(ImageError::io("running pip")(error)),
    };
    if !finished.status.success() {
        return Err(ImageError::PipDownload {
            version: sdk_version.to_string(),
            status: finished.status.to_string(),
            output: finished.tail,
        });
    }
    let listing =
        std::fs::read_dir(dest).map_err(ImageError::io(format!("listing {}", dest.display())))?;
    listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| ImageError::WheelNotFound {
            version: sdk_version.to_string(),
            dir: dest.to_path_buf(),
        })
}

/// Writes the wheel's CLI to `dest` (mode 0755, atomically: a reader sees no file or
/// the whole file) after checking it is `expected`; returns its version.
fn extract_from_wheel(wheel: &Path, dest: &Path, expected: &str) -> Result<String, ImageError> {
    let zip_error = |entry: &str| {
        let (wheel, entry) = (wheel.to_path_buf(), entry.to_string());
        move |source| ImageError::Wheel {
            wheel,
            entry,
            source,
        }
    };
    let file = File::open(wheel).map_err(ImageError::io(format!("opening {}", wheel.display())))?;
    let mut archive = ZipArchive::new(BufReader::new(file)).map_err(zip_error("the archive"))?;

    let mut reported = String::new();
    archive
        .by_name(WHEEL_VERSION)
        .map_err(zip_error(WHEEL_VERSION))?
        .read_to_string(&mut reported)
        .map_err(ImageError::io(format!("reading {WHEEL_VERSION}")))?;
    let version = checked(
        &reported,
        expected,
        format!("{} ({WHEEL_VERSION})", wheel.display()),
    )?;

    let mut entry = archive
        .by_name(WHEEL_BINARY)
        .map_err(zip_error(WHEEL_BINARY))?;
    let mut magic = [0u8; 4];
    if entry.read_exact(&mut magic).is_err() || magic != ELF_MAGIC {
        return Err(ImageError::NotNative {
            path: wheel.join(WHEEL_BINARY),
        });
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    let writing = format!("writing {}", dest.display());
    let mut out = tempfile::NamedTempFile::new_in(dir).map_err(ImageError::io(writing.clone()))?;
    out.write_all(&magic)
        .and_then(|()| std::io::copy(&mut entry, &mut out))
        .and_then(|_| {
            out.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|()| out.as_file().sync_all())
        .map_err(ImageError::io(writing.clone()))?;
    out.persist(dest)
        .map_err(|error| ImageError::io(writing)(error.error))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn fake_wheel(dir: &Path, version_file: &str, binary: Option<&[u8]>) -> PathBuf {
        let path = dir.join("claude_agent_sdk-0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(WHEEL_VERSION, options).unwrap();
        zip.write_all(version_file.as_bytes()).unwrap();
        if let Some(binary) = binary {
            zip.start_file(WHEEL_BINARY, options).unwrap();
            zip.write_all(binary).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn version_token_takes_the_first_word() {
        assert_eq!(version_token("2.1.330 (Claude Code)\n"), Some("2.1.330"));
        assert_eq!(version_token("  \n"), None);
        assert!(checked("2.1.330 (Claude Code)", "2.1.330", String::new()).is_ok());
        assert!(checked("2.1.3301 (Claude Code)", "2.1.330", String::new()).is_err());
        assert!(checked("", "2.1.330", String::new()).is_err());
    }

    #[test]
    fn cache_path_is_per_version() {
        let path = cached_path(Path::new("/c"), "2.1.330");
        assert_eq!(path, Path::new("/c/claude/2.1.330/claude"));
        assert_eq!(
            cached_path(Path::new("/c"), "../x"),
            Path::new("/c/claude/..-x/claude")
        );
    }

    #[test]
    fn extracts_the_bundled_cli_executable() {
        let dir = tempfile::tempdir().unwrap();
        let binary = b"\x7fELF and the rest of a large executable";
        let wheel = fake_wheel(dir.path(), "2.1.330 (Claude Code)\n", Some(binary));
        let dest = dir.path().join("claude");
        let version = extract_from_wheel(&wheel, &dest, "2.1.330").unwrap();
        assert_eq!(version, "2.1.330");
        assert_eq!(std::fs::read(&dest).unwrap(), binary);
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn refuses_another_version_or_a_non_native_cli() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("claude");
        let wheel = fake_wheel(dir.path(), "2.2.0 (Claude Code)\n", Some(b"\x7fELF"));
        let error = extract_from_wheel(&wheel, &dest, "2.1.330").unwrap_err();
        assert!(
            matches!(&error, ImageError::ClaudeVersionMismatch { found, .. } if found == "2.2.0"),
            "{error}"
        );
        let wheel = fake_wheel(dir.path(), "2.1.330\n", Some(b"#!/usr/bin/env node\n"));
        let error = extract_from_wheel(&wheel, &dest, "2.1.330").unwrap_err();
        assert!(matches!(error, ImageError::NotNative { .. }), "{error}");
        let wheel = fake_wheel(dir.path(), "2.1.330\n", None);
        let error = extract_from_wheel(&wheel, &dest, "2.1.330").unwrap_err();
        assert!(matches!(error, ImageError::Wheel { .. }), "{error}");
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_script_is_not_a_claude_binary() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("claude");
        std::fs::write(&script, "#!/bin/sh\necho '2.1.330 (Claude Code)'\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = from_executable(&script, "2.1.330", &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, ImageError::NotNative { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_native_binary_is_asked_for_its_version_through_symlinks() {
        // coreutils' `echo --version` prints "echo (GNU coreutils) …": first word "echo".
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("claude");
        std::os::unix::fs::symlink("/bin/echo", &link).unwrap();
        let found = from_executable(&link, "echo", &|_| {}).await.unwrap();
        assert_eq!(found.version, "echo");
        assert_eq!(found.path, std::fs::canonicalize("/bin/echo").unwrap());
        let error = from_executable(&link, "2.1.330", &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ImageError::ClaudeVersionMismatch { found, .. } if found == "echo"),
            "{error}"
        );
    }
}
