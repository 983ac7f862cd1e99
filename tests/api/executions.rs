//! Submitting, reading and listing executions.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_submitted_execution_runs_to_success_with_the_scripted_usage() {
    let app = spawn_app(writing_scenario(), 4).await;
    let mut request = app.request("Add a note");
    request["agent_id"] = json!("coder-7");
    request["task_id"] = json!("JIRA-42");
    request["branch_template"] = json!("agent/{agent_id}-{task_id}/{short_id}");
    let answer = app.post_json("/v1/executions", &request, None).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let created = answer.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        answer.header("location"),
        Some(format!("/v1/executions/{id}").as_str())
    );
    assert!(answer.header("idempotent-replayed").is_none());
    assert!(
        matches!(
            created["status"].as_str(),
            Some("queued" | "preparing" | "running")
        ),
        "{created}"
    );
    assert_eq!(created["prompt"], "Add a note");
    assert_eq!(created["limits"]["timeout"], "4m");
    let branch = format!("agent/coder-7-JIRA-42/{}", &id[id.len() - 8..]);
    assert_eq!(created["branch"], branch);
    assert_eq!(created["agent_id"], "coder-7");
    assert_eq!(
        created["branch_template"],
        "agent/{agent_id}-{task_id}/{short_id}"
    );
    for internal in ["request_hash", "owner", "lease_expires_at", "log_cursor"] {
        assert!(
            created.get(internal).is_none(),
            "{internal} leaked: {created}"
        );
    }
    let links = &created["links"];
    for (name, suffix) in [
        ("self", ""),
        ("events", "/events"),
        ("diff", "/diff"),
        ("bundle", "/bundle"),
        ("artifacts", "/artifacts"),
        ("cancel", "/cancel"),
    ] {
        assert_eq!(links[name], format!("/v1/executions/{id}{suffix}"));
    }

    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["usage"]["input_tokens"], 30, "{done}");
    assert_eq!(done["usage"]["output_tokens"], 15, "{done}");
    assert_eq!(done["tool_calls"], 2, "{done}");
    assert_eq!(done["result"], "Added notes/hello.txt.");
    assert_eq!(done["has_diff"], true);
    assert_eq!(done["branch"], branch);
    assert_eq!(done["task_id"], "JIRA-42");
    // The work is on the named branch in the bundle handed back.
    let bundle = app.get(&format!("/v1/executions/{id}/bundle")).await;
    assert_eq!(bundle.status, 200);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bundle.bytes).unwrap();
    let heads = std::process::Command::new("git")
        .args(["bundle", "list-heads"])
        .arg(file.path())
        .output()
        .unwrap();
    let heads = String::from_utf8_lossy(&heads.stdout);
    assert!(heads.contains(&format!("refs/heads/{branch}")), "{heads}");
    assert!(done["finished_at"].is_string());
    assert!(done["reason"].is_null());
    assert!(
        app.model.requests().len() >= 3,
        "the agent talked to the scripted model through the gateway"
    );

    // The metrics saw it (counters are process-wide: tests in this binary
    // share them); read with a Prometheus text-format parser.
    let metrics = crate::metrics::scrape(&app, None).await;
    let finished = crate::metrics::total(
        &metrics,
        "agentd_executions_finished_total",
        &[("tenant", "default"), ("status", "succeeded")],
    );
    assert!(finished >= 1.0, "{finished}");
    let submitted = [
        ("method", "POST"),
        ("route", "/v1/executions"),
        ("status", "202"),
    ];
    assert!(crate::metrics::total(&metrics, "agentd_http_requests_total", &submitted) >= 1.0);
    assert!(metrics.families.contains_key("agentd_queue_depth"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_replays_the_same_execution_and_refuses_another_request() {
    let app = spawn_app(writing_scenario(), 0).await;
    let request = app.request("Once only");
    let first = app
        .post_json("/v1/executions", &request, Some("retry-1"))
        .await;
    assert_eq!(first.status, 202);
    assert!(first.header("idempotent-replayed").is_none());
    let id = first.json()["id"].as_str().unwrap().to_string();

    let again = app
        .post_json("/v1/executions", &request, Some("retry-1"))
        .await;
    assert_eq!(again.status, 202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], id);
    assert_eq!(again.json()["idempotency_key"], "retry-1");

    let other = app
        .post_json(
            "/v1/executions",
            &app.request("Something else"),
            Some("retry-1"),
        )
        .await;
    other.assert_error(422, "idempotency_conflict", Some("Idempotency-Key"));

    let fresh = app
        .post_json("/v1/executions", &request, Some("retry-2"))
        .await;
    assert_eq!(fresh.status, 202);
    assert_ne!(fresh.json()["id"], id);
    app.finish().await;
}

/// A template may name a branch the repository already has — its default
/// branch here. The work lands on that name in the bundle; the repository
/// and agentd's mirror of it keep their own `main`.
#[tokio::test(flavor = "multi_thread")]
async fn a_branch_named_like_the_default_branch_carries_the_work_and_moves_nothing() {
    let app = spawn_app(writing_scenario(), 4).await;
    let main_before = git_out(&app.repo, &["rev-parse", "main"]);
    let mut request = app.request("Add a note");
    request["branch_template"] = json!("main");
    let answer = app.post_json("/v1/executions", &request, None).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["branch"], "main");
    let bundle = app.get(&format!("/v1/executions/{id}/bundle")).await;
    assert_eq!(bundle.status, 200);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bundle.bytes).unwrap();
    let heads = git_out(
        &app.repo,
        &["bundle", "list-heads", &file.path().display().to_string()],
    );
    let head = done["head_commit"].as_str().unwrap();
    assert_eq!(heads, format!("{head} refs/heads/main"));
    assert_ne!(head, main_before);
    assert_eq!(git_out(&app.repo, &["rev-parse", "main"]), main_before);
    app.finish().await;
}

