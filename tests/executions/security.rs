//! The sandbox as the agent sees it, checked from inside by a scripted Bash call,
//! under the engine's default runtime and under gVisor.

use serde_json::json;

use crate::support::*;

/// The checks, run by the agent's Bash tool inside the container. The secret is
/// rebuilt at run time from two halves so its literal never travels in the tool
/// call, and searched with a pattern read from a pipe (not argv, not a file).
const PROBE: &str = r#"
echo "uid=$(id -u)"
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
echo "no_new_privs=$(setpriv -d 2>/dev/null | sed -n 's/^no_new_privs: //p')"
echo "gvisor=$(dmesg 2>/dev/null | grep -c 'Starting gVisor')"
echo "ifaces=$(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "routes=$(tail -n +2 /proc/net/route | wc -l)"
echo "root_mount=$(awk '$2 == "/" { split($4, o, ","); print o[1] }' /proc/mounts)"
if touch /probe-root 2>/dev/null; then echo root_write=allowed; else echo root_write=refused; fi
if touch /workspace/probe-ws 2>/dev/null; then echo workspace_write=allowed; else echo workspace_write=refused; fi
for s in /var/run/docker.sock /run/docker.sock; do [ -e "$s" ] && echo "docker_socket=$s"; done
echo "docker_socket_check=done"
half="$AGENTD_SECRET_A"; secret="${half}$AGENTD_SECRET_B"
hits=$(grep -rslF -f <(printf '%s' "$secret") /proc/[0-9]*/environ /proc/[0-9]*/cmdline /home /tmp /workspace /etc /run /mirror 2>/dev/null | grep -v "^/proc/$$/" | wc -l)
echo "secret_hits=$hits"
echo "sandbox_key=$ANTHROPIC_API_KEY"
if (exec 3<>/dev/tcp/1.1.1.1/443) 2>/dev/null; then echo outbound=open; else echo outbound=blocked; fi
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_is_hardened_and_holds_no_secret() {
    probe_the_sandbox(Runtime::Default).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_gvisor_the_sandbox_is_hardened_and_holds_no_secret() {
    let Some(gvisor) = gvisor().await else { return };
    probe_the_sandbox(gvisor).await;
}

async fn probe_the_sandbox(runtime: Runtime) {
    let world = World::new();
    let secret = format!("sk-ant-api03-agentdtest-{}", uuid::Uuid::new_v4().simple());
    let (a, b) = secret.split_at(14);
    // The halves reach the sandbox only through the scripted tool call, as an
    // inline assignment, never as the whole secret.
    let command = format!("export AGENTD_SECRET_A='{a}' AGENTD_SECRET_B='{b}'\n{PROBE}");
    let model = model(json!({"turns": [bash(&command), done()]})).await;

    let mut run = world.agentd_run_under("inspect the sandbox", runtime).await;
    run.env("ANTHROPIC_API_KEY", &secret)
        .env("ANTHROPIC_BASE_URL", model.base_url());
    let ran = finish(run);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let report = ran
        .tool_results()
        .into_iter()
        .find(|text| text.contains("uid="))
        .expect("the probe's output");
    let value = |key: &str| -> String {
        report
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in probe output:\n{report}"))
            .trim()
            .to_string()
    };
    let has = |key: &str| {
        report
            .lines()
            .any(|line| line.starts_with(&format!("{key}=")))
    };
    assert_ne!(value("uid"), "0");
    assert_eq!(value("uid"), "10001");
    assert_eq!(value("CapEff"), "0000000000000000");
    assert_eq!(value("no_new_privs"), "1", "{report}");
    assert_eq!(value("netdevs"), "lo");
    assert_eq!(value("routes"), "0");
    assert_eq!(value("root_mount"), "ro", "{report}");
    match runtime {
        Runtime::Default => {
            assert_eq!(value("gvisor"), "0", "{report}");
            assert_eq!(value("NoNewPrivs"), "1");
            // Docker's default seccomp profile.
            assert_eq!(value("Seccomp"), "2");
            assert_eq!(value("ifaces"), "lo");
        }
        Runtime::Gvisor => {
            // gVisor's own kernel answers: its boot log, no NoNewPrivs line
            // in /proc (prctl still says 1, above), no seccomp filter of
            // Docker's on the agent (gVisor filters its own host calls), no
            // /sys/class/net.
            assert_eq!(value("gvisor"), "1", "{report}");
            assert!(!has("NoNewPrivs") || value("NoNewPrivs") == "1", "{report}");
            assert_eq!(value("Seccomp"), "0", "{report}");
            assert_eq!(value("ifaces"), "", "{report}");
        }
    }
    assert_eq!(value("root_write"), "refused");
    assert_eq!(value("workspace_write"), "allowed");
    assert!(!report.contains("docker_socket=/"), "{report}");
    assert_eq!(value("docker_socket_check"), "done");
    assert_eq!(value("secret_hits"), "0", "{report}");
    assert_eq!(value("sandbox_key"), "agentd-sandbox-has-no-key");
    assert_eq!(value("outbound"), "blocked");

    // Upstream saw the real key (added by the gateway), never the placeholder.
    let requests = model.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.x_api_key.as_deref(), Some(secret.as_str()));
        assert!(request.authorization.is_none());
    }
    // The key is nowhere in what agentd wrote.
    for path in crate::common::walk(&world.data_dir())
        .into_iter()
        .filter(|p| p.is_file())
    {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found in {}",
            path.display()
        );
    }
    assert!(!ran.stderr.contains(&secret));
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}
