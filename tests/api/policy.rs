//! The admins' policy as tenants meet it: caps refused naming the field, the
//! asked and the allowed value, or clamped and said so; repository sources
//! refused with one answer whatever the host holds; the daily spend refused
//! at submission and cut off mid-run by the gateway; models, runtimes; every
//! change and refusal in the audit log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

pub(crate) const ADMIN: &str = "admin-credential-for-policy-tests-0123";

/// Calls the API with one credential.
pub(crate) struct As<'a> {
    app: &'a App,
    bearer: String,
}

impl As<'_> {
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let url = self.app.url(path);
        let mut request = match method {
            "get" => self.app.client.get(url),
            "post" => self.app.client.post(url),
            "put" => self.app.client.put(url),
            other => panic!("method {other}"),
        };
        request = request.header("authorization", format!("Bearer {}", self.bearer));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let answer = read(request.send().await.unwrap()).await;
        if answer.status == 202
            && path == "/v1/executions"
            && let Some(id) = answer.json()["id"].as_str()
        {
            self.app.created(id);
        }
        answer
    }

    pub(crate) async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let answer = self.send(method, path, Some(&body)).await;
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.bytes)
        );
        answer.json()
    }

    pub(crate) async fn submit(&self, request: &Value) -> Answer {
        self.send("post", "/v1/executions", Some(request)).await
    }

    pub(crate) async fn wait_final(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let shown = self
                .send("get", &format!("/v1/executions/{id}"), None)
                .await
                .json();
            if crate::common::is_final_status(shown["status"].as_str().unwrap_or_default()) {
                return shown;
            }
            assert!(started.elapsed() < Duration::from_secs(180), "{shown}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The SSE event names of a finished execution, in order.
    async fn event_names(&self, id: &str) -> Vec<(String, Value)> {
        let answer = self
            .send("get", &format!("/v1/executions/{id}/events"), None)
            .await;
        assert_eq!(answer.status, 200);
        let text = String::from_utf8_lossy(&answer.bytes).to_string();
        let mut events = Vec::new();
        let mut name = String::new();
        for line in text.lines() {
            if let Some(event) = line.strip_prefix("event: ") {
                name = event.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                events.push((
                    name.clone(),
                    serde_json::from_str(data).unwrap_or(Value::Null),
                ));
            }
        }
        events
    }
}

/// A service with an admin credential, and a tenant `t` with a key.
pub(crate) async fn service(scenario: Value) -> (App, String) {
    service_with(scenario, agentd::api::ApiConfig::default()).await
}

/// [`service`] with the API's `config` (its credentials replaced).
pub(crate) async fn service_with(scenario: Value, config: agentd::api::ApiConfig) -> (App, String) {
    let config = agentd::api::ApiConfig {
        auth: agentd::api::AuthConfig::with_admin(ADMIN),
        ..config
    };
    let app = spawn_app_configured(scenario, 2, config).await;
    let admin = admin(&app);
    admin
        .ok("post", "/v1/admin/tenants", json!({"name": "t"}))
        .await;
    let key = admin
        .ok("post", "/v1/admin/tenants/t/keys", json!({}))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    (app, key)
}

pub(crate) fn admin(app: &App) -> As<'_> {
    As {
        app,
        bearer: ADMIN.into(),
    }
}

pub(crate) fn tenant<'a>(app: &'a App, key: &str) -> As<'a> {
    As {
        app,
        bearer: key.to_string(),
    }
}

/// The repository's folder as the allowed host-path prefix.
pub(crate) fn local_paths(app: &App) -> Value {
    json!([app.repo.parent().unwrap().display().to_string()])
}

