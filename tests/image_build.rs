//! Builds the agent image on the real Docker engine, offline (mmdebstrap base, CLI
//! from the claude-agent-sdk wheel), runs it, and checks that asking again is cheap.
//! The images and the cached CLI are left in place: other tests and sessions reuse them.

use std::error::Error;
use std::time::{Duration, Instant};

use agentd::image::{DEFAULT_CLAUDE_VERSION, ImageBuilder, ImageConfig, ImageError, claude_binary};

fn test_config() -> ImageConfig {
    ImageConfig {
        cache_dir: std::env::temp_dir().join("agentd-test-cache"),
        ..ImageConfig::default()
    }
}

async fn docker() -> Result<bollard::Docker, Box<dyn Error>> {
    Ok(bollard::Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await?)
}

async fn docker_cli(args: &[&str]) -> Result<String, Box<dyn Error>> {
    let output = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("docker {args:?}: {}\n{stdout}\n{stderr}", output.status).into());
    }
    Ok(stdout)
}

#[tokio::test]
async fn builds_a_runnable_agent_image_then_finds_it_in_one_call() -> Result<(), Box<dyn Error>> {
    let docker = docker().await?;
    let engine = agentd::engine::Engine::connect().await?;
    let builder = ImageBuilder::new(&engine, test_config());
    let progress = |line: &str| eprintln!("{line}");

    let first = builder.ensure(&progress).await?;
    assert_eq!(first.tag, builder.agent_tag());
    assert_eq!(first.claude_version, DEFAULT_CLAUDE_VERSION);

    let image = docker.inspect_image(&first.tag).await?;
    assert_eq!(image.id.as_deref(), Some(first.id.as_str()));
    let image_config = image.config.unwrap_or_default();
    let labels = image_config.labels.unwrap_or_default();
    assert_eq!(
        labels.get("agentd.image").map(String::as_str),
        Some("agent")
    );
    assert_eq!(
        labels.get("agentd.claude-version").map(String::as_str),
        Some(DEFAULT_CLAUDE_VERSION)
    );
    assert_eq!(image_config.user.as_deref(), Some("10001"));
    assert_eq!(image_config.working_dir.as_deref(), Some("/workspace"));
    let env = image_config.env.unwrap_or_default();
    for wanted in [
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
        "DISABLE_AUTOUPDATER=1",
    ] {
        assert!(env.iter().any(|e| e == wanted), "{wanted} not in {env:?}");
    }
    let base = docker.inspect_image(&builder.base_tag()).await?;
    let base_labels = base.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        base_labels.get("agentd.image").map(String::as_str),
        Some("base")
    );

    let script = "id -u; claude --version; git --version; socat -V | head -1; tini --version; \
                  stat -c %a /usr/local/bin/claude; test -w /workspace && echo workspace-writable";
    let stdout = docker_cli(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "10001",
        &first.tag,
        "sh",
        "-c",
        script,
    ])
    .await?;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_eq!(lines[0], "10001");
    assert_eq!(lines[1], format!("{DEFAULT_CLAUDE_VERSION} (Claude Code)"));
    assert!(lines[2].starts_with("git version "), "{}", lines[2]);
    assert!(lines[3].starts_with("socat by "), "{}", lines[3]);
    assert!(lines[4].starts_with("tini version "), "{}", lines[4]);
    assert_eq!(lines[5], "755");
    assert_eq!(lines[6], "workspace-writable");

    let started = Instant::now();
    let second = builder.ensure(&progress).await?;
    let took = started.elapsed();
    assert!(!second.built, "the second ensure rebuilt");
    assert!(
        took < Duration::from_secs(2),
        "the second ensure took {took:?}"
    );
    assert_eq!(second.tag, first.tag);
    assert_eq!(second.id, first.id);
    assert_eq!(second.claude_version, first.claude_version);
    Ok(())
}

/// The native-binary route on a base where uid 10001 is taken: `useradd` fails, and
/// the error names that Dockerfile step. (Runs beside the test above, so on a fresh
/// engine the two `ensure` calls also race each other.)
#[tokio::test]
async fn a_failing_dockerfile_step_is_named_in_the_error() -> Result<(), Box<dyn Error>> {
    let docker = docker().await?;
    let engine = agentd::engine::Engine::connect().await?;
    let config = test_config();
    let default = ImageBuilder::new(&engine, config.clone());
    default.ensure(&|_| {}).await?;

    let squatted = "agentd-test:uid-10001-taken";
    if docker.inspect_image(squatted).await.is_err() {
        let container = format!("agentd-test-squatter-{}", std::process::id());
        let base = default.base_tag();
        docker_cli(&[
            "run", "--name", &container, &base, "useradd", "-u", "10001", "squatter",
        ])
        .await?;
        let committed = docker_cli(&["commit", &container, squatted]).await;
        docker_cli(&["rm", &container]).await?;
        committed?;
    }

    // The agent image may have been built elsewhere (by `agentd image build`), so make
    // sure this test's cache holds the CLI before using the binary route.
    let cli = claude_binary::resolve(&config, &|_| {}).await?.path;
    assert_eq!(
        cli,
        claude_binary::cached_path(&config.cache_dir, &config.claude_version)
    );
    let builder = ImageBuilder::new(
        &engine,
        ImageConfig {
            base_image: Some(squatted.to_string()),
            claude_binary: Some(cli),
            ..config
        },
    );
    assert_ne!(builder.agent_tag(), default.agent_tag());
    let lines = std::sync::Mutex::new(Vec::new());
    let progress = |line: &str| lines.lock().unwrap().push(line.to_string());
    let error = builder
        .ensure(&progress)
        .await
        .expect_err("useradd must fail when uid 10001 is taken");
    eprintln!("{error}");
    let ImageError::Build { tag, step, message } = error else {
        panic!("expected a build error, got {error:?}");
    };
    assert_eq!(tag, builder.agent_tag());
    assert!(step.contains("RUN useradd"), "step: {step}");
    assert!(message.contains("non-zero code"), "message: {message}");
    let lines = lines.into_inner().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("already exists") || l.contains("not unique")),
        "useradd's complaint was not forwarded: {lines:#?}"
    );
    assert!(docker.inspect_image(&builder.agent_tag()).await.is_err());
    Ok(())
}
