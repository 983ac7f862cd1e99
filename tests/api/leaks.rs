//! A test that fails half-way leaves nothing behind: its running sandboxes,
//! volumes and workspace filesystems are swept when its service is dropped.
//! (A failing test once left two sleeping sandboxes on the engine for every
//! later run to find.)

use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_test_that_panics_mid_run_leaves_nothing_on_the_engine() {
    let (paths, got) = tokio::sync::oneshot::channel();
    let failing = tokio::spawn(async move {
        let app = spawn_app(sleeping_scenario(90), 1).await;
        let id = app.submit("sleep").await["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.wait_for(&id, Duration::from_secs(60), |e| e["status"] == "running")
            .await;
        let _ = paths.send((app.run_dir(), app.root()));
        panic!("a test failing while its execution runs");
    });
    assert!(failing.await.unwrap_err().is_panic());
    let (run_dir, root) = got.await.unwrap();
    // Nothing is left, and nothing comes back a moment later.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        crate::common::assert_run_dir_clean(&run_dir);
        crate::common::assert_no_workspaces(&root);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
