//! The gateway seen from a hostile sandbox: the agent's Bash tool sends
//! traversal targets, foreign headers and bodies that are not Messages
//! requests, through socat's TCP port and straight to the unix socket. None of
//! it may reach upstream (the scripted model logs every request it receives).

use serde_json::json;

use crate::support::*;

/// Run inside the sandbox: every request prints `<via> <method> <target> => <status line>`.
const ATTACK: &str = r#"
send() { # via method target [extra header] [body]
  local via=$1 method=$2 target=$3 extra=${4:-x-probe: 1} body=${5:-}
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$target" "$extra" "${#body}" "$body" \
    | socat -t 5 - "$via,shut-none" 2>/dev/null | head -n 1 | tr -d '\r'
}
ok_body='{"model":"probe-model","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
for via in TCP:127.0.0.1:8080 UNIX-CONNECT:/run/agentd/llm.sock; do
  for target in '/v1/models/../files' '/v1/models/%2e%2e/files' '/v1/models/%2E%2e/files' \
                '/v1/models/../messages/batches' '/v1/models/../../etc/passwd' \
                '/v1/models/%2f..%2ffiles' '/v1/models/..\files' '/v1/models/..%5cfiles' \
                '/v1/files' '/v1/models?after_id=../../files' 'http://x/v1/files'; do
    echo "$via GET $target => $(send "$via" GET "$target")"
  done
  for target in '/v1/messages/../files' '//v1/messages' '/v1/messages/batches' \
                'http://x/v1/messages' '/v1/messages?beta=true&x=../../files'; do
    echo "$via POST $target => $(send "$via" POST "$target" 'x-probe: 1' "$ok_body")"
  done
  echo "$via POST not-messages => $(send "$via" POST /v1/messages 'x-probe: 1' '{"file_id":"file_1"}')"
  echo "$via POST cookie => $(send "$via" POST /v1/messages 'Cookie: session=stolen' "$ok_body")"
done
# bash's own /dev/tcp, no socat in the way on the client side.
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /v1/models/%%2e%%2e/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
echo "devtcp GET /v1/models/%2e%2e/files => $(head -n 1 <&3 | tr -d '\r')"
exec 3<&-
echo "attack done"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_gateway_from_inside_never_reach_upstream() {
    let world = World::new();
    let model = model(json!({"turns": [bash(ATTACK), done()]})).await;
    let mut run = world.agentd_run("probe the gateway").await;
    run.env("ANTHROPIC_API_KEY", "sk-ant-test-narrow-door")
        .env("ANTHROPIC_BASE_URL", model.base_url());
    let ran = finish(run);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let report = ran
        .tool_results()
        .into_iter()
        .find(|text| text.contains("attack done"))
        .expect("the attack's output");
    let lines: Vec<&str> = report.lines().filter(|l| l.contains(" => ")).collect();
    assert_eq!(lines.len(), 2 * (11 + 5 + 2) + 1, "{report}");
    for line in &lines {
        let (request, answer) = line.split_once(" => ").unwrap();
        if request.ends_with("POST cookie") {
            assert!(answer.starts_with("HTTP/1.1 200"), "{line}");
        } else {
            assert!(answer.starts_with("HTTP/1.1 4"), "{line}\n{report}");
        }
    }
    // Upstream saw the CLI's model requests and the two plain ones, nothing else,
    // and never the sandbox's cookie or probe header.
    let requests = model.requests();
    let mut plain = 0;
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/v1/messages"),
            "{request:?}"
        );
        assert!(request.model.is_some(), "{request:?}");
        for (name, _) in &request.headers {
            assert!(name != "cookie" && name != "x-probe", "{request:?}");
        }
        if request.model.as_deref() == Some("probe-model") {
            plain += 1;
        }
    }
    assert_eq!(plain, 2, "{requests:?}");
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}
