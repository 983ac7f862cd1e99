//! `agentd image build`, and the image options `run` shares with it.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use agentd::engine::Engine;
use agentd::image::deployment::{DeploymentImage, ensure_deployment_image};
use agentd::image::{
    DEFAULT_CLAUDE_SDK_VERSION, DEFAULT_CLAUDE_VERSION, DEFAULT_SUITE, ImageBuilder, ImageConfig,
};
use agentd::runner::layout::DataDir;

use super::common::{Failure, Global};

/// The agent image.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the agent image if it is missing (the first `run` does this too).
    ///
    /// Works without any container registry: the base root filesystem is made from
    /// Debian packages with mmdebstrap (using this machine's apt sources) and
    /// imported; the Claude Code binary comes from the claude-agent-sdk wheel on
    /// the configured Python package index. Building twice reuses what exists.
    Build(BuildArgs),
}

/// How the agent image is chosen or built.
#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// Use this existing image as is (no build). It must contain the agent user
    /// (uid 10001), git, socat and the claude CLI.
    #[arg(long, env = "AGENTD_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,

    /// Base image to build on (e.g. debian:bookworm-slim from a site registry)
    /// instead of a root filesystem made with mmdebstrap.
    #[arg(long, env = "AGENTD_BASE_IMAGE", value_name = "IMAGE")]
    pub base_image: Option<String>,

    /// Debian suite of the mmdebstrap base.
    #[arg(long, default_value = DEFAULT_SUITE, value_name = "SUITE")]
    pub suite: String,

    /// claude-agent-sdk wheel version to take the Claude Code binary from.
    #[arg(long, default_value = DEFAULT_CLAUDE_SDK_VERSION, value_name = "VERSION")]
    pub claude_sdk_version: String,

    /// Claude Code version that wheel must bundle.
    #[arg(long, default_value = DEFAULT_CLAUDE_VERSION, value_name = "VERSION")]
    pub claude_version: String,

    /// Use this native claude executable instead of the wheel's (the npm route:
    /// --claude-binary "$(readlink -f "$(command -v claude)")").
    #[arg(long, env = "AGENTD_CLAUDE_BINARY", value_name = "FILE")]
    pub claude_binary: Option<PathBuf>,
}

/// `image build` options.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Rebuild even if the image exists.
    #[arg(long)]
    pub force: bool,
    /// Build agentd's own image instead (for the helm chart: `agentd serve` as
    /// uid 10100, with git, ssh and tini), tagged `agentd:<version>-<hex>`,
    /// with this agentd executable inside (or the one given with --binary).
    #[arg(long, conflicts_with = "engine")]
    pub supervisor: bool,
    /// The agentd executable for --supervisor (default: this one).
    #[arg(long, value_name = "FILE", requires = "supervisor")]
    pub binary: Option<PathBuf>,
    /// Build the Docker engine sidecar image instead (for the chart's dind
    /// mode: Debian's docker.io, dockerd as entrypoint), `agentd-engine:<suite>-<hex>`.
    #[arg(long)]
    pub engine: bool,
}

impl ImageArgs {
    fn config(&self, data_dir: &DataDir, force: bool) -> ImageConfig {
        ImageConfig {
            suite: self.suite.clone(),
            base_image: self.base_image.clone(),
            claude_sdk_version: self.claude_sdk_version.clone(),
            claude_version: self.claude_version.clone(),
            claude_binary: self.claude_binary.clone(),
            cache_dir: data_dir.cache(),
            force,
        }
    }
}

/// The image `run` should use: `--image` as given, else the built agent image
/// (built now if missing, with progress on stderr).
pub async fn ensure_image(
    engine: &Engine,
    data_dir: &DataDir,
    args: &ImageArgs,
) -> Result<String, Failure> {
    if let Some(image) = &args.image {
        return Ok(image.clone());
    }
    let builder = ImageBuilder::new(engine, args.config(data_dir, false));
    let progress = |line: &str| eprintln!("  image: {line}");
    let built = builder.ensure(&progress).await?;
    if built.built {
        eprintln!("agentd: built {}", built.tag);
    }
    Ok(built.tag)
}

pub async fn image(global: &Global, command: &ImageCommand) -> Result<i32, Failure> {
    let ImageCommand::Build(args) = command;
    let engine = Engine::connect().await?;
    if args.supervisor || args.engine {
        return deployment_image(global, &engine, args).await;
    }
    let builder = ImageBuilder::new(&engine, args.image.config(&global.data_dir(), args.force));
    let progress = |line: &str| eprintln!("  {line}");
    let built = builder.ensure(&progress).await?;
    eprintln!(
        "{} {} (Claude Code {}, id {})",
        if built.built { "built" } else { "up to date:" },
        built.tag,
        built.claude_version,
        &built.id
    );
    println!("{}", built.tag);
    Ok(0)
}

/// `image build --supervisor` / `--engine`: an image of agentd's own deployment.
async fn deployment_image(
    global: &Global,
    engine: &Engine,
    args: &BuildArgs,
) -> Result<i32, Failure> {
    let image = if args.engine {
        DeploymentImage::Engine
    } else {
        let binary = match &args.binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe()
                .map_err(|e| Failure::fatal(format!("cannot find agentd's own executable: {e}")))?,
        };
        DeploymentImage::Supervisor { binary }
    };
    let progress = |line: &str| eprintln!("  {line}");
    let built = ensure_deployment_image(
        engine,
        &image,
        &args.image.suite,
        &global.data_dir().cache(),
        args.force,
        &progress,
    )
    .await?;
    eprintln!(
        "{} {}",
        if built.built { "built" } else { "up to date:" },
        built.tag
    );
    println!("{}", built.tag);
    Ok(0)
}
