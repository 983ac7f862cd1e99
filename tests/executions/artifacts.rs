//! A hostile artifacts folder: links out of the sandbox are refused, nothing is
//! written outside the execution's data directory.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_artifacts_are_refused_and_nothing_escapes() {
    let world = World::new();
    let hostile = r#"cd "$AGENTD_ARTIFACTS_DIR" &&
ln -s /etc/passwd passwd &&
ln -s ../../../../../../../tmp escape &&
ln -s ../repo/README.md readme-link &&
mkdir -p sub && echo kept > sub/good.txt &&
ln -s good.txt sub/inside-link &&
echo dots > '..dots' &&
ln /workspace/repo/README.md hardlink 2>/dev/null; ls -la"#;
    let file = world.scenario(json!({"turns": [bash(hostile), done()]}));
    let mut command = world.agentd_run("leave hostile artifacts").await;
    command.arg("--scripted-model").arg(&file);
    let ran = finish(command);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let summary = &ran.summary;
    let mut refused: Vec<String> = summary.refused.iter().map(|r| r.path.clone()).collect();
    refused.sort();
    for name in ["passwd", "escape", "readme-link"] {
        assert!(
            refused.iter().any(|p| p.ends_with(name)),
            "{name} not refused: {:?}",
            summary.refused
        );
    }
    for entry in &summary.refused {
        assert!(!entry.reason.is_empty());
    }
    let artifacts = std::path::Path::new(&summary.data_dir).join("artifacts");
    assert_eq!(
        std::fs::read_to_string(artifacts.join("sub/good.txt")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        std::fs::read_to_string(artifacts.join("..dots")).unwrap(),
        "dots\n"
    );
    for name in ["passwd", "escape", "readme-link"] {
        assert!(
            std::fs::symlink_metadata(artifacts.join(name)).is_err(),
            "{name} exists on the host"
        );
    }
    // The only link kept points inside.
    let inside = std::fs::read_link(artifacts.join("sub/inside-link")).unwrap();
    assert_eq!(inside, std::path::Path::new("good.txt"));
    // Nothing appeared beside the execution's folder.
    let executions: Vec<_> = std::fs::read_dir(world.data_dir().join("executions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(executions, vec![summary.id.clone()]);
    let refused_events = ran
        .events()
        .iter()
        .filter(|e| serde_json::to_value(e).unwrap()["type"] == "refused")
        .count();
    assert_eq!(refused_events, summary.refused.len());
    assert_nothing_left(&summary.id, &world.run_dir());
}
