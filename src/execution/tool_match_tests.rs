use serde_json::json;

use super::*;

fn rules(allow: &[&str], deny: &[&str], only_allowed: bool) -> ToolRules {
    let list = |texts: &[&str], source| {
        texts
            .iter()
            .map(|rule| ToolRule {
                rule: rule.to_string(),
                source,
            })
            .collect()
    };
    ToolRules {
        allow: list(allow, RuleSource::Request),
        deny: list(deny, RuleSource::Policy),
        only_allowed,
    }
}

fn decide(rules: &ToolRules, tool: &str, input: Value) -> (Decision, Option<String>) {
    let verdict = rules.decide(&ToolCall {
        tool,
        input: Some(&input),
    });
    (verdict.decision, verdict.rule)
}

fn bash(command: &str) -> Value {
    json!({"command": command})
}

#[test]
fn deny_wins_and_names_its_rule() {
    let rules = rules(&["Bash(curl *)", "Bash"], &["Bash(curl *)"], false);
    assert_eq!(
        decide(&rules, "Bash", bash("curl http://x")),
        (Decision::Deny, Some("Bash(curl *)".into()))
    );
    assert_eq!(
        decide(&rules, "Bash", bash("ls")),
        (Decision::Allow, Some("Bash".into()))
    );
    let verdict = rules.decide(&ToolCall {
        tool: "Bash",
        input: Some(&bash("curl x")),
    });
    assert_eq!(verdict.source, Some(RuleSource::Policy));
}

#[test]
fn a_denied_command_is_found_in_any_part() {
    let rules = rules(&[], &["Bash(curl *)"], false);
    for command in [
        "curl",
        "curl http://x",
        "ls && curl http://x",
        "echo $(curl x)",
        "FOO=1 timeout 5 curl x",
        "bash -c 'curl x'",
        "c'url' x",
        "$CURL x",
        "\\curl x",
        "echo 'unbalanced",
    ] {
        assert_eq!(
            decide(&rules, "Bash", bash(command)).0,
            Decision::Deny,
            "{command}"
        );
    }
    for command in ["curly", "echo curl", "ls -la", "echo 'curl x'"] {
        assert_eq!(
            decide(&rules, "Bash", bash(command)).0,
            Decision::Allow,
            "{command}"
        );
    }
}

#[test]
fn only_allowed_needs_every_part_allowed() {
    let rules = rules(&["Bash(echo *)", "Read", "Bash(git diff:*)"], &[], true);
    assert_eq!(decide(&rules, "Bash", bash("echo hi")).0, Decision::Allow);
    assert_eq!(
        decide(&rules, "Bash", bash("git diff HEAD")).0,
        Decision::Allow
    );
    assert_eq!(decide(&rules, "Bash", bash("git diffx")).0, Decision::Deny);
    assert_eq!(
        decide(&rules, "Bash", bash("echo hi; touch x")).0,
        Decision::Deny
    );
    assert_eq!(
        decide(&rules, "Bash", bash("echo $(touch x)")).0,
        Decision::Deny
    );
    assert_eq!(decide(&rules, "Bash", bash("$X hi")).0, Decision::Deny);
    assert_eq!(
        decide(&rules, "Read", json!({"file_path": "/a"})).0,
        Decision::Allow
    );
    // Read rules cover the tools that read (Grep, Glob), as in the CLI.
    assert_eq!(
        decide(&rules, "Grep", json!({"pattern": "a"})).0,
        Decision::Allow
    );
    assert_eq!(
        decide(&rules, "WebFetch", json!({"url": "https://a/"})).0,
        Decision::Deny
    );
    let verdict = rules.decide(&ToolCall {
        tool: "Write",
        input: Some(&json!({})),
    });
    assert_eq!(
        verdict,
        Verdict {
            decision: Decision::Deny,
            rule: None,
            source: Some(RuleSource::Policy)
        }
    );
}

#[test]
fn path_rules_cover_the_tools_that_read_or_edit() {
    let rules = rules(&[], &["Read(./.env)", "Edit(//etc/**)"], false);
    assert_eq!(
        decide(
            &rules,
            "Read",
            json!({"file_path": "/workspace/repo/sub/../.env"})
        ),
        (Decision::Deny, Some("Read(./.env)".into()))
    );
    assert_eq!(
        decide(&rules, "Grep", json!({"pattern": "x", "path": ".env"})).0,
        Decision::Deny
    );
    assert_eq!(
        decide(&rules, "Read", json!({"file_path": "README.md"})).0,
        Decision::Allow
    );
    assert_eq!(
        decide(&rules, "Write", json!({"file_path": "/etc/hosts"})).0,
        Decision::Deny
    );
    assert_eq!(
        decide(&rules, "Write", json!({"file_path": "/tmp/x"})).0,
        Decision::Allow
    );
}

#[test]
fn tools_domains_and_servers() {
    let rules = rules(
        &[],
        &["WebFetch(domain:evil.example)", "mcp__github", "WebSearch"],
        false,
    );
    assert_eq!(
        decide(
            &rules,
            "WebFetch",
            json!({"url": "https://user@EVIL.example:443/x"})
        )
        .0,
        Decision::Deny
    );
    assert_eq!(
        decide(&rules, "WebFetch", json!({"url": "https://ok.example/"})).0,
        Decision::Allow
    );
    assert_eq!(
        decide(&rules, "mcp__github__create_issue", json!({})).0,
        Decision::Deny
    );
    assert_eq!(
        decide(&rules, "mcp__githubx__a", json!({})).0,
        Decision::Allow
    );
    assert_eq!(
        decide(&rules, "WebSearch", json!({"query": "a"})).0,
        Decision::Deny
    );
}

#[test]
fn an_unreadable_input_or_specifier_is_taken_the_careful_way() {
    let deny = rules(&[], &["Bash(curl *)", "Frobnicate(x)"], false);
    let unread = |tool| deny.decide(&ToolCall { tool, input: None }).decision;
    assert_eq!(unread("Bash"), Decision::Deny);
    assert_eq!(unread("Read"), Decision::Allow);
    assert_eq!(
        decide(&deny, "Frobnicate", json!({"y": 1})).0,
        Decision::Deny
    );
    let allow = rules(&["Bash(echo *)", "Frobnicate(x)"], &[], true);
    assert_eq!(
        allow
            .decide(&ToolCall {
                tool: "Bash",
                input: None
            })
            .decision,
        Decision::Deny
    );
    assert_eq!(
        decide(&allow, "Frobnicate", json!({"y": 1})).0,
        Decision::Deny
    );
}
