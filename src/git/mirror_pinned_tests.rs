//! A tenant's fetch held to its vetted addresses for every git call that
//! reaches the network, the fetch of a ref by name included.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Serves `root`'s files over plain HTTP (git's "dumb" protocol) on
/// loopback; returns the port.
fn serve(root: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or_default();
            let file = root.join(path.trim_start_matches('/'));
            let mut stream = stream;
            match std::fs::read(&file) {
                Ok(body) if file.is_file() => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                }
                _ => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    port
}

#[test]
fn a_ref_fetched_by_name_goes_to_the_vetted_address() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("up");
    std::fs::create_dir(&upstream).unwrap();
    run(&upstream, &["init", "--quiet", "-b", "trunk"]);
    std::fs::write(upstream.join("a.txt"), "a\n").unwrap();
    run(&upstream, &["add", "."]);
    run(&upstream, &["commit", "--quiet", "-m", "one"]);
    run(&upstream, &["checkout", "--quiet", "-b", "pr"]);
    std::fs::write(upstream.join("b.txt"), "b\n").unwrap();
    run(&upstream, &["add", "."]);
    run(&upstream, &["commit", "--quiet", "-m", "pull request"]);
    let pull = run(&upstream, &["rev-parse", "HEAD"]);
    run(&upstream, &["update-ref", "refs/pull/1/head", &pull]);
    run(&upstream, &["checkout", "--quiet", "trunk"]);
    run(&upstream, &["branch", "--quiet", "-D", "pr"]);
    run(&upstream, &["update-server-info"]);
    let port = serve(upstream.join(".git"));

    // A name no resolver knows, pinned to where the server is: only a git
    // call that honours the pin can reach it.
    let host = "repo.agentd.invalid";
    let source = RepoSource::parse(&format!("http://{host}:{port}/")).unwrap();
    let pinned = Pinned {
        scheme: "http".into(),
        authority: format!("{host}:{port}"),
        host: host.to_string(),
        port,
        addresses: vec![([127, 0, 0, 1], port).into()],
    };
    let cache = MirrorCache::new(tmp.path().join("mirrors"));
    let mirror = cache.sync(&source, Some(&pinned)).unwrap();
    assert_eq!(
        mirror.resolve(Some("refs/pull/1/head")).unwrap().commit,
        pull
    );
}

#[test]
fn git_protocol_fetches_go_to_the_vetted_address() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("served");
    let upstream = base.join("repo.git");
    std::fs::create_dir_all(&upstream).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    run(&work, &["init", "--quiet", "-b", "main"]);
    std::fs::write(work.join("a.txt"), "a\n").unwrap();
    run(&work, &["add", "."]);
    run(&work, &["commit", "--quiet", "-m", "one"]);
    let head = run(&work, &["rev-parse", "HEAD"]);
    run(&upstream, &["init", "--quiet", "--bare"]);
    run(
        &work,
        &["push", "--quiet", upstream.to_str().unwrap(), "main"],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
        ])
        .arg(&base)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "git daemon did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A name no resolver knows: only a fetch held to the pin reaches the daemon.
    let host = "repo.agentd.invalid";
    let source = RepoSource::parse(&format!("git://{host}:{port}/repo.git")).unwrap();
    let pinned = Pinned {
        scheme: "git".into(),
        authority: format!("{host}:{port}"),
        host: host.to_string(),
        port,
        addresses: vec![([127, 0, 0, 1], port).into()],
    };
    let cache = MirrorCache::new(tmp.path().join("mirrors"));
    let synced = cache.sync(&source, Some(&pinned));
    let unpinned = MirrorCache::new(tmp.path().join("other")).sync(&source, None);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let mirror = synced.unwrap();
    assert_eq!(mirror.resolve(Some("main")).unwrap().commit, head);
    assert!(unpinned.is_err(), "the name alone must not resolve");
}
