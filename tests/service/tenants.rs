//! The CLI as an operator and a team use it: `agentd admin` creates a tenant,
//! issues its key and sets its policy on a running `agentd serve`; the team's
//! `agentd run --server --token` is refused a host path until the admin
//! allows its folder, then runs.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "operator-credential-for-the-cli-test-01";

fn agentd(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args(args)
        .env("AGENTD_SERVER", &server.url)
        .env("AGENTD_ADMIN_TOKEN", ADMIN)
        .env_remove("AGENTD_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_a_tenant_and_its_policy_from_the_cli() {
    let world = World::new(json!({"turns": [done()]}));
    let token_file = world.root.path().join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).unwrap();
    let server = world.serve(&["--admin-token-file", token_file.to_str().unwrap()]);

    json_of(&agentd(
        &server,
        &["admin", "--json", "tenant", "create", "team-a"],
    ));
    let issued = json_of(&agentd(
        &server,
        &["admin", "--json", "key", "create", "team-a"],
    ));
    let key = issued["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("agentd_"), "{issued}");

    let run = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_agentd"))
            .args(["run", "--server", &server.url, "--json", "--prompt", "hi"])
            .arg("--repo")
            .arg(&world.repo)
            .env("AGENTD_TOKEN", key)
            .env("AGENTD_DATA_DIR", world.root.path().join("client"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    // A host path is not the tenant's to name…
    let refused = run(&key);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("repo"), "{stderr}");
    assert!(
        stderr.contains("is not a repository source this tenant may use"),
        "{stderr}"
    );

    // …until the admin allows its folder.
    let policy = world.root.path().join("policy.json");
    let folder = world.repo.parent().unwrap().display().to_string();
    std::fs::write(
        &policy,
        json!({"sources": {"local_paths": [folder]}, "max_concurrent": 2}).to_string(),
    )
    .unwrap();
    let stored = json_of(&agentd(
        &server,
        &[
            "admin",
            "--json",
            "policy",
            "set",
            "--tenant",
            "team-a",
            "--file",
            policy.to_str().unwrap(),
        ],
    ));
    assert_eq!(stored["effective"]["max_concurrent"], 2, "{stored}");
    let shown = json_of(&agentd(
        &server,
        &["admin", "--json", "policy", "get", "--tenant", "team-a"],
    ));
    assert_eq!(
        shown["policy"]["sources"]["local_paths"][0],
        folder.as_str()
    );

    let ran = run(&key);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(0), "{stderr}");
    let summary: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(summary["status"], "succeeded");

    // The audit log, read from the CLI, has the policy change and the refusal.
    let log = json_of(&agentd(
        &server,
        &["admin", "--json", "audit", "--limit", "100"],
    ));
    let items = log["items"].as_array().unwrap();
    assert!(items.iter().any(|e| e["action"] == "policy.update"));
    assert!(
        items
            .iter()
            .any(|e| e["action"] == "execution.create" && e["rule"] == "sources.local_paths")
    );
    assert!(!log.to_string().contains(&key));
    assert_nothing_left(summary["id"].as_str().unwrap(), &world.run_dir());
}
