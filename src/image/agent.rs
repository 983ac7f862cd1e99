//! The agent image: images/agent/Dockerfile on top of the base, with the Claude Code
//! binary, built by the engine's classic builder (no BuildKit needed).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::ImageError;
use super::base::tag_safe;
use crate::engine::{Engine, ImageBuild};

/// The agent image's Dockerfile, embedded so an installed agentd needs no checkout.
pub const DOCKERFILE: &str = include_str!("../../images/agent/Dockerfile");
/// Repository part of the agent tag.
pub const REPOSITORY: &str = "agentd-agent";
/// Where the build context puts the CLI; the Dockerfile copies it from there.
const CONTEXT_BINARY: &str = "claude";

/// `agentd-agent:<claude version>-<8 hex>`, the hex from everything that shapes the
/// image (Dockerfile, base, CLI version, package list), so any change yields a new tag.
pub fn agent_tag(claude_version: &str, base: &str, packages: &[String]) -> String {
    let mut hash = Sha256::new();
    for part in [
        "agent",
        DOCKERFILE,
        base,
        claude_version,
        &packages.join("\n"),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!(
        "{REPOSITORY}:{}-{}",
        tag_safe(claude_version),
        hex::encode(&hash.finalize()[..4])
    )
}

/// Writes the build context tar to `dest`: the Dockerfile, and the CLI as `claude`
/// with mode 0755 in its header, since the classic builder can neither
/// `COPY --chmod` nor `RUN chmod` a 380 MB file without doubling the layer.
pub(crate) fn write_context(dest: &Path, claude: &Path) -> std::io::Result<()> {
    write_context_with(dest, DOCKERFILE, CONTEXT_BINARY, claude)
}

/// A build context of `dockerfile` and the executable at `binary`, named
/// `name` in the context with mode 0755 already set (see [`write_context`]).
pub(crate) fn write_context_with(
    dest: &Path,
    dockerfile: &str,
    name: &str,
    binary: &Path,
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(std::io::BufWriter::new(File::create(dest)?));

    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;

    let binary = File::open(binary)?;
    let metadata = binary.metadata()?;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(metadata.len());
    header.set_mode(0o755);
    header.set_mtime(
        metadata
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |age| age.as_secs()),
    );
    tar.append_data(&mut header, name, binary)?;

    tar.into_inner()?
        .into_inner()
        .map_err(|error| error.into_error())?
        .sync_all()
}

/// One agent image build.
pub(crate) struct AgentBuild<'a> {
    /// The tag to give the image.
    pub tag: &'a str,
    /// The image to build `FROM`.
    pub base: &'a str,
    /// The packages the base must have (installed by the Dockerfile if missing).
    pub packages: &'a [String],
    /// The CLI version, for the image label.
    pub claude_version: &'a str,
    /// Ignore the build cache (a forced rebuild).
    pub no_cache: bool,
}

/// Sends the context tar at `context` to the engine and builds `build.tag`; returns
/// the id of the image this build made, when the engine reports it.
pub(crate) async fn build(
    engine: &Engine,
    build: AgentBuild<'_>,
    context: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<String>, ImageError> {
    progress(&format!("building {} from {}", build.tag, build.base));
    let request = ImageBuild {
        tag: build.tag,
        args: HashMap::from([
            ("BASE".to_string(), build.base.to_string()),
            ("PACKAGES".to_string(), build.packages.join(" ")),
            (
                "CLAUDE_VERSION".to_string(),
                build.claude_version.to_string(),
            ),
        ]),
        no_cache: build.no_cache,
    };
    engine
        .build_image(&request, context, progress)
        .await?
        .map_err(|failed| ImageError::Build {
            tag: build.tag.to_string(),
            step: failed.step,
            message: failed.message,
        })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::engine::spec::WORKSPACE;
    use crate::execution::AGENT_UID;
    use crate::image::base::packages;

    #[test]
    fn agent_tag_is_deterministic_and_tracks_base_and_version() {
        let packages = packages();
        let tag = agent_tag("2.1.330", "agentd-base:bookworm-0123abcd", &packages);
        assert_eq!(
            tag,
            agent_tag("2.1.330", "agentd-base:bookworm-0123abcd", &packages)
        );
        let hex = tag.strip_prefix("agentd-agent:2.1.330-").unwrap();
        assert_eq!(hex.len(), 8);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(
            tag,
            agent_tag("2.1.331", "agentd-base:bookworm-0123abcd", &packages)
        );
        assert_ne!(tag, agent_tag("2.1.330", "debian:bookworm-slim", &packages));
        assert_ne!(
            tag,
            agent_tag("2.1.330", "agentd-base:bookworm-0123abcd", &[])
        );
    }

    #[test]
    fn dockerfile_makes_what_the_hardened_spec_expects() {
        assert!(DOCKERFILE.contains(&format!("useradd -m -u {AGENT_UID} ")));
        assert!(DOCKERFILE.contains(&format!("USER {AGENT_UID}\n")));
        assert!(DOCKERFILE.contains(&format!("chown {AGENT_UID}:{AGENT_UID} {WORKSPACE}")));
        assert!(DOCKERFILE.contains(&format!("COPY {CONTEXT_BINARY} /usr/local/bin/claude\n")));
        for arg in ["BASE", "PACKAGES", "CLAUDE_VERSION"] {
            assert!(DOCKERFILE.contains(&format!("ARG {arg}\n")), "ARG {arg}");
        }
        let instructions = DOCKERFILE
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'));
        for line in instructions {
            assert!(
                !line.contains("--chmod"),
                "the classic builder has no COPY --chmod"
            );
        }
    }

    #[test]
    fn context_holds_the_dockerfile_and_an_executable_cli() {
        let dir = tempfile::tempdir().unwrap();
        let claude = dir.path().join("some-claude");
        std::fs::write(&claude, b"\x7fELF binary").unwrap();
        let context = dir.path().join("context.tar");
        write_context(&context, &claude).unwrap();

        let mut archive = tar::Archive::new(File::open(&context).unwrap());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            seen.push((path, mode, content));
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0],
            ("Dockerfile".into(), 0o644, DOCKERFILE.as_bytes().to_vec())
        );
        assert_eq!(
            seen[1],
            ("claude".into(), 0o755, b"\x7fELF binary".to_vec())
        );
    }
}
