//! Local results are served only from inside the execution's folder; a
//! shared location holds what a collecting process published.

use super::*;

#[tokio::test]
async fn only_files_inside_the_execution_folder_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let executions = dir.path().join("executions");
    let root = executions.join("e1");
    std::fs::create_dir_all(root.join("artifacts/sub")).unwrap();
    std::fs::write(root.join("artifacts/sub/ok.txt"), "ok").unwrap();
    std::fs::write(root.join("changes.diff"), "diff").unwrap();
    std::fs::write(dir.path().join("secret"), "no").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("artifacts/link")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("branch.bundle")).unwrap();
    let results = Results::local(&executions);

    let artifact = ResultFile::Artifact("sub/ok.txt".into());
    assert_eq!(results.size("e1", &artifact).await.unwrap(), Some(2));
    assert_eq!(
        results.size("e1", &ResultFile::Diff).await.unwrap(),
        Some(4)
    );
    let bytes: Vec<u8> = futures::StreamExt::collect::<Vec<_>>(
        results.read("e1", &ResultFile::Diff, 1..3).await.unwrap(),
    )
    .await
    .into_iter()
    .flat_map(|chunk| chunk.unwrap().to_vec())
    .collect();
    assert_eq!(bytes, b"if");
    for refused in [
        ResultFile::Artifact("../../secret".into()),
        ResultFile::Artifact("/etc/passwd".into()),
        ResultFile::Artifact("sub/../../../secret".into()),
        ResultFile::Artifact("link".into()),
        ResultFile::Artifact("".into()),
        ResultFile::Artifact("sub".into()),
        ResultFile::Bundle,
    ] {
        assert_eq!(
            results.size("e1", &refused).await.unwrap(),
            None,
            "{refused:?} must not be served"
        );
    }
    assert!(!results.is_shared());
}

#[test]
fn locations_are_named_as_configured() {
    for (text, location) in [
        ("local", ResultsLocation::Local),
        ("database", ResultsLocation::Database),
        (
            "s3://agentd-results",
            ResultsLocation::S3 {
                bucket: "agentd-results".into(),
                prefix: String::new(),
            },
        ),
        (
            "s3://agentd-results/team/a/",
            ResultsLocation::S3 {
                bucket: "agentd-results".into(),
                prefix: "team/a".into(),
            },
        ),
    ] {
        assert_eq!(ResultsLocation::parse(text).unwrap(), location, "{text}");
    }
    for refused in [
        "",
        "s3://",
        "s3://UPPER",
        "file:///tmp",
        "s3://a",
        "databases",
    ] {
        assert!(ResultsLocation::parse(refused).is_err(), "{refused}");
    }
    assert_eq!(
        ResultsLocation::default_for("postgres://u@h/db"),
        ResultsLocation::Database
    );
    assert_eq!(
        ResultsLocation::default_for("sqlite:///tmp/a.db"),
        ResultsLocation::Local
    );
    assert!(
        ResultsLocation::Database
            .check("sqlite:///tmp/a.db")
            .is_err()
    );
    assert!(ResultsLocation::Database.check("postgresql://h/db").is_ok());
}
