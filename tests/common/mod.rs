//! Helpers every integration test binary shares (included with `#[path]`): the
//! agent image, git and docker on the command line, a sample repository,
//! scenario turns, and the leak check.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub mod receiver;
pub mod remotes;

/// The agent image: `AGENTD_TEST_IMAGE` (the test script builds it once), else
/// built or found once per test process.
pub async fn agent_image() -> String {
    static IMAGE: OnceCell<String> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| async {
            if let Ok(image) = std::env::var("AGENTD_TEST_IMAGE") {
                return image;
            }
            let engine = agentd::engine::Engine::connect().await.expect("docker");
            let config = agentd::image::ImageConfig {
                cache_dir: std::env::temp_dir().join("agentd-test-cache"),
                ..agentd::image::ImageConfig::default()
            };
            agentd::image::ImageBuilder::new(&engine, config)
                .ensure(&|line: &str| eprintln!("image: {line}"))
                .await
                .expect("agent image")
                .tag
        })
        .await
        .clone()
}

/// The docker CLI's stdout (it must succeed).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// git in a directory as a test author; returns stdout (it must succeed).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small repository: README.md starting with "# Sample project", a script,
/// branch `main`, tag `v1`.
pub fn sample_repo(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    git(dir, &["init", "--quiet", "-b", "main"]);
    std::fs::write(
        dir.join("README.md"),
        "# Sample project\n\nA tiny repository for agentd tests.\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/greet.sh"), "#!/bin/sh\necho hello\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "initial"]);
    git(dir, &["tag", "v1"]);
}

/// A scenario turn that runs one Bash command.
pub fn bash(command: &str) -> Value {
    json!({
        "content": [{"type": "tool_use", "name": "Bash",
                     "input": {"command": command, "description": "run a check", "timeout": 600000}}],
        "usage": {"input_tokens": 10, "output_tokens": 10}
    })
}

/// A final text turn.
pub fn done() -> Value {
    json!({
        "content": [{"type": "text", "text": "Done."}],
        "usage": {"input_tokens": 10, "output_tokens": 5}
    })
}

/// Every path below `dir` (not following symbolic links).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        found.push(path.clone());
        if path.is_dir() && !path.is_symlink() {
            found.extend(walk(&path));
        }
    }
    found
}

/// Asserts no container or volume labelled with `execution` remains on the
/// engine, nor (with `run_dir`) any socket path naming it.
pub fn assert_nothing_left(execution: &str, run_dir: Option<&Path>) {
    let (containers, volumes) = labelled(&format!("agentd.execution={execution}"));
    assert!(containers.is_empty(), "containers left: {containers}");
    assert!(volumes.is_empty(), "volumes left: {volumes}");
    if let Some(run_dir) = run_dir {
        let sockets: Vec<_> = walk(run_dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(execution))
            .collect();
        assert!(sockets.is_empty(), "socket paths left: {sockets:?}");
    }
}

/// Asserts nothing labelled with a supervisor's run directory is left on the
/// engine: not only the executions a test names, but any it caused. Used from
/// `Drop`, so it stays quiet while a test is already failing.
pub fn assert_run_dir_clean(run_dir: &Path) {
    if std::thread::panicking() {
        return;
    }
    let (containers, volumes) = labelled(&format!("agentd.run-dir={}", run_dir.display()));
    assert!(
        containers.is_empty() && volumes.is_empty(),
        "left on the engine under {}: containers [{containers}] volumes [{volumes}]",
        run_dir.display()
    );
}

/// Asserts no workspace filesystem is left under `root` (a test world's
/// folder): no image file in a data directory's `workspaces/`, and no loop
/// device backed by a file below `root`, even a deleted one.
pub fn assert_no_workspaces(root: &Path) {
    if std::thread::panicking() {
        return;
    }
    let images: Vec<_> = walk(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "img"))
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("workspaces")))
        .collect();
    assert!(images.is_empty(), "workspace images left: {images:?}");
    let mounts = mounts_below(root);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let out = Command::new("losetup").arg("-a").output();
    if let Ok(out) = out {
        let listing = String::from_utf8_lossy(&out.stdout);
        let root = root.display().to_string();
        let loops: Vec<_> = listing.lines().filter(|l| l.contains(&root)).collect();
        assert!(loops.is_empty(), "loop devices left: {loops:?}");
    }
}

/// Mount points below `root` (a layered workspace's, a template's), in
/// the order they were mounted.
pub fn mounts_below(root: &Path) -> Vec<String> {
    let root = format!("{}/", root.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&root))
        .map(str::to_string)
        .collect()
}

/// Removes what a test world left behind: containers and volumes labelled
/// with its run directory, and loop devices backed by files below `root`
/// (deleted ones too). A world whose test failed half-way (or that was
/// dropped while executions ran) calls it, so a failure costs one red test
/// and not an engine full of sandboxes for every later run. Best effort:
/// it never panics.
pub fn sweep(run_dir: &Path, root: &Path) {
    let quiet = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    let filter = format!("label=agentd.run-dir={}", run_dir.display());
    for container in quiet("docker", &["ps", "-aq", "--filter", &filter]).split_whitespace() {
        quiet("docker", &["rm", "-f", "-v", container]);
    }
    for volume in quiet("docker", &["volume", "ls", "-q", "--filter", &filter]).split_whitespace() {
        quiet("docker", &["volume", "rm", "-f", volume]);
    }
    for point in mounts_below(root).iter().rev() {
        quiet("umount", &["--lazy", point]);
    }
    let root = root.display().to_string();
    for line in quiet("losetup", &["-a"]).lines() {
        if line.contains(&root)
            && let Some((device, _)) = line.split_once(':')
        {
            quiet("losetup", &["-d", device]);
        }
    }
}

/// The containers (name and status) and volumes carrying a label, as the
/// docker CLI lists them, trimmed: empty when there are none.
fn labelled(label: &str) -> (String, String) {
    let filter = format!("label={label}");
    let containers = docker(&[
        "ps",
        "-a",
        "--filter",
        &filter,
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    let volumes = docker(&["volume", "ls", "-q", "--filter", &filter]);
    (containers.trim().to_string(), volumes.trim().to_string())
}

/// True when a status name is final.
pub fn is_final_status(status: &str) -> bool {
    status
        .parse::<agentd::execution::Status>()
        .is_ok_and(|status| status.is_final())
}