/// git in `dir`, its trimmed output.
fn git_out(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_newest_first_and_filters() {
    let app = spawn_app(writing_scenario(), 0).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.submit(&format!("task {n}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let other_dir = tempfile::tempdir().unwrap();
    sample_repo(other_dir.path());
    let other = app
        .post_json(
            "/v1/executions",
            &json!({"repo": other_dir.path().display().to_string(), "prompt": "elsewhere"}),
            None,
        )
        .await;
    assert_eq!(other.status, 202);
    let other_id = other.json()["id"].as_str().unwrap().to_string();
    let other_repo = other.json()["repo"].as_str().unwrap().to_string();
    let repo = app.execution(&ids[0]).await["repo"]
        .as_str()
        .unwrap()
        .to_string();

    // Newest first, two at a time, following the cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/executions?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.json());
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let cursor: String =
                    url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
                path = format!("/v1/executions?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    let mut expected: Vec<String> = ids.iter().cloned().chain([other_id.clone()]).collect();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    // Filters.
    app.client
        .post(app.url(&format!("/v1/executions/{}/cancel", ids[1])))
        .send()
        .await
        .unwrap();
    let ids_of = |page: serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let cancelled = app.get("/v1/executions?status=cancelled").await.json();
    assert_eq!(ids_of(cancelled), vec![ids[1].clone()]);
    let queued = app
        .get("/v1/executions?status=queued&limit=200")
        .await
        .json();
    assert_eq!(ids_of(queued).len(), 5);
    let encoded: String = url::form_urlencoded::byte_serialize(repo.as_bytes()).collect();
    let mine = app
        .get(&format!("/v1/executions?repo={encoded}"))
        .await
        .json();
    assert_eq!(ids_of(mine).len(), 5);
    let encoded: String = url::form_urlencoded::byte_serialize(other_repo.as_bytes()).collect();
    let theirs = app
        .get(&format!("/v1/executions?repo={encoded}&status=queued"))
        .await
        .json();
    assert_eq!(ids_of(theirs), vec![other_id]);
    let none = app
        .get("/v1/executions?repo=%2Fno%2Fsuch%2Frepo")
        .await
        .json();
    assert!(ids_of(none).is_empty());
    app.finish().await;
}
