//! A tenant naming a repository inside the operator's network, in every
//! spelling the URL parser, git and the resolver accept: each is refused with
//! the one answer every refused source gets, and nothing ever connects.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::policy::{service, tenant};
use crate::support::*;

/// A TCP port on loopback that counts who connects to it.
struct Trap {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Trap {
    fn open() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_in_any_spelling_is_refused_and_never_reached() {
    let (app, key) = service(writing_scenario()).await;
    let t = tenant(&app, &key);
    let trap = Trap::open();
    let p = trap.port;
    let reference = t
        .submit(&json!({"repo": "/etc", "prompt": "probe"}))
        .await
        .json()["error"]["message"]
        .clone();

    let spellings = [
        format!("http://2130706433:{p}/x"),
        format!("http://0x7f.1:{p}/x"),
        format!("http://0177.0.0.1:{p}/x"),
        format!("git://2130706433:{p}/x"),
        format!("git://0x7f.1:{p}/x"),
        format!("git://0177.0.0.1:{p}/x"),
        format!("ssh://2130706433:{p}/x"),
        format!("http://[::ffff:127.0.0.1]:{p}/x"),
        format!("http://[::ffff:7f00:1]:{p}/x"),
        format!("http://[0:0:0:0:0:0:0:1]:{p}/x"),
        format!("git://[::1]:{p}/x"),
        format!("ssh://[::1]:{p}/x"),
        format!("https://[::1%25lo]:{p}/x"),
        format!("git://[fe80::1%25lo]:{p}/x"),
        format!("http://localhost.:{p}/x"),
        format!("git://localhost.:{p}/x"),
        format!("git://LOCALHOST:{p}/x"),
        format!("http://public.example@127.0.0.1:{p}/x"),
        format!("http://%6c%6fcalhost:{p}/x"),
        format!("git://%6c%6fcalhost:{p}/x"),
        format!("git://%31%32%37.0.0.1:{p}/x"),
        format!("  http://127.0.0.1:{p}/x \n"),
        format!("git://127.0.0.1 :{p}/x"),
        format!("ssh://host:22:{p}/x"),
        // git decodes git:// and ssh:// URLs before it splits them: the URL
        // parser sees the host 8.8.8.8, git connects to 127.0.0.1.
        format!("git://127.0.0.1:{p}%2f@8.8.8.8/x"),
        format!("ssh://127.0.0.1:{p}%2f@8.8.8.8/x"),
        format!("git://127.0.0.1:{p}%2F@8.8.8.8:9418/x"),
        "127.0.0.1:repo".to_string(),
        "git@localhost:repo".to_string(),
        "http://127.0.0.1:0/x".to_string(),
        "http://127.0.0.1:65535/x".to_string(),
    ];
    let mut accepted = Vec::new();
    for repo in &spellings {
        let answer = t.submit(&json!({"repo": repo, "prompt": "probe"})).await;
        if answer.status == 202 {
            accepted.push((
                repo.clone(),
                answer.json()["id"].as_str().unwrap().to_string(),
            ));
            continue;
        }
        answer.assert_error(422, "policy_refused", Some("repo"));
        assert_eq!(answer.json()["error"]["message"], reference, "{repo}");
    }
    for (_, id) in &accepted {
        t.wait_final(id).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let accepted: Vec<&String> = accepted.iter().map(|(repo, _)| repo).collect();
    assert_eq!(
        (accepted, trap.connections()),
        (Vec::<&String>::new(), 0),
        "sources admitted, and connections to the loopback trap"
    );
    app.finish().await;
}
