//! Downloading an execution's diff, bundle and artifacts.

use sha2::{Digest, Sha256};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn diff_bundle_and_artifacts_download_with_their_length() {
    let app = spawn_app(writing_scenario(), 4).await;
    let id = app.submit("Add a note").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["has_bundle"], true, "{done}");

    let diff = app.get(&format!("/v1/executions/{id}/diff")).await;
    assert_eq!(diff.status, 200);
    assert!(
        diff.header("content-type")
            .unwrap()
            .starts_with("text/x-diff")
    );
    assert_eq!(
        diff.header("content-length"),
        Some(diff.bytes.len().to_string().as_str())
    );
    let text = String::from_utf8(diff.bytes.clone()).unwrap();
    assert!(text.contains("notes/hello.txt"), "{text}");
    assert!(text.contains("+hello from the agent"), "{text}");

    let bundle = app.get(&format!("/v1/executions/{id}/bundle")).await;
    assert_eq!(bundle.status, 200);
    assert_eq!(
        bundle.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        bundle.header("content-length"),
        Some(bundle.bytes.len().to_string().as_str())
    );
    assert_eq!(
        bundle.header("content-disposition"),
        Some(format!("attachment; filename=\"{id}.bundle\"").as_str())
    );
    let file = app.run_dir().with_file_name("downloaded.bundle");
    std::fs::write(&file, &bundle.bytes).unwrap();
    let heads = git(&app.repo, &["bundle", "list-heads", file.to_str().unwrap()]);
    assert!(heads.contains(&format!("agent/{id}")), "{heads}");

    let list = app.get(&format!("/v1/executions/{id}/artifacts")).await;
    assert_eq!(list.status, 200);
    let list = list.json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let entry = &items[0];
    assert_eq!(entry["path"], "reports/summary.txt");
    assert_eq!(
        entry["download"],
        format!("/v1/executions/{id}/artifacts/reports/summary.txt")
    );
    let artifact = app.get(entry["download"].as_str().unwrap()).await;
    assert_eq!(artifact.status, 200);
    assert_eq!(artifact.bytes, b"report body\n");
    assert_eq!(
        artifact.header("content-length"),
        Some(entry["size"].to_string().as_str())
    );
    assert_eq!(
        hex::encode(Sha256::digest(&artifact.bytes)),
        entry["sha256"].as_str().unwrap()
    );

    // Only listed paths, and nothing outside the artifacts folder.
    for path in [
        "reports/other.txt",
        "reports",
        "..%2F..%2Fevents.jsonl",
        "reports/..%2F..%2Fsummary.json",
        "%2Fetc%2Fpasswd",
    ] {
        app.get(&format!("/v1/executions/{id}/artifacts/{path}"))
            .await
            .assert_error(404, "not_found", None);
    }
    app.finish().await;
}
