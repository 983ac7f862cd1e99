//! Delivery end to end (issue 11): a tenant's execution whose request asks
//! for `push` and `merge_into` lands its branch, and the merge, on the team's
//! remote — git's HTTP backend behind lighttpd, pushes behind basic auth —
//! with the credential the admin registered, sealed at rest, seen by no
//! container, event, record or audit entry. A delivery that fails loses
//! nothing and is retried by hand.

use serde_json::{Value, json};

use crate::common::remotes::{HttpRemote, bare_remote, ref_of};
use crate::support::{App, read, spawn_app_tuned, writing_scenario};

const ADMIN: &str = "admin-credential-for-delivery-0123456789";
const TOKEN: &str = "glpat-delivery-token-0123456789";

/// A server with an admin credential and a secret key, retrying deliveries
/// quickly.
async fn app() -> App {
    spawn_app_tuned(
        writing_scenario(),
        2,
        agentd::api::ApiConfig {
            auth: agentd::api::AuthConfig::with_admin(ADMIN),
            ..agentd::api::ApiConfig::default()
        },
        |config, _| {
            config.secret_key = Some(
                agentd::tenancy::SecretKey::from_text("a-secret-key-for-the-delivery-test-0123")
                    .unwrap(),
            );
            config.delivery_retry.base = std::time::Duration::from_millis(100);
        },
    )
    .await
}

