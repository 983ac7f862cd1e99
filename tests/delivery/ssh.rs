//! Pushing over SSH with a key, the server's host key pinned.

use agentd::git::push::{PushError, RemoteAuth};

use crate::common::remotes::{SshRemote, ref_of};
use crate::support::{Team, retries};

#[tokio::test]
async fn a_key_and_the_pinned_host_key_push_and_an_impostor_host_is_refused() {
    let team = Team::new("svc");
    let server = SshRemote::start(team.tmp.path());
    let url = server.url(&team.bare);
    let (bundle, head) = team.work("agent/ssh", "ssh.txt", "over ssh\n");

    // A server presenting a host key other than the pinned one: refused
    // before anything is sent, and not retried.
    let impostor = RemoteAuth::Ssh {
        private_key: server.client_key.clone(),
        known_hosts: server.wrong_known_hosts(team.tmp.path()),
    };
    let error = team
        .deliver(&bundle, "agent/ssh", &url, impostor, retries(3, 300))
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Auth { .. }), "{error}");
    assert!(
        error.to_string().contains("Host key verification failed"),
        "{error}"
    );
    assert_eq!(ref_of(&team.bare, "refs/heads/agent/ssh"), None);

    // No pinned key at all: the same (never StrictHostKeyChecking=no).
    let unpinned = RemoteAuth::Ssh {
        private_key: server.client_key.clone(),
        known_hosts: String::new(),
    };
    let error = team
        .deliver(&bundle, "agent/ssh", &url, unpinned, retries(3, 300))
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Auth { .. }), "{error}");

    // A key the server does not know.
    let stranger = {
        let path = team.tmp.path().join("stranger");
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        std::fs::read_to_string(&path).unwrap()
    };
    let error = team
        .deliver(
            &bundle,
            "agent/ssh",
            &url,
            RemoteAuth::Ssh {
                private_key: stranger,
                known_hosts: server.known_hosts.clone(),
            },
            retries(3, 300),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Auth { .. }), "{error}");
    assert!(error.to_string().contains("Permission denied"), "{error}");

    // The right key and host key: the branch lands.
    let delivered = team
        .deliver(
            &bundle,
            "agent/ssh",
            &url,
            RemoteAuth::Ssh {
                private_key: server.client_key.clone(),
                known_hosts: server.known_hosts.clone(),
            },
            retries(3, 300),
        )
        .await
        .unwrap();
    assert_eq!(delivered.commit, head);
    assert_eq!(ref_of(&team.bare, "refs/heads/agent/ssh"), Some(head));
    assert!(
        !team.tmp.path().join("scratch").exists(),
        "the key file is gone"
    );
}
