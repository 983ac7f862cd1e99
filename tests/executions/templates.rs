//! Checkout templates: a workspace layered over the read-only checkout of its
//! base commit. The attacks: an agent writing, deleting and re-permissioning
//! through the overlay, and reaching for its writable layer, must leave the
//! template as the next execution on the commit sees it; an agent filling its
//! layered workspace must not take the collection's reserve; an engine that
//! cannot see agentd's mounts must never turn an empty folder into a commit
//! removing every file. Under gVisor a sandbox takes the plain path.

use serde_json::json;

use crate::support::*;

/// The progress messages of a run.
fn progress(ran: &Ran) -> Vec<String> {
    ran.events()
        .into_iter()
        .filter_map(|event| match event.body {
            agentd::execution::EventBody::Agentd(
                agentd::execution::SupervisorEvent::Progress { message },
            ) => Some(message),
            _ => None,
        })
        .collect()
}

/// `command` playing `scenario`, with a checkout template for any repository.
fn layered(
    mut command: std::process::Command,
    scenario: &std::path::Path,
) -> std::process::Command {
    command
        .arg("--scripted-model")
        .arg(scenario)
        .arg("--checkout-templates")
        .arg("0");
    command
}

/// The output of the run's tool call that printed `marker`.
fn output_with(ran: &Ran, marker: &str) -> String {
    ran.tool_results()
        .into_iter()
        .find(|r| r.contains(marker))
        .unwrap_or_else(|| panic!("no tool output with {marker:?}: {}", ran.stderr))
}

