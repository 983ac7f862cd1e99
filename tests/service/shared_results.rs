//! Replicas with their own data directories on one database: whichever
//! replica ran an execution, every replica serves its diff, bundle and
//! artifacts — whole, or one range of bytes — from where results are kept
//! (PostgreSQL chunks, or an S3 bucket on a real S3-protocol server), and
//! replays its cassette.

use std::path::Path;
use std::time::Duration;

use agentd::execution::Status;
use reqwest::StatusCode;
use serde_json::json;

use crate::s3::S3Server;
use crate::support::*;

/// Three MiB and a bit: more than three database chunks.
const BIG: u64 = 3 * 1024 * 1024 + 12_345;

fn scenario() -> serde_json::Value {
    json!({"turns": [
        bash(&format!(
            "head -c {BIG} /dev/urandom > \"$AGENTD_ARTIFACTS_DIR/big.bin\"; \
             echo shared > /workspace/repo/shared.txt"
        )),
        done()
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_serves_the_results_from_postgres() {
    let database = fresh_postgres_database().await;
    served_by_another_replica(&database, "database", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_serves_the_results_from_an_s3_bucket() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(scratch.path(), "agentd-results");
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // SQLite is shared by the two processes here; the results are not.
    let database = format!("sqlite://{}/shared.db", scratch.path().display());
    served_by_another_replica(&database, "s3://agentd-results/team-a", &env).await;
    let stored = scratch.path().join("agentd-results/team-a/executions");
    assert!(stored.is_dir(), "nothing was written to the bucket");
}

async fn served_by_another_replica(database: &str, results: &str, env: &[(&str, &str)]) {
    let world = World::new(scenario());
    let (one, two) = (world.root.path().join("one"), world.root.path().join("two"));
    let flags = ["--database-url", database, "--results", results];
    let first = world.serve_with(&one.join("data"), &one.join("run"), &flags, env);
    let mut request = world.request("write");
    request.record = true;
    let id = first.submit(&request).await;
    all_events(&first.client, &id).await;
    let ran = first.client.execution(&id).await.unwrap();
    assert_eq!(ran.status, Status::Succeeded, "{}", first.log());
    drop(first);

    let second = world.serve_with(&two.join("data"), &two.join("run"), &flags, env);
    let local = one.join("data/executions").join(&id);
    let http = reqwest::Client::new();
    for (route, file) in [
        ("diff", local.join("changes.diff")),
        ("bundle", local.join("branch.bundle")),
        ("artifacts/big.bin", local.join("artifacts/big.bin")),
    ] {
        let expected = std::fs::read(&file).unwrap();
        let size = expected.len() as u64;
        let url = format!("{}/v1/executions/{id}/{route}", second.url);
        let whole = http.get(&url).send().await.unwrap();
        assert_eq!(whole.status(), StatusCode::OK, "{route}: {}", second.log());
        assert_eq!(
            header(&whole, "content-length"),
            size.to_string(),
            "{route}"
        );
        assert_eq!(header(&whole, "accept-ranges"), "bytes");
        assert!(
            whole.bytes().await.unwrap() == expected,
            "{route}: other bytes"
        );

        let (start, end) = (size / 3, (size / 3 + (1 << 20) + 7).min(size - 1));
        for (range, from, to) in [
            (format!("bytes={start}-{end}"), start, end),
            (format!("bytes={start}-"), start, size - 1),
            ("bytes=-10".to_string(), size - 10, size - 1),
        ] {
            let part = get(&http, &url, &range).await;
            assert_eq!(
                part.status(),
                StatusCode::PARTIAL_CONTENT,
                "{route} {range}"
            );
            assert_eq!(
                header(&part, "content-range"),
                format!("bytes {from}-{to}/{size}")
            );
            assert_eq!(header(&part, "content-length"), (to - from + 1).to_string());
            let bytes = part.bytes().await.unwrap();
            assert!(
                bytes[..] == expected[from as usize..=to as usize],
                "{route} {range}: other bytes"
            );
        }
        let past = get(&http, &url, &format!("bytes={size}-")).await;
        assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{route}");
        assert_eq!(header(&past, "content-range"), format!("bytes */{size}"));
        let body: serde_json::Value = serde_json::from_slice(&past.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "range_not_satisfiable");

        // Ranges a client should not send: answered whole or by the rules,
        // never with more bytes than the file or an error of the server's.
        for range in [
            "bytes=0-18446744073709551615".to_string(),
            "bytes=-99999999999999999999".to_string(),
            "bytes=0-1,5-9".to_string(),
            "bytes=-5-".to_string(),
            "items=0-1".to_string(),
            format!("bytes={}-{}", size - 1, 1),
        ] {
            let answer = get(&http, &url, &range).await;
            let status = answer.status();
            assert!(
                matches!(status.as_u16(), 200 | 206 | 416),
                "{route} {range}: {status}"
            );
            let length: usize = header(&answer, "content-length").parse().unwrap();
            let bytes = answer.bytes().await.unwrap();
            assert_eq!(bytes.len(), length, "{route} {range}");
            if status.as_u16() != 416 {
                assert!(length as u64 <= size, "{route} {range}");
            }
        }
    }
    // Names that climb out of the execution's results are not in its list,
    // whichever storage holds them: the other files of the same execution,
    // another execution's, the bucket's or the database's neighbours.
    for path in [
        "..%2Fchanges.diff",
        "..%2F..%2F..%2Fexecutions",
        "big.bin%2F..%2F..%2Fbranch.bundle",
        "%2Fetc%2Fpasswd",
        "big.bin%00",
    ] {
        let answer = http
            .get(format!(
                "{}/v1/executions/{id}/artifacts/{path}",
                second.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        std::fs::metadata(local.join("artifacts/big.bin"))
            .unwrap()
            .len(),
        BIG
    );

    // The cassette recorded on the first replica replays on the second.
    let mut replay = world.request("write again");
    replay.replay = Some(id.clone());
    let again = second.submit(&replay).await;
    all_events(&second.client, &again).await;
    let replayed = second.client.execution(&again).await.unwrap();
    assert_eq!(replayed.status, Status::Succeeded, "{}", second.log());
    assert_eq!(replayed.files_changed, ran.files_changed);
    drop(second);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_nothing_left(&id, &one.join("run"));
    assert_nothing_left(&again, &two.join("run"));
    sweep_workspaces(&one);
}

async fn get(http: &reqwest::Client, url: &str, range: &str) -> reqwest::Response {
    http.get(url).header("range", range).send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Nothing of the two replicas' workspaces is left (their images live in
/// their own data directories, released when each execution ended).
fn sweep_workspaces(dir: &Path) {
    let images = dir.join("data/workspaces");
    let left: Vec<_> = std::fs::read_dir(&images)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "workspace images left: {left:?}");
}