/// `base` with `patch`'s objects merged in.
fn merged(mut base: Value, patch: Value) -> Value {
    for (key, value) in patch.as_object().unwrap() {
        match (base.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(more)) => {
                for (k, v) in more {
                    inner.insert(k.clone(), v.clone());
                }
            }
            _ => {
                base[key] = value.clone();
            }
        }
    }
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn caps_refuse_naming_field_asked_and_allowed_or_clamp_and_say_so() {
    let (app, key) = service(writing_scenario()).await;
    let admin = admin(&app);
    let t = tenant(&app, &key);
    let caps = json!({
        "cpus": 1.5, "memory_bytes": 1_073_741_824u64, "pids": 200, "timeout": "5m",
        "max_turns": 8, "max_budget_usd": 0.5, "max_tokens": 100_000,
        "max_requests": 20, "max_artifact_bytes": 1_048_576, "workspace_bytes": 1_073_741_824u64,
    });
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"caps": caps, "sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let above = [
        (
            "limits.cpus",
            json!({"limits": {"cpus": 2.0}}),
            json!(2.0),
            json!(1.5),
        ),
        (
            "limits.memory_bytes",
            json!({"limits": {"memory_bytes": 3_221_225_472u64}}),
            json!(3_221_225_472u64),
            json!(1_073_741_824u64),
        ),
        (
            "limits.pids",
            json!({"limits": {"pids": 300}}),
            json!(300),
            json!(200),
        ),
        (
            "limits.timeout",
            json!({"limits": {"timeout": "10m"}}),
            json!("10m"),
            json!("5m"),
        ),
        (
            "agent.max_turns",
            json!({"agent": {"max_turns": 9}}),
            json!(9),
            json!(8),
        ),
        (
            "agent.max_budget_usd",
            json!({"agent": {"max_budget_usd": 1.0}}),
            json!(1.0),
            json!(0.5),
        ),
        (
            "limits.max_tokens",
            json!({"limits": {"max_tokens": 200_000}}),
            json!(200_000),
            json!(100_000),
        ),
        (
            "limits.max_requests",
            json!({"limits": {"max_requests": 50}}),
            json!(50),
            json!(20),
        ),
        (
            "limits.max_artifact_bytes",
            json!({"limits": {"max_artifact_bytes": 2_097_152}}),
            json!(2_097_152),
            json!(1_048_576),
        ),
        (
            "limits.workspace_bytes",
            json!({"limits": {"workspace_bytes": 2_147_483_648u64}}),
            json!(2_147_483_648u64),
            json!(1_073_741_824u64),
        ),
    ];
    let mut everything = app.request("every cap at once");
    for (field, patch, asked, allowed) in &above {
        let answer = t
            .submit(&merged(app.request("too much"), patch.clone()))
            .await;
        answer.assert_error(422, "policy_refused", Some(field));
        let error = &answer.json()["error"];
        assert_eq!(error["asked"], *asked, "{field}: {error}");
        assert_eq!(error["allowed"], *allowed, "{field}: {error}");
        assert_eq!(
            error["rule"],
            format!("caps.{}", field.split('.').nth(1).unwrap())
        );
        everything = merged(everything, patch.clone());
    }

    // Clamping: the same request over every cap runs, lowered, and says so.
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"caps": caps, "over_cap": "clamp", "sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let answer = t.submit(&everything).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let created = answer.json();
    let clamped: Vec<String> = created["policy"]["clamped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_string())
        .collect();
    for (field, ..) in &above {
        assert!(
            clamped.contains(&field.to_string()),
            "{field} not in {clamped:?}"
        );
    }
    let id = created["id"].as_str().unwrap();
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["policy"]["clamped"], created["policy"]["clamped"]);
    let events = t.event_names(id).await;
    let clamp_event = events
        .iter()
        .find(|(name, _)| name == "policy_clamped")
        .unwrap_or_else(|| panic!("no policy_clamped event in {events:?}"));
    assert_eq!(clamp_event.1["clamped"], created["policy"]["clamped"]);

    // Every refusal is in the audit log with its rule, and the policy changes too.
    let log = admin
        .send("get", "/v1/admin/audit?limit=200", None)
        .await
        .json();
    let items = log["items"].as_array().unwrap();
    for (field, ..) in &above {
        let rule = format!("caps.{}", field.split('.').nth(1).unwrap());
        assert!(
            items
                .iter()
                .any(|e| e["action"] == "execution.create" && e["rule"] == rule.as_str()),
            "no refusal by {rule} in the audit log"
        );
    }
    let updates = items
        .iter()
        .filter(|e| e["action"] == "policy.update" && e["target"] == "tenant:t")
        .count();
    assert_eq!(updates, 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_sources_all_get_the_same_answer() {
    let (app, key) = service(writing_scenario()).await;
    let admin = admin(&app);
    let t = tenant(&app, &key);
    let outside = tempfile::tempdir().unwrap();
    let link = app.repo.parent().unwrap().join("escape");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();

    let mut answers = Vec::new();
    for repo in [
        "/etc/shadow".to_string(),
        "/root/.ssh".to_string(),
        "/no/such/dir".to_string(),
        "relative/path".to_string(),
        "file:///etc".to_string(),
        app.repo.display().to_string(),
        "http://127.0.0.1:9/x.git".to_string(),
        "http://localhost:22/x.git".to_string(),
        "https://[::1]/x.git".to_string(),
        "git://10.0.0.1/x.git".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "ssh://git@192.168.1.1/x.git".to_string(),
        "https://no-such-host.invalid/x.git".to_string(),
    ] {
        let answer = t.submit(&json!({"repo": repo, "prompt": "probe"})).await;
        answer.assert_error(422, "policy_refused", Some("repo"));
        answers.push((repo, answer.json()["error"]["message"].clone()));
    }
    let first = &answers[0].1;
    for (repo, message) in &answers {
        assert_eq!(message, first, "{repo} is answered differently");
    }
    assert!(
        !first.as_str().unwrap().contains("exist"),
        "the answer must not speak of existence: {first}"
    );

    // Under a prefix the admin allows, a host path is accepted — but not a
    // link out of it.
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let answer = t.submit(&app.request("allowed")).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let done = t.wait_final(answer.json()["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let answer = t
        .submit(&json!({"repo": link.display().to_string(), "prompt": "escape"}))
        .await;
    answer.assert_error(422, "policy_refused", Some("repo"));
    assert_eq!(answer.json()["error"]["message"], *first);

    // Private hosts allowed by the admin: the fetch fails, and the reason
    // says only that (not git's words, which would tell ports apart).
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"sources": {"private_hosts": true}}),
        )
        .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let answer = t
        .submit(&json!({"repo": format!("http://127.0.0.1:{port}/x.git"), "prompt": "p"}))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let done = t.wait_final(answer.json()["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["reason"], "repository: the repository could not be fetched",
        "{done}"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn models_runtimes_and_images_follow_their_lists() {
    let (app, key) = service(writing_scenario()).await;
    let admin = admin(&app);
    let t = tenant(&app, &key);
    admin
        .ok(
            "put",
            "/v1/admin/policy",
            json!({"models": ["claude-sonnet-*"], "force_runtime": "runsc",
                   "sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let answer = t
        .submit(&merged(
            app.request("p"),
            json!({"agent": {"model": "claude-opus-4-1"}}),
        ))
        .await;
    answer.assert_error(422, "policy_refused", Some("agent.model"));
    let answer = t
        .submit(&merged(
            app.request("p"),
            json!({"sandbox": {"runtime": "runc"}}),
        ))
        .await;
    answer.assert_error(422, "policy_refused", Some("sandbox.runtime"));
    let answer = t
        .submit(&merged(
            app.request("p"),
            json!({"sandbox": {"image": "busybox:latest"}}),
        ))
        .await;
    answer.assert_error(422, "policy_refused", Some("sandbox.image"));

    // The tenant reads the policy it runs under.
    let own = t.send("get", "/v1/policy", None).await;
    assert_eq!(own.status, 200);
    let own = own.json();
    assert_eq!(own["tenant"], "t");
    assert_eq!(own["governed"], true);
    assert_eq!(own["effective"]["force_runtime"], "runsc");
    // A tenant override wins over the global policy.
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"models": ["*"]}),
        )
        .await;
    let shown = admin
        .send("get", "/v1/admin/tenants/t/policy", None)
        .await
        .json();
    assert_eq!(shown["policy"], json!({"models": ["*"]}));
    assert_eq!(shown["effective"]["models"], json!(["*"]));
    assert_eq!(shown["effective"]["force_runtime"], "runsc");
    // A bad document names its field.
    let answer = admin
        .send(
            "put",
            "/v1/admin/policy",
            Some(&json!({"caps": {"cpus": -1}})),
        )
        .await;
    answer.assert_error(422, "invalid_field", Some("caps.cpus"));
    let answer = admin
        .send("put", "/v1/admin/policy", Some(&json!({"capz": {}})))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.json());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_spend_stops_a_running_execution_and_refuses_the_next() {
    // Each turn costs 10 input and 5 output tokens of claude-sonnet-4-5:
    // $0.000105. A limit of $0.0002 is crossed after the second turn.
    let (app, key) = service(writing_scenario()).await;
    let admin = admin(&app);
    let t = tenant(&app, &key);
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"daily_spend_usd": 0.0002, "sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let answer = t
        .submit(&merged(
            app.request("spend"),
            json!({"agent": {"max_budget_usd": 0.5}}),
        ))
        .await;
    let error = answer.json();
    answer.assert_error(422, "policy_refused", Some("agent.max_budget_usd"));
    assert_eq!(error["error"]["rule"], "daily_spend_usd");
    assert_eq!(error["error"]["allowed"], json!(0.0002));
    let answer = t.submit(&app.request("spend")).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    let done = t.wait_final(&id).await;
    assert_eq!(done["status"], "budget_exceeded", "{done}");
    assert!(
        done["reason"]
            .as_str()
            .is_some_and(|r| r.contains("daily_spend_usd")),
        "{done}"
    );
    // Two answers got through; every later request was refused.
    assert_eq!(done["conversation"]["answers"], 2, "{done}");
    assert_eq!(done["gateway"]["cost_usd"], json!(0.00021), "{done}");
    // Spent for today: the next submission is refused at once.
    let answer = t.submit(&app.request("more")).await;
    answer.assert_error(422, "policy_refused", Some("agent.max_budget_usd"));
    assert_eq!(answer.json()["error"]["rule"], "daily_spend_usd");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_tools_run_for_a_tenant_and_each_decision_is_an_event() {
    let bash = |command: &str| {
        json!({"content": [{"type": "tool_use", "name": "Bash",
                            "input": {"command": command, "description": "step"}}],
               "usage": {"input_tokens": 10, "output_tokens": 5}})
    };
    let scenario = json!({"turns": [
        bash("touch /workspace/repo/not-allowed-ran"),
        bash("echo allowed"),
        {"content": [{"type": "text", "text": "Done."}],
         "usage": {"input_tokens": 10, "output_tokens": 5}}
    ]});
    let (app, key) = service(scenario).await;
    let admin = admin(&app);
    let t = tenant(&app, &key);
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"sources": {"local_paths": local_paths(&app)},
                   "tools": {"allow": ["Bash(echo *)"], "only_allowed": true}}),
        )
        .await;
    let answer = t.submit(&app.request("only what is allowed")).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let created = answer.json();
    assert_eq!(
        created["policy"]["tools"]["only_allowed"], true,
        "{created}"
    );
    let id = created["id"].as_str().unwrap();
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let changed = done["files_changed"].as_array().unwrap();
    assert!(
        changed.iter().all(|f| f["path"] != "not-allowed-ran"),
        "a call no allow rule matches ran: {changed:?}"
    );
    let decisions: Vec<Value> = t
        .event_names(id)
        .await
        .into_iter()
        .filter(|(name, _)| name == "tool_decision")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(decisions.len(), 2, "{decisions:#?}");
    assert_eq!(decisions[0]["decision"], "deny", "{decisions:#?}");
    assert_eq!(decisions[1]["decision"], "allow", "{decisions:#?}");
    assert_eq!(decisions[1]["rule"], "Bash(echo *)", "{decisions:#?}");
    assert_eq!(decisions[1]["rule_source"], "policy", "{decisions:#?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_outside_the_list_is_refused_by_the_gateway_mid_run() {
    // The request names no model, so admission lets it through; the CLI's
    // own model requests (its default model, an Opus one in 2.1.330 — a
    // first version of this test allowed `claude-opus-*` and passed them)
    // are the gateway's to refuse.
    let (app, key) = service(writing_scenario()).await;
    admin(&app)
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"models": ["model-nobody-runs-*"], "sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let t = tenant(&app, &key);
    let answer = t.submit(&app.request("write a note")).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let done = t.wait_final(answer.json()["id"].as_str().unwrap()).await;
    assert_ne!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["conversation"]["answers"], 0,
        "an answer got through: {done}"
    );
    assert!(done["gateway"]["cost_usd"].is_null(), "{done}");
    assert!(
        done["files_changed"].as_array().unwrap().is_empty(),
        "the agent acted without a model: {done}"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_budget_counts_the_earlier_steps() {
    let (app, key) = service(writing_scenario()).await;
    let admin = admin(&app);
    let t = tenant(&app, &key);
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"conversation_budget": true, "sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let parent = t.submit(&app.request("write a note")).await;
    assert_eq!(parent.status, 202, "{}", parent.json());
    let parent = parent.json()["id"].as_str().unwrap().to_string();
    let done = t.wait_final(&parent).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["policy"]["conversation_budget"], true, "{done}");
    let used = done["gateway"]["requests"].as_u64().unwrap();
    assert!(used >= 3, "{done}");
    // The follow-up may make as many requests as the parent made: the
    // conversation has used them all, so it stops before asking the model.
    let child = t
        .ok(
            "post",
            &format!("/v1/executions/{parent}/follow-ups"),
            json!({"prompt": "and more", "limits": {"timeout": "4m", "max_requests": used}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.created(&child);
    let after = t.wait_final(&child).await;
    assert_eq!(after["status"], "budget_exceeded", "{after}");
    assert_eq!(after["gateway"]["requests"], 0, "{after}");
    // With one request more than the parent used, the follow-up runs.
    let second = t
        .ok(
            "post",
            &format!("/v1/executions/{parent}/follow-ups"),
            json!({"prompt": "and more", "limits": {"timeout": "4m", "max_requests": used + 5}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.created(&second);
    let after = t.wait_final(&second).await;
    assert_eq!(after["status"], "succeeded", "{after}");
    app.finish().await;
}
