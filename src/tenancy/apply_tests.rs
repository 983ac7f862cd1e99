use serde_json::json;

use super::*;

fn server() -> ServerSandbox {
    ServerSandbox {
        image: "agentd-agent:1".into(),
        runtime: None,
    }
}

fn request(value: serde_json::Value) -> ExecutionRequest {
    let mut base = json!({"repo": "https://git.example.com/acme/app.git", "prompt": "p"});
    base.as_object_mut()
        .unwrap()
        .extend(value.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

fn policy(value: serde_json::Value) -> Policy {
    serde_json::from_value(value).unwrap()
}

fn run(policy: &Policy, request: &mut ExecutionRequest) -> Result<Applied, PolicyRefusal> {
    let location = request.repo.clone();
    apply(policy, request, &location, &server())
}

#[test]
fn above_a_cap_is_refused_naming_the_field_the_asked_and_the_allowed() {
    let caps = policy(
        json!({"caps": {"cpus": 2, "memory_bytes": 1073741824u64, "timeout": "10m", "max_turns": 5}}),
    );
    for (asked, field, asked_value, allowed_value) in [
        (
            json!({"limits": {"cpus": 4}}),
            "limits.cpus",
            json!(4.0),
            json!(2.0),
        ),
        (
            json!({"limits": {"memory_bytes": 4294967296u64}}),
            "limits.memory_bytes",
            json!(4294967296u64),
            json!(1073741824u64),
        ),
        (
            json!({"limits": {"timeout": "1h"}}),
            "limits.timeout",
            json!("1h"),
            json!("10m"),
        ),
        (
            json!({"agent": {"max_turns": 50}}),
            "agent.max_turns",
            json!(50),
            json!(5),
        ),
    ] {
        let refusal = run(&caps, &mut request(asked.clone())).unwrap_err();
        assert_eq!(refusal.field, field, "{asked}");
        assert_eq!(refusal.asked, Some(asked_value), "{asked}");
        assert_eq!(refusal.allowed, Some(allowed_value), "{asked}");
        assert!(refusal.rule.starts_with("caps."));
    }
}

#[test]
fn clamping_lowers_to_the_cap_and_records_it() {
    let caps = policy(
        json!({"caps": {"cpus": 2, "pids": 100, "max_budget_usd": 1.5}, "over_cap": "clamp"}),
    );
    let mut asked =
        request(json!({"limits": {"cpus": 4, "pids": 64}, "agent": {"max_budget_usd": 9}}));
    let applied = run(&caps, &mut asked).unwrap();
    assert_eq!(asked.limits.cpus, 2.0);
    assert_eq!(asked.limits.pids, 64, "under the cap: kept");
    assert_eq!(asked.agent.max_budget_usd, Some(1.5));
    let fields: Vec<_> = applied
        .policy
        .clamped
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["limits.cpus", "agent.max_budget_usd"]);
    assert_eq!(applied.policy.clamped[0].asked, json!(4.0));
    assert_eq!(applied.policy.clamped[0].allowed, json!(2.0));
}

#[test]
fn defaults_above_a_cap_are_lowered_even_when_the_policy_refuses() {
    let caps = policy(json!({"caps": {"timeout": "5m", "max_tokens": 1000}}));
    let mut asked = request(json!({}));
    let applied = run(&caps, &mut asked).unwrap();
    assert_eq!(asked.limits.timeout, std::time::Duration::from_secs(300));
    assert_eq!(
        asked.limits.max_tokens,
        Some(1000),
        "unlimited becomes the cap"
    );
    assert_eq!(
        applied.policy.clamped.len(),
        1,
        "{:?}",
        applied.policy.clamped
    );
    assert_eq!(applied.policy.clamped[0].field, "limits.timeout");
}

#[test]
fn local_paths_are_refused_without_a_prefix_in_the_same_words() {
    let none = Policy::default();
    let mut messages = std::collections::BTreeSet::new();
    for repo in [
        "/etc/shadow",
        "/root/.ssh",
        "/no/such/path",
        "file:///etc/passwd",
        "/srv/repos/../../etc",
    ] {
        let mut asked = request(json!({"repo": repo}));
        let refusal = run(&none, &mut asked).unwrap_err();
        assert_eq!(refusal.field, "repo");
        messages.insert(refusal.message);
    }
    assert_eq!(messages.len(), 1, "{messages:?}");

    let allowed = policy(json!({"sources": {"local_paths": ["/srv/repos"]}}));
    let mut asked = request(json!({"repo": "/srv/repos/app"}));
    assert_eq!(
        run(&allowed, &mut asked).unwrap().source,
        SourceCheck::Local {
            path: "/srv/repos/app".into(),
            prefixes: vec!["/srv/repos".into()]
        }
    );
    for outside in [
        "/srv/repos-evil/app",
        "/srv/repos/../secret",
        "/srv",
        "file:///srv/repos/../x",
    ] {
        let mut asked = request(json!({"repo": outside}));
        assert!(run(&allowed, &mut asked).is_err(), "{outside}");
    }
}

#[test]
fn schemes_and_url_patterns_limit_network_sources() {
    let narrow = policy(
        json!({"sources": {"schemes": ["https"], "urls": ["https://git.example.com/acme/*"]}}),
    );
    let mut ok = request(json!({}));
    assert_eq!(
        run(&narrow, &mut ok).unwrap().source,
        SourceCheck::Network {
            host: "git.example.com".into(),
            port: 443
        }
    );
    for (repo, rule) in [
        ("http://git.example.com/acme/app.git", "sources.schemes"),
        ("ssh://git@git.example.com/acme/app.git", "sources.schemes"),
        ("git@git.example.com:acme/app.git", "sources.schemes"),
        ("https://git.example.com/other/app.git", "sources.urls"),
        (
            "https://git.example.com.evil.test/acme/app.git",
            "sources.urls",
        ),
    ] {
        let mut asked = request(json!({"repo": repo}));
        assert_eq!(run(&narrow, &mut asked).unwrap_err().rule, rule, "{repo}");
    }
    let mut scp = request(json!({"repo": "git@git.example.com:acme/app.git"}));
    assert_eq!(
        run(&Policy::default(), &mut scp).unwrap().source,
        SourceCheck::Network {
            host: "git.example.com".into(),
            port: 22
        }
    );
}

#[test]
fn images_runtimes_and_models_come_from_their_lists() {
    let open = Policy::default();
    let mut own_image = request(json!({"sandbox": {"image": "agentd-agent:1"}}));
    run(&open, &mut own_image).unwrap();
    let mut other_image = request(json!({"sandbox": {"image": "evil:latest"}}));
    assert_eq!(
        run(&open, &mut other_image).unwrap_err().field,
        "sandbox.image"
    );
    let mut runsc = request(json!({"sandbox": {"runtime": "runsc"}}));
    assert_eq!(run(&open, &mut runsc).unwrap_err().field, "sandbox.runtime");

    let lists = policy(
        json!({"images": ["team/*"], "runtimes": ["runc", "runsc"], "models": ["claude-haiku-*"]}),
    );
    let mut fine = request(
        json!({"sandbox": {"image": "team/agent:2", "runtime": "runsc"}, "agent": {"model": "claude-haiku-4-5"}}),
    );
    let applied = run(&lists, &mut fine).unwrap();
    assert_eq!(applied.policy.models, ["claude-haiku-*"]);
    let mut model = request(json!({"agent": {"model": "claude-opus-4"}}));
    assert_eq!(run(&lists, &mut model).unwrap_err().field, "agent.model");

    let forced = policy(json!({"force_runtime": "runsc"}));
    let mut any = request(json!({}));
    run(&forced, &mut any).unwrap();
    assert_eq!(any.sandbox.runtime.as_deref(), Some("runsc"));
    let mut other = request(json!({"sandbox": {"runtime": "runc"}}));
    assert_eq!(run(&forced, &mut other).unwrap_err().rule, "force_runtime");
}

#[test]
fn tool_rules_join_the_policy_and_the_request_and_an_allow_list_cannot_be_widened() {
    let deny = policy(json!({"tools": {"deny": ["Bash(curl *)"], "allow": ["Read"]}}));
    let mut asked = request(
        json!({"agent": {"allowed_tools": ["Bash(curl *)"], "disallowed_tools": ["WebFetch"]}}),
    );
    let tools = run(&deny, &mut asked).unwrap().policy.tools;
    let texts = |rules: &[ToolRule]| {
        rules
            .iter()
            .map(|r| (r.rule.clone(), r.source))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(&tools.deny),
        [
            ("Bash(curl *)".to_string(), RuleSource::Policy),
            ("WebFetch".to_string(), RuleSource::Request)
        ]
    );
    assert_eq!(
        texts(&tools.allow),
        [
            ("Read".to_string(), RuleSource::Policy),
            ("Bash(curl *)".to_string(), RuleSource::Request)
        ]
    );

    let only = policy(json!({"tools": {"allow": ["Read"], "only_allowed": true}}));
    let tools = run(&only, &mut asked).unwrap().policy.tools;
    assert!(tools.only_allowed);
    assert_eq!(
        texts(&tools.allow),
        [("Read".to_string(), RuleSource::Policy)]
    );
}