fn changes(ran: &Ran) -> Vec<(String, String)> {
    let mut changes: Vec<_> = ran
        .summary
        .files_changed
        .iter()
        .map(|f| (f.change.clone(), f.path.clone()))
        .collect();
    changes.sort();
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_change_the_template_the_next_execution_starts_from() {
    let world = World::new();
    let attack = r#"cd /workspace/repo
perl -e 'rename("src", "moved") or die "rename: $!\n"; rename("moved", "src") or die "back: $!\n"; print "renamed a folder\n"' 2>&1
echo 'rewritten by a hostile agent' > README.md
rm src/greet.sh
echo new > added.txt
chmod 000 src 2>&1; chmod 755 src
ls /workspace/.layer 2>&1 | head -1
touch /workspace/.layer/upper/planted 2>&1 | head -1 || true
touch /workspace/.layer/planted 2>&1 | head -1 || true
echo "status: $(git status --porcelain | tr '\n' ' ')"
echo "branch: $(git rev-parse --abbrev-ref HEAD)"
echo attacked"#;
    let file = world.scenario(json!({"turns": [bash(attack), done()]}));
    let command = layered(world.agentd_run("change everything").await, &file);
    let first = finish(command);
    assert_eq!(
        first.summary.status.as_str(),
        "succeeded",
        "{}",
        first.stderr
    );
    let said = progress(&first);
    assert!(
        said.iter()
            .any(|m| m.starts_with("checking the repository out into a template")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|m| m.starts_with("starting from the checkout template")),
        "{said:?}"
    );
    let report = output_with(&first, "attacked");
    assert!(report.contains("Permission denied"), "{report}");
    assert!(
        report.contains("renamed a folder"),
        "a folder of the template renames like any other: {report}"
    );
    assert!(
        report.contains("status:  M README.md  D src/greet.sh ?? added.txt"),
        "the layered repository shows exactly the agent's changes: {report}"
    );
    assert!(
        report.contains(&format!("branch: {}", first.summary.branch)),
        "{report}"
    );
    // The work is collected through the overlay like any other.
    assert_eq!(
        changes(&first),
        vec![
            ("A".to_string(), "added.txt".to_string()),
            ("D".to_string(), "src/greet.sh".to_string()),
            ("M".to_string(), "README.md".to_string()),
        ]
    );
    assert_ne!(first.summary.head_commit, first.summary.base_commit);
    assert_nothing_left(&first.summary.id, &world.run_dir());

    // The next execution on the commit starts from the template as it was made.
    let look = r#"cd /workspace/repo
echo "readme: $(head -1 README.md)"
echo "greet: $(cat src/greet.sh | tail -1)"
ls added.txt 2>&1 | head -1
echo "status: [$(git status --porcelain)]"
echo "head: $(git rev-parse HEAD) $(git rev-parse --abbrev-ref HEAD)"
echo "tags: $(git tag)"
echo looked"#;
    let file = world.scenario(json!({"turns": [bash(look), done()]}));
    let command = layered(world.agentd_run("look around").await, &file);
    let second = finish(command);
    assert_eq!(
        second.summary.status.as_str(),
        "succeeded",
        "{}",
        second.stderr
    );
    let said = progress(&second);
    assert!(
        !said
            .iter()
            .any(|m| m.starts_with("checking the repository out")),
        "the template is made once: {said:?}"
    );
    assert!(
        said.iter()
            .any(|m| m.starts_with("starting from the checkout template")),
        "{said:?}"
    );
    let report = output_with(&second, "looked");
    assert!(report.contains("readme: # Sample project"), "{report}");
    assert!(report.contains("greet: echo hello"), "{report}");
    assert!(report.contains("No such file"), "{report}");
    assert!(report.contains("status: []"), "{report}");
    let base = second.summary.base_commit.clone().unwrap();
    assert!(
        report.contains(&format!("head: {base} {}", second.summary.branch)),
        "{report}"
    );
    assert!(report.contains("tags: v1"), "{report}");
    assert!(second.summary.files_changed.is_empty());
    assert_nothing_left(&second.summary.id, &world.run_dir());

    // gVisor's gofer cannot serve an overlay: its sandboxes check out.
    if let Some(gvisor) = gvisor().await {
        let file = world.scenario(json!({"turns": [bash(look), done()]}));
        let command = layered(world.agentd_run_under("look around", gvisor).await, &file);
        let third = finish(command);
        assert_eq!(
            third.summary.status.as_str(),
            "succeeded",
            "{}",
            third.stderr
        );
        assert!(
            !progress(&third).iter().any(|m| m.contains("template")),
            "{:?}",
            progress(&third)
        );
        let report = output_with(&third, "looked");
        assert!(report.contains("readme: # Sample project"), "{report}");
        assert!(report.contains("status: []"), "{report}");
        assert_nothing_left(&third.summary.id, &world.run_dir());
    }

    // One template, unchanged, and nothing planted beside it.
    let templates = world.data_dir().join("templates");
    let ready: Vec<_> = std::fs::read_dir(&templates)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ready"))
        .collect();
    assert_eq!(ready.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_filling_a_layered_workspace_leaves_the_collection_its_reserve() {
    let world = World::new();
    let fill = r#"cd /workspace/repo
echo small > small.txt
dd if=/dev/zero of=fill bs=1M count=1024 2>&1 | grep -o 'No space left on device'
df -k /workspace | tail -n 1
echo filled"#;
    let file = world.scenario(json!({"turns": [bash(fill), done()]}));
    let mut command = layered(world.agentd_run("fill the disk").await, &file);
    command.arg("--workspace-size").arg("128m");
    let ran = finish(command);
    let report = output_with(&ran, "filled");
    assert!(report.contains("No space left on device"), "{report}");
    assert!(
        progress(&ran)
            .iter()
            .any(|m| m.starts_with("starting from the checkout template")),
        "{:?}",
        progress(&ran)
    );
    assert_eq!(ran.summary.status.as_str(), "failed", "{}", ran.stderr);
    let reason = ran.summary.reason.clone().unwrap_or_default();
    assert!(reason.contains("disk_limit"), "{reason}");
    // The overlay's writes could not take the reserve: the collection had it
    // and committed the agent's small file (the fill is too large to keep).
    assert!(
        changes(&ran).contains(&("A".to_string(), "small.txt".to_string())),
        "{:?}\n{}",
        changes(&ran),
        ran.stderr
    );
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

/// `agentd run` in a mount namespace of its own: the engine sees none of
/// its mounts (it binds the empty mount points instead).
fn unshared(command: std::process::Command) -> std::process::Command {
    let mut unshared = std::process::Command::new("unshare");
    unshared
        .args(["--mount", "--propagation", "private", "--"])
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(std::process::Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => unshared.env(key, value),
            None => unshared.env_remove(key),
        };
    }
    unshared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_the_engine_cannot_see_never_cost_the_repository() {
    let world = World::new();
    let file = world.scenario(json!({"turns": [bash("ls /workspace/repo"), done()]}));

    // The template's build mount is not there for the builder: the build
    // fails and the execution checks out in its sandbox.
    let ran = finish(unshared(layered(world.agentd_run("look").await, &file)));
    assert_eq!(ran.summary.status.as_str(), "succeeded", "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no checkout template"),
        "{}",
        ran.stderr
    );
    assert!(ran.tool_results().iter().any(|r| r.contains("README.md")));
    assert!(ran.summary.files_changed.is_empty());

    // The failed build is remembered: executions on the commit take the
    // plain path for a while instead of each building again. (Cut short here.)
    let templates = world.data_dir().join("templates");
    let failed: Vec<_> = std::fs::read_dir(&templates)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let ran = finish(unshared(layered(world.agentd_run("look").await, &file)));
    assert!(
        ran.stderr.contains("its build failed a moment ago"),
        "{}",
        ran.stderr
    );
    std::fs::remove_file(&failed[0]).unwrap();

    // With a template made, the overlay is not there for the sandbox: it
    // refuses to start rather than commit the removal of every file.
    let command = layered(world.agentd_run("look").await, &file);
    assert_eq!(finish(command).summary.status.as_str(), "succeeded");
    let ran = finish(unshared(layered(world.agentd_run("look").await, &file)));
    assert_eq!(ran.summary.status.as_str(), "failed", "{}", ran.stderr);
    let reason = ran.summary.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("the layered repository is not in the sandbox"),
        "{reason}"
    );
    assert!(ran.summary.files_changed.is_empty());
    assert!(ran.summary.bundle_path.is_none());
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_without_the_layered_repository_commits_nothing() {
    // A layered workspace as a supervisor that cannot see agentd's mounts
    // would hand it to its collector: the writable layer's folder there, the
    // repository an empty folder.
    let workspace = tempfile::Builder::new()
        .prefix("adlayer")
        .tempdir_in("/tmp")
        .unwrap();
    let root = workspace.path();
    let sample = tempfile::Builder::new()
        .prefix("adlayer")
        .tempdir_in("/tmp")
        .unwrap();
    sample_repo(&sample.path().join("repo"));
    let mirror = sample.path().join("mirror.git");
    git(
        sample.path(),
        &["clone", "--quiet", "--mirror", "repo", "mirror.git"],
    );
    let base = String::from_utf8(
        std::process::Command::new("git")
            .args(["-C", &mirror.display().to_string(), "rev-parse", "main"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    std::fs::create_dir(root.join(".layer")).unwrap();
    std::fs::create_dir(root.join("repo")).unwrap();
    std::process::Command::new("chown")
        .args(["10001:10001", &root.display().to_string()])
        .args([root.join("repo").display().to_string()])
        .status()
        .unwrap();
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "0",
            "--cap-drop",
            "ALL",
        ])
        .args([
            "--cap-add",
            "SETUID",
            "--cap-add",
            "SETGID",
            "--cap-add",
            "SETPCAP",
        ])
        .args(["--init", "-v"])
        .arg(format!("{}:/workspace", root.display()))
        .arg("-v")
        .arg(format!("{}:/mirror/repo.git:ro", mirror.display()))
        .arg("-e")
        .arg(format!("AGENTD_BASE={base}"))
        .args([
            "-e",
            "AGENTD_BRANCH=agent/x",
            "-e",
            "AGENTD_GIT_NAME=agentd",
            "-e",
            "AGENTD_GIT_EMAIL=agentd@localhost",
            "-e",
            "AGENTD_COMMIT_MESSAGE=work",
        ])
        .arg(agent_image().await)
        .args([
            "/bin/bash",
            "-c",
            agentd::runner::driver::SCRIPT,
            "agentd-driver",
            "collect",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the layered repository is not in the sandbox"),
        "{stderr}"
    );
    assert!(!root.join(".agentd/out/done").exists());
    assert!(!root.join(".agentd/out/head").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_whose_tree_is_a_link_never_lays_the_host_below_a_sandbox() {
    use agentd::engine::layers;
    // What a hostile image's builder could leave: the checkout folder a link
    // to a host folder (the kernel follows links in an overlay's lowerdir).
    let dir = tempfile::Builder::new()
        .prefix("adtpl")
        .tempdir_in("/tmp")
        .unwrap();
    let (template, build) = (dir.path().join("t.img"), dir.path().join("t.build"));
    layers::make_template(&template, 64 << 20, &build)
        .await
        .unwrap();
    std::fs::create_dir(build.join("tree")).unwrap();
    std::os::unix::fs::symlink("/etc", build.join("tree/repo")).unwrap();
    layers::seal_template(&build).await.unwrap();

    let workspace = dir.path().join("w.img");
    let scratch = dir.path().join("w.build");
    layers::make_template(&workspace, 64 << 20, &scratch)
        .await
        .unwrap();
    layers::seal_template(&scratch).await.unwrap();
    let device = String::from_utf8(
        std::process::Command::new("losetup")
            .args(["--find", "--show", &workspace.display().to_string()])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let stacked = layers::stack(&workspace, &device, &template).await;
    let mounted = crate::common::mounts_below(dir.path());
    agentd::engine::workspace::release_disk(&workspace)
        .await
        .unwrap();
    let error = stacked.expect_err("a linked tree is refused").to_string();
    assert!(error.contains("a link in its place"), "{error}");
    assert!(mounted.is_empty(), "left mounted: {mounted:?}");
    assert!(!layers::is_stacked(&workspace));
}
