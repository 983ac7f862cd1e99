//! Pushing over HTTP with basic authentication, to git's own backend.

use std::time::{Duration, Instant};

use agentd::git::push::{PushError, RemoteAuth};

use crate::common::remotes::{HttpRemote, free_port, ref_of};
use crate::support::{Team, retries};

fn basic(password: &str) -> RemoteAuth {
    RemoteAuth::Basic {
        username: "bot".into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn a_branch_lands_with_the_token_and_a_wrong_one_fails_at_once_without_retrying() {
    let team = Team::new("app");
    let server = HttpRemote::start(team.tmp.path(), 0, "bot", "s3cret-token-1");
    let url = server.url("app");
    let (bundle, head) = team.work("agent/http", "feature.txt", "from the agent\n");

    // A wrong token: refused by the remote, reported at once, not retried.
    let started = Instant::now();
    let error = team
        .deliver(
            &bundle,
            "agent/http",
            &url,
            basic("wrong-token-9"),
            retries(4, 500),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Auth { .. }), "{error}");
    assert_eq!(error.status(), "auth_failed");
    assert!(!error.to_string().contains("wrong-token-9"), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "no backoff on a refused credential: {:?}",
        started.elapsed()
    );
    let refused = server.answered(401);
    assert!(
        (1..=3).contains(&refused),
        "one attempt's worth of 401s, not a storm: {refused}"
    );
    assert_eq!(ref_of(&team.bare, "refs/heads/agent/http"), None);

    // The right one: the branch lands at the bundle's commit.
    let delivered = team
        .deliver(
            &bundle,
            "agent/http",
            &url,
            basic("s3cret-token-1"),
            retries(4, 500),
        )
        .await
        .unwrap();
    assert_eq!(delivered.commit, head);
    assert_eq!(delivered.attempts, 1);
    assert_eq!(ref_of(&team.bare, "refs/heads/agent/http"), Some(head));
    // The credential went as a header, never into a URL the server logged.
    let log = std::fs::read_to_string(&server.access_log).unwrap();
    assert!(!log.contains("s3cret-token-1"), "{log}");
    // Nothing of the scratch repository (where the key was) is left.
    assert!(!team.tmp.path().join("scratch").exists());
}

#[tokio::test]
async fn a_remote_that_comes_back_is_reached_by_retrying_with_backoff() {
    let team = Team::new("late");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/git/late.git");
    let (bundle, head) = team.work("agent/late", "late.txt", "late\n");
    let root = team.tmp.path().to_path_buf();
    // The server starts a while after the first attempt was refused.
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(900));
        HttpRemote::start(&root, port, "bot", "token-late-1")
    });
    let started = Instant::now();
    let delivered = team
        .deliver(
            &bundle,
            "agent/late",
            &url,
            basic("token-late-1"),
            retries(6, 400),
        )
        .await
        .unwrap();
    let _server = starter.join().unwrap();
    assert!(delivered.attempts >= 2, "{delivered:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(ref_of(&team.bare, "refs/heads/agent/late"), Some(head));
}

#[tokio::test]
async fn an_unreachable_remote_is_given_up_after_the_bounded_attempts() {
    let team = Team::new("gone");
    let url = format!("http://127.0.0.1:{}/git/gone.git", free_port());
    let (bundle, _) = team.work("agent/gone", "x.txt", "x\n");
    let started = Instant::now();
    let error = team
        .deliver(
            &bundle,
            "agent/gone",
            &url,
            basic("token-gone-1"),
            retries(3, 200),
        )
        .await
        .unwrap_err();
    match &error {
        PushError::Unreachable { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("unreachable: {other}"),
    }
    // Two pauses: at least half of 200 ms and of 400 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
