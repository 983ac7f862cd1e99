//! One sandbox floods its model socket with thousands of connections while a
//! second execution runs on the same `agentd serve`: the second must finish
//! with all its results, the API must keep answering, and agentd's descriptors
//! must stay bounded.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentd::execution::AgentEvent;
use agentd::execution::{EventBody, ExecutionRequest, Status};
use serde_json::json;

use crate::support::*;

/// Seconds the flood lasts.
const FLOOD_SECS: u64 = 75;
/// Processes flooding, and connections each tries to hold (the sandbox's
/// open-files limit is 4096 per process).
const FLOODERS: usize = 6;
const PER_FLOODER: usize = 3500;

/// Holds as many connections to the model socket as it can, without blocking.
const FLOOD_PL: &str = r#"
use strict; use Socket; use Fcntl;
my ($want, $secs) = @ARGV; my @held; my $busy = 0; my $until = time + $secs;
while (time < $until) {
  if (@held < $want) {
    socket(my $fh, PF_UNIX, SOCK_STREAM, 0) or do { select(undef, undef, undef, 0.05); next };
    fcntl($fh, F_SETFL, fcntl($fh, F_GETFL, 0) | O_NONBLOCK);
    if (connect($fh, pack_sockaddr_un("/run/agentd/llm.sock")) || $!{EINPROGRESS}) { push @held, $fh }
    else { $busy++; close $fh; select(undef, undef, undef, 0.01) }
  } else { select(undef, undef, undef, 0.2) }
}
print "held ", scalar(@held), " busy $busy\n";
"#;

/// The one scenario both executions play: the flooding one finds `FLOOD` in
/// its repository, the other does honest work.
fn scenario() -> serde_json::Value {
    let work = format!(
        "if [ -f /workspace/repo/FLOOD ]; then\n\
         cat > /tmp/flood.pl <<'PERL'\n{FLOOD_PL}\nPERL\n\
         for i in $(seq {FLOODERS}); do perl /tmp/flood.pl {PER_FLOODER} {FLOOD_SECS} & done; wait\n\
         else echo calm > /workspace/repo/calm.txt; fi"
    );
    json!({"turns": [
        bash(&work),
        {"content": [{"type": "tool_use", "name": "Write",
                      "input": {"file_path": "/workspace/repo/result.txt", "content": "finished\n"}}],
         "usage": {"input_tokens": 10, "output_tokens": 10}},
        done()
    ]})
}

fn request(repo: &Path, prompt: &str) -> ExecutionRequest {
    serde_json::from_value(json!({
        "repo": repo, "prompt": prompt, "limits": {"timeout": "4m"}
    }))
    .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_in_one_sandbox_does_not_starve_another() {
    let world = World::new(scenario());
    let flood_repo = world.root.path().join("flood");
    sample_repo(&flood_repo);
    std::fs::write(flood_repo.join("FLOOD"), "").unwrap();
    git(&flood_repo, &["add", "FLOOD"]);
    git(&flood_repo, &["commit", "--quiet", "-m", "flood"]);

    let server = world.serve(&["--max-concurrent", "2"]);
    let pid = server.child.id();
    let flood = server.submit(&request(&flood_repo, "flood")).await;
    let watcher = Watcher::start(&server.client, &flood);
    wait_until(
        &server.client,
        &watcher,
        &flood,
        Duration::from_secs(120),
        |_, events| has(events, "tool_call"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Watch agentd while the other execution runs: its descriptors, and /healthz.
    let stop = Arc::new(AtomicBool::new(false));
    let most_fds = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let probe = {
        let (stop, most_fds, probes, failures, slowest) = (
            stop.clone(),
            most_fds.clone(),
            probes.clone(),
            failures.clone(),
            slowest.clone(),
        );
        let health = format!("{}/healthz", server.url);
        tokio::spawn(async move {
            // A new connection per probe: accepting one needs a free descriptor.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                most_fds.fetch_max(open_fds(pid), Ordering::Relaxed);
                let started = Instant::now();
                let answer = http
                    .get(&health)
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await;
                let took = started.elapsed();
                probes.fetch_add(1, Ordering::Relaxed);
                let failure = match answer {
                    Ok(response) if response.status().is_success() => None,
                    Ok(response) => Some(response.status().to_string()),
                    Err(error) => Some(error.to_string()),
                };
                if let Some(failure) = failure {
                    failures.lock().unwrap().push(failure);
                }
                {
                    let mut slowest = slowest.lock().unwrap();
                    *slowest = (*slowest).max(took);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let started = Instant::now();
    let calm = server.submit(&request(&world.repo, "calm")).await;
    let events = all_events(&server.client, &calm).await;
    let calm_took = started.elapsed();
    let execution = server.client.execution(&calm).await.unwrap();
    let flood_state = server.client.execution(&flood).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    probe.await.unwrap();

    eprintln!(
        "calm execution took {calm_took:?} (flood still running: {}); agentd held at most {} descriptors; \
         /healthz: {} probes, slowest {:?}, failures {:?}",
        !flood_state.status.is_final(),
        most_fds.load(Ordering::Relaxed),
        probes.load(Ordering::Relaxed),
        slowest.lock().unwrap(),
        failures.lock().unwrap()
    );
    assert!(
        !flood_state.status.is_final(),
        "the flood must still be running while the other execution finishes: {flood_state:?}"
    );
    assert_eq!(
        execution.status,
        Status::Succeeded,
        "{:?}\n{}",
        execution.reason,
        server.log()
    );
    let mut paths: Vec<&str> = execution
        .files_changed
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    paths.sort();
    assert_eq!(paths, ["calm.txt", "result.txt"]);
    assert!(execution.has_diff && execution.has_bundle, "{execution:?}");
    let diff = world.root.path().join("calm.diff");
    assert!(
        server
            .client
            .download(&execution.links.diff, &diff)
            .await
            .unwrap()
    );
    let diff = std::fs::read_to_string(&diff).unwrap();
    assert!(
        diff.contains("+calm") && diff.contains("+finished"),
        "{diff}"
    );
    let bundle = world.root.path().join("calm.bundle");
    assert!(
        server
            .client
            .download(&execution.links.bundle, &bundle)
            .await
            .unwrap()
    );
    assert!(std::fs::metadata(&bundle).unwrap().len() > 0);
    assert_whole_log(&events);

    assert!(
        failures.lock().unwrap().is_empty(),
        "/healthz failed during the flood"
    );
    assert!(*slowest.lock().unwrap() < Duration::from_secs(2));
    let most = most_fds.load(Ordering::Relaxed);
    assert!(
        most < 500,
        "agentd held {most} descriptors during the flood"
    );

    // The flooding execution ends too, and nothing of either is left.
    let flood_events = all_events(&server.client, &flood).await;
    assert!(agentd::client::is_final(flood_events.last().unwrap()));
    // The flood was real: the sandbox held thousands of connections (most of
    // them in the socket's backlog, never accepted).
    let report: String = flood_events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Agent(AgentEvent::ToolResult { content, .. }) => Some(content.clone()),
            _ => None,
        })
        .collect();
    let held: usize = report
        .lines()
        .filter_map(|line| line.strip_prefix("held "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    eprintln!("the flood: {}", report.trim());
    assert!(
        held >= 1000,
        "the flood held only {held} connections:\n{report}"
    );
    assert_nothing_left(&calm, &world.run_dir());
    assert_nothing_left(&flood, &world.run_dir());
}