async fn call(
    app: &App,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .header("authorization", format!("Bearer {bearer}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let answer = read(request.send().await.unwrap()).await;
    let json = serde_json::from_slice(&answer.bytes).unwrap_or(Value::Null);
    (answer.status, json)
}

async fn wait_final(app: &App, id: &str, key: &str) -> Value {
    for _ in 0..600 {
        let (_, execution) = call(app, "GET", &format!("/v1/executions/{id}"), key, None).await;
        if crate::support::is_final(&execution) {
            return execution;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("{id} did not finish");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_branch_is_pushed_and_merged_with_its_sealed_credential() {
    let app = app().await;
    let remotes = tempfile::tempdir().unwrap();
    let (bare, main) = bare_remote(remotes.path(), "team");
    crate::common::git(&bare, &["branch", "integration", "main"]);
    let server = HttpRemote::public_read(remotes.path(), "bot", TOKEN);
    let url = server.url("team");

    let (status, _) = call(
        &app,
        "POST",
        "/v1/admin/tenants",
        ADMIN,
        Some(json!({"name": "acme"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, policy) = call(
        &app,
        "PUT",
        "/v1/admin/tenants/acme/policy",
        ADMIN,
        Some(json!({"sources": {"private_hosts": true, "schemes": ["http", "https", "ssh"]}})),
    )
    .await;
    assert_eq!(status, 200, "{policy}");
    let (_, issued) = call(
        &app,
        "POST",
        "/v1/admin/tenants/acme/keys",
        ADMIN,
        Some(json!({})),
    )
    .await;
    let key = issued["key"].as_str().unwrap().to_string();

    // The credential, registered by the admin, is never shown again.
    let (status, registered) = call(
        &app,
        "POST",
        "/v1/admin/tenants/acme/credentials",
        ADMIN,
        Some(json!({"kind": "https", "username": "bot", "token": TOKEN, "repo_pattern": format!("{}*", &url[..url.len() - 8])})),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    assert!(!registered.to_string().contains(TOKEN));
    let (status, listed) = call(
        &app,
        "GET",
        "/v1/admin/tenants/acme/credentials",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(TOKEN), "{listed}");
    // A tenant may not register or list credentials.
    let (status, _) = call(
        &app,
        "GET",
        "/v1/admin/tenants/acme/credentials",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 403);

    let request = json!({
        "repo": url,
        "prompt": "Add a note",
        "agent_id": "coder",
        "task_id": "T-7",
        "branch_template": "agent/{agent_id}-{task_id}",
        "push": true,
        "merge_into": "integration",
    });
    let (status, created) = call(&app, "POST", "/v1/executions", &key, Some(request)).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_final(&app, &id, &key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let delivery = &done["delivery"];
    assert_eq!(delivery["status"], "merged", "{done}");
    assert_eq!(delivery["branch"], "agent/coder-T-7");
    assert_eq!(delivery["remote"], url);
    assert_eq!(delivery["base_commit"], main);
    assert_eq!(delivery["stats"]["files_changed"], 1);
    let head = done["head_commit"].as_str().unwrap();
    assert_eq!(delivery["commit"], head);
    assert_eq!(
        ref_of(&bare, "refs/heads/agent/coder-T-7").as_deref(),
        Some(head)
    );
    // main had not moved: the integration branch fast-forwarded to the work.
    assert_eq!(
        ref_of(&bare, "refs/heads/integration").as_deref(),
        Some(head)
    );
    assert_eq!(ref_of(&bare, "refs/heads/main"), Some(main));

    // Delivering again changes nothing and says so.
    let (status, again) = call(
        &app,
        "POST",
        &format!("/v1/executions/{id}/deliver"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["delivery"]["status"], "merged", "{again}");

    // The credential is nowhere a tenant or the audit log can read.
    let (_, events) = call(
        &app,
        "GET",
        &format!("/v1/executions/{id}/events?format=json"),
        &key,
        None,
    )
    .await;
    let (_, audit) = call(&app, "GET", "/v1/admin/audit?limit=200", ADMIN, None).await;
    for (what, text) in [
        ("record", done.to_string()),
        ("events", events.to_string()),
        ("audit", audit.to_string()),
    ] {
        assert!(!text.contains(TOKEN), "the token in the {what}");
    }
    let database = std::fs::read(app.root().join("agentd.db")).unwrap();
    assert!(
        !database.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token is stored in the clear"
    );

    // The tenant names another host as its repository: the admin's
    // credential is for the team's host alone, so the other host never
    // sees it (were it sent, this server, which accepts it, would take the
    // push).
    let elsewhere = tempfile::tempdir().unwrap();
    let (other_bare, _) = bare_remote(elsewhere.path(), "bait");
    let attacker = HttpRemote::public_read(elsewhere.path(), "bot", TOKEN);
    let request = json!({"repo": attacker.url("bait"), "prompt": "Add a note", "push": true});
    let (_, created) = call(&app, "POST", "/v1/executions", &key, Some(request)).await;
    let bait = created["id"].as_str().unwrap().to_string();
    let done = wait_final(&app, &bait, &key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["delivery"]["status"], "auth_failed", "{done}");
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(ref_of(&other_bare, &format!("refs/heads/{branch}")), None);

    // Without its credential the next delivery fails, loses nothing, and is
    // retried by hand once the admin registers one again.
    let credential = registered["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/v1/admin/tenants/acme/credentials/{credential}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let request = json!({"repo": url, "prompt": "Add a note", "push": true});
    let (_, created) = call(&app, "POST", "/v1/executions", &key, Some(request)).await;
    let second = created["id"].as_str().unwrap().to_string();
    let done = wait_final(&app, &second, &key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["delivery"]["status"], "auth_failed", "{done}");
    assert_eq!(done["delivery"]["attempts"], 1, "{done}");
    let branch = done["branch"].as_str().unwrap().to_string();
    assert_eq!(ref_of(&bare, &format!("refs/heads/{branch}")), None);
    let (status, _) = call(
        &app,
        "GET",
        &format!("/v1/executions/{second}/bundle"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "the work is kept");
    let (status, _) = call(
        &app,
        "POST",
        "/v1/admin/tenants/acme/credentials",
        ADMIN,
        Some(json!({"kind": "https", "username": "bot", "token": TOKEN, "repo_pattern": url})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, redelivered) = call(
        &app,
        "POST",
        &format!("/v1/executions/{second}/deliver"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{redelivered}");
    assert_eq!(redelivered["delivery"]["status"], "pushed", "{redelivered}");
    assert_eq!(
        ref_of(&bare, &format!("refs/heads/{branch}")).as_deref(),
        done["head_commit"].as_str()
    );
    // Another tenant's id is not found, and a queued one cannot deliver.
    let (status, _) = call(
        &app,
        "POST",
        "/v1/executions/00000000-0000-0000-0000-000000000000/deliver",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    app.finish().await;
}

/// A tenant's git policy: every execution pushed and merged, committed as
/// the tenant's identity with its message template — the request asks for
/// none of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_git_policy_pushes_merges_and_signs_its_work() {
    let app = app().await;
    let remotes = tempfile::tempdir().unwrap();
    let (bare, main) = bare_remote(remotes.path(), "team");
    let server = HttpRemote::public_read(remotes.path(), "bot", TOKEN);
    let url = server.url("team");
    call(
        &app,
        "POST",
        "/v1/admin/tenants",
        ADMIN,
        Some(json!({"name": "acme"})),
    )
    .await;
    let policy = json!({
        "sources": {"private_hosts": true},
        "git": {
            "push": true,
            "merge_into": "integration",
            "author_name": "Acme Agents",
            "author_email": "agents@acme.example",
            "commit_message": "{prompt}\n\nAgent-Execution: {execution_id}\nTenant: {tenant}"
        },
        "hooks": {"setup": [{"command": "echo tenant > tenant-setup.txt"}]}
    });
    let (status, body) = call(
        &app,
        "PUT",
        "/v1/admin/tenants/acme/policy",
        ADMIN,
        Some(policy),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, refused) = call(
        &app,
        "PUT",
        "/v1/admin/tenants/acme/policy",
        ADMIN,
        Some(json!({"git": {"author_email": "no at sign"}})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "git.author_email");
    let (_, issued) = call(
        &app,
        "POST",
        "/v1/admin/tenants/acme/keys",
        ADMIN,
        Some(json!({})),
    )
    .await;
    let key = issued["key"].as_str().unwrap().to_string();
    call(
        &app,
        "POST",
        "/v1/admin/tenants/acme/credentials",
        ADMIN,
        Some(json!({"kind": "https", "username": "bot", "token": TOKEN, "repo_pattern": url})),
    )
    .await;

    let (status, created) = call(
        &app,
        "POST",
        "/v1/executions",
        &key,
        Some(json!({
            "repo": url,
            "prompt": "Add a note\nwith details",
            "hooks": {"teardown": [{"command": "echo request > request-teardown.txt"}]}
        })),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["push"], true, "the policy's default");
    assert_eq!(created["merge_into"], "integration");
    // The tenant's hooks around the request's.
    assert_eq!(
        created["hooks"]["setup"][0]["command"],
        "echo tenant > tenant-setup.txt"
    );
    assert_eq!(
        created["hooks"]["teardown"][0]["command"],
        "echo request > request-teardown.txt"
    );
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_final(&app, &id, &key).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["delivery"]["status"], "merged", "{done}");
    let changed: Vec<&str> = done["files_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        [
            "notes/hello.txt",
            "request-teardown.txt",
            "tenant-setup.txt"
        ]
    );
    let head = done["head_commit"].as_str().unwrap();
    // Created: the remote had no integration branch.
    assert_eq!(
        ref_of(&bare, "refs/heads/integration").as_deref(),
        Some(head)
    );
    assert_eq!(ref_of(&bare, "refs/heads/main"), Some(main));
    let shown = crate::common::git(
        &bare,
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", head],
    );
    assert_eq!(
        shown.trim(),
        format!(
            "Acme Agents <agents@acme.example>|Acme Agents <agents@acme.example>|Add a note\n\nAgent-Execution: {id}\nTenant: acme"
        )
    );
    // A policy that allows no hooks of a request's own.
    let (status, _) = call(
        &app,
        "PUT",
        "/v1/admin/tenants/acme/policy",
        ADMIN,
        Some(json!({"sources": {"private_hosts": true}, "hooks": {"request_hooks": false}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, refused) = call(
        &app,
        "POST",
        "/v1/executions",
        &key,
        Some(json!({"repo": url, "prompt": "x", "hooks": {"setup": [{"command": "id"}]}})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "hooks", "{refused}");
    app.finish().await;
}
