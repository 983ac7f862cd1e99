//! Delivery to bare repositories on disk: what is pushed, what is refused,
//! merges, conflicts and a concurrent pusher. (HTTP and SSH remotes, with
//! their credentials, are in `tests/delivery/`.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A team's remote with `main`, agentd's mirror of it, and a sandbox's clone.
struct World {
    tmp: tempfile::TempDir,
    remote: PathBuf,
    mirror: PathBuf,
    base: String,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote.git");
        let seed = tmp.path().join("seed");
        std::fs::create_dir_all(&seed).unwrap();
        git(&seed, &["init", "--quiet", "-b", "main"]);
        std::fs::write(seed.join("shared.txt"), "one\ntwo\nthree\n").unwrap();
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "--quiet", "-m", "base"]);
        let base = git(&seed, &["rev-parse", "HEAD"]);
        git(
            tmp.path(),
            &["clone", "--quiet", "--bare", "seed", "remote.git"],
        );
        git(&remote, &["branch", "integration", "main"]);
        let mirror = tmp.path().join("mirror.git");
        git(
            tmp.path(),
            &["clone", "--quiet", "--mirror", "remote.git", "mirror.git"],
        );
        World {
            tmp,
            remote,
            mirror,
            base,
        }
    }

    /// The sandbox's work: `files` written on `branch` from the base, as a bundle.
    fn work(&self, branch: &str, files: &[(&str, &str)]) -> (PathBuf, String) {
        self.work_in(&branch.replace('/', "-"), branch, files)
    }

    /// [`World::work`] in a clone and bundle named `name` (two sandboxes'
    /// work on one branch name).
    fn work_in(&self, name: &str, branch: &str, files: &[(&str, &str)]) -> (PathBuf, String) {
        let dir = self.tmp.path().join(format!("work-{name}"));
        git(
            self.tmp.path(),
            &[
                "clone",
                "--quiet",
                "--no-local",
                self.mirror.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        git(&dir, &["checkout", "--quiet", "-B", branch, &self.base]);
        for (path, text) in files {
            std::fs::write(dir.join(path), text).unwrap();
        }
        git(&dir, &["add", "."]);
        git(&dir, &["commit", "--quiet", "-m", "work"]);
        let head = git(&dir, &["rev-parse", "HEAD"]);
        let bundle = self.tmp.path().join(format!("{name}.bundle"));
        git(
            &dir,
            &[
                "bundle",
                "create",
                "--quiet",
                bundle.to_str().unwrap(),
                branch,
                &format!("^{}", self.base),
            ],
        );
        (bundle, head)
    }

    fn remote(&self) -> Remote {
        Remote {
            location: self.remote.display().to_string(),
            auth: RemoteAuth::None,
            pinned: None,
        }
    }

    fn on_remote(&self, reference: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.remote)
            .args(["rev-parse", "--verify", "--quiet", reference])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    async fn deliver(
        &self,
        bundle: &Path,
        branch: &str,
        merge_into: Option<&str>,
    ) -> Result<Delivered, PushError> {
        let remote = self.remote();
        let identity = Identity {
            name: "agentd".into(),
            email: "agentd@example.org".into(),
        };
        let retry = RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(10),
            max: Duration::from_millis(20),
            command_timeout: Duration::from_secs(60),
        };
        deliver(&DeliveryJob {
            mirror: &self.mirror,
            bundle,
            branch,
            base: &self.base,
            remote: &remote,
            merge_into,
            identity: &identity,
            merge_message: "Merge the agent's work",
            scratch: &self.tmp.path().join("scratch"),
            retry: &retry,
        })
        .await
    }
}

#[tokio::test]
async fn a_branch_lands_on_the_remote_once_and_a_retry_changes_nothing() {
    let world = World::new();
    let (bundle, head) = world.work("agent/one", &[("new.txt", "hello\n")]);
    let first = world.deliver(&bundle, "agent/one", None).await.unwrap();
    assert_eq!(first.commit, head);
    assert_eq!(
        (
            first.stats.files_changed,
            first.stats.insertions,
            first.stats.deletions
        ),
        (1, 1, 0)
    );
    assert!(!first.already_there);
    assert_eq!(world.on_remote("refs/heads/agent/one"), Some(head.clone()));
    assert!(
        !world.tmp.path().join("scratch").exists(),
        "scratch removed"
    );

    let again = world.deliver(&bundle, "agent/one", None).await.unwrap();
    assert!(again.already_there);
    assert_eq!(world.on_remote("refs/heads/agent/one"), Some(head));
}

#[tokio::test]
async fn a_branch_someone_else_wrote_is_never_overwritten() {
    let world = World::new();
    // A template without the execution's id: two executions, one name.
    let (first, first_head) = world.work("agent/task-7", &[("a.txt", "first\n")]);
    world.deliver(&first, "agent/task-7", None).await.unwrap();
    // Same branch name, other work, from the same base.
    let (second_world_bundle, _) =
        world.work_in("second", "agent/task-7", &[("b.txt", "second\n")]);
    let error = world
        .deliver(&second_world_bundle, "agent/task-7", None)
        .await
        .unwrap_err();
    assert_eq!(error.status(), "rejected", "{error}");
    assert!(error.to_string().contains("does not overwrite"), "{error}");
    assert_eq!(world.on_remote("refs/heads/agent/task-7"), Some(first_head));

    // A template that names the team's main: the work is not a descendant
    // of main's tip once main moved on, and main is left alone.
    let (bundle, _) = world.work("main", &[("c.txt", "onto main\n")]);
    let seed = world.tmp.path().join("seed");
    std::fs::write(seed.join("shared.txt"), "moved\n").unwrap();
    git(&seed, &["commit", "--quiet", "-am", "main moves"]);
    git(
        &seed,
        &["push", "--quiet", world.remote.to_str().unwrap(), "main"],
    );
    let main = world.on_remote("refs/heads/main");
    let error = world.deliver(&bundle, "main", None).await.unwrap_err();
    assert_eq!(error.status(), "rejected", "{error}");
    assert_eq!(world.on_remote("refs/heads/main"), main);
}

#[tokio::test]
async fn merging_fast_forwards_when_it_can_and_commits_a_merge_otherwise() {
    let world = World::new();
    let (bundle, head) = world.work("agent/ff", &[("ff.txt", "ff\n")]);
    let delivered = world
        .deliver(&bundle, "agent/ff", Some("integration"))
        .await
        .unwrap();
    assert_eq!(
        delivered.integration,
        Some(Integration::Merged {
            branch: "integration".into(),
            commit: head.clone(),
            fast_forward: true,
            up_to_date: false,
        })
    );
    assert_eq!(
        world.on_remote("refs/heads/integration"),
        Some(head.clone())
    );

    // Another agent's work, from the same base: integration has moved on.
    let (bundle, other) = world.work("agent/second", &[("second.txt", "2\n")]);
    let delivered = world
        .deliver(&bundle, "agent/second", Some("integration"))
        .await
        .unwrap();
    let Some(Integration::Merged {
        commit,
        fast_forward: false,
        ..
    }) = delivered.integration
    else {
        panic!("a merge commit: {delivered:?}");
    };
    assert_eq!(
        world.on_remote("refs/heads/integration"),
        Some(commit.clone())
    );
    let parents = git(&world.remote, &["rev-list", "--parents", "-n1", &commit]);
    assert_eq!(parents, format!("{commit} {head} {other}"));
    let author = git(
        &world.remote,
        &["log", "-1", "--format=%an <%ae>|%s", &commit],
    );
    assert_eq!(author, "agentd <agentd@example.org>|Merge the agent's work");
    let tree = git(&world.remote, &["ls-tree", "--name-only", &commit]);
    assert_eq!(tree, "ff.txt\nsecond.txt\nshared.txt");
}

#[tokio::test]
async fn a_conflict_leaves_the_integration_branch_as_it_was() {
    let world = World::new();
    let (first, first_head) = world.work("agent/a", &[("shared.txt", "one\nTWO\nthree\n")]);
    world
        .deliver(&first, "agent/a", Some("integration"))
        .await
        .unwrap();
    let (second, second_head) = world.work(
        "agent/b",
        &[("shared.txt", "one\nzwei\nthree\n"), ("x.txt", "x\n")],
    );
    let delivered = world
        .deliver(&second, "agent/b", Some("integration"))
        .await
        .unwrap();
    assert_eq!(
        delivered.integration,
        Some(Integration::Conflict {
            branch: "integration".into(),
            paths: vec!["shared.txt".into()],
        })
    );
    assert_eq!(world.on_remote("refs/heads/integration"), Some(first_head));
    // The work itself is on the remote, for someone to resolve.
    assert_eq!(world.on_remote("refs/heads/agent/b"), Some(second_head));
}

#[tokio::test]
async fn a_concurrent_push_to_the_integration_branch_is_merged_again() {
    let world = World::new();
    // Another team member pushes to integration while agentd's push is in
    // flight: the remote's pre-receive hook runs their real push the first
    // time agentd's arrives.
    let pusher = world.tmp.path().join("pusher");
    git(
        world.tmp.path(),
        &[
            "clone",
            "--quiet",
            "--branch",
            "integration",
            world.remote.to_str().unwrap(),
            pusher.to_str().unwrap(),
        ],
    );
    std::fs::write(pusher.join("theirs.txt"), "theirs\n").unwrap();
    git(&pusher, &["add", "."]);
    git(&pusher, &["commit", "--quiet", "-m", "theirs"]);
    let theirs = git(&pusher, &["rev-parse", "HEAD"]);
    let marker = world.tmp.path().join("raced");
    let hook = world.remote.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\n[ -e '{marker}' ] && exit 0\ntouch '{marker}'\n\
             env -u GIT_DIR -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY \
             -u GIT_ALTERNATE_OBJECT_DIRECTORIES -u GIT_PUSH_OPTION_COUNT \
             git -C '{pusher}' push --quiet origin integration >&2\n",
            marker = marker.display(),
            pusher = pusher.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let (bundle, head) = world.work("agent/race", &[("mine.txt", "mine\n")]);
    let delivered = world
        .deliver(&bundle, "agent/race", Some("integration"))
        .await
        .unwrap();
    assert!(marker.exists(), "the concurrent push ran");
    let Some(Integration::Merged { commit, .. }) = delivered.integration else {
        panic!("merged: {delivered:?}");
    };
    assert_eq!(
        world.on_remote("refs/heads/integration"),
        Some(commit.clone())
    );
    let parents = git(&world.remote, &["rev-list", "--parents", "-n1", &commit]);
    assert_eq!(
        parents,
        format!("{commit} {theirs} {head}"),
        "their push kept"
    );
    assert_eq!(world.on_remote("refs/heads/agent/race"), Some(head));
}

#[tokio::test]
async fn a_damaged_bundle_is_refused_before_anything_is_pushed() {
    let world = World::new();
    let (bundle, _) = world.work("agent/bad", &[("f.txt", "f\n")]);
    let mut bytes = std::fs::read(&bundle).unwrap();
    let last = bytes.len() - 30;
    bytes[last] ^= 0xff;
    std::fs::write(&bundle, bytes).unwrap();
    let error = world.deliver(&bundle, "agent/bad", None).await.unwrap_err();
    assert!(matches!(error, PushError::Bundle(_)), "{error}");
    assert_eq!(world.on_remote("refs/heads/agent/bad"), None);
}

/// Issue 11's hostile bundle, delivered: a branch whose `.gitattributes`
/// names filters, diff and merge drivers, whose `.gitmodules` points at an
/// `ext::` command beside a gitlink, with a large file, merged (a real
/// merge, not a fast-forward) into an integration branch — while the
/// mirror it borrows objects from configures every one of those drivers,
/// hooks and fsmonitor. The branch and the merge land; nothing runs on the
/// host (a control proves the mirror's configuration would run the hook).
#[tokio::test]
async fn a_hostile_branch_is_delivered_and_merged_and_runs_nothing_on_the_host() {
    let world = World::new();
    let marker = world.tmp.path().join("host-ran-something");
    let hostile = format!("sh -c 'touch {}'", marker.display());
    // Integration moves on, so the delivery has to merge.
    let (other, _) = world.work("agent/other", &[("other.txt", "other\n")]);
    world
        .deliver(&other, "agent/other", Some("integration"))
        .await
        .unwrap();

    let dir = world.tmp.path().join("hostile");
    git(
        world.tmp.path(),
        &[
            "clone",
            "--quiet",
            "--no-local",
            world.mirror.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    git(
        &dir,
        &["checkout", "--quiet", "-b", "agent/hostile", &world.base],
    );
    std::fs::write(
        dir.join(".gitmodules"),
        format!(
            "[submodule \"evil\"]\n\tpath = evil\n\turl = ext::{}\n",
            hostile.replace(' ', "% ")
        ),
    )
    .unwrap();
    std::fs::write(dir.join(".gitattributes"), "* filter=h diff=h merge=h\n").unwrap();
    std::fs::write(dir.join("shared.txt"), "one\ntwo\nthree\nfour\n").unwrap();
    std::fs::write(dir.join("huge.bin"), vec![7u8; 8 << 20]).unwrap();
    git(&dir, &["add", "."]);
    git(
        &dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{},evil", world.base),
        ],
    );
    git(&dir, &["commit", "--quiet", "-m", "hostile"]);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    let bundle = world.tmp.path().join("hostile.bundle");
    git(
        &dir,
        &[
            "bundle",
            "create",
            "--quiet",
            bundle.to_str().unwrap(),
            "agent/hostile",
            &format!("^{}", world.base),
        ],
    );

    let hooks = world.tmp.path().join("hostile-hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in [
        "reference-transaction",
        "pre-push",
        "post-merge",
        "pre-auto-gc",
        "post-checkout",
    ] {
        let path = hooks.join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    for (key, value) in [
        ("core.hooksPath", hooks.display().to_string()),
        ("core.fsmonitor", hostile.clone()),
        ("filter.h.clean", hostile.clone()),
        ("filter.h.smudge", hostile.clone()),
        ("filter.h.process", hostile.clone()),
        ("diff.h.textconv", hostile.clone()),
        ("diff.h.command", hostile.clone()),
        ("merge.h.driver", hostile.clone()),
        ("protocol.ext.allow", "always".into()),
        ("submodule.recurse", "true".into()),
        ("push.recurseSubmodules", "on-demand".into()),
    ] {
        git(&world.mirror, &["config", key, &value]);
    }

    let delivered = world
        .deliver(&bundle, "agent/hostile", Some("integration"))
        .await
        .unwrap();
    assert!(!marker.exists(), "something ran on the host");
    assert_eq!(
        world.on_remote("refs/heads/agent/hostile"),
        Some(head.clone())
    );
    let Some(Integration::Merged {
        commit,
        fast_forward: false,
        ..
    }) = delivered.integration
    else {
        panic!("a real merge: {delivered:?}");
    };
    let merged = git(&world.remote, &["show", &format!("{commit}:shared.txt")]);
    assert_eq!(merged, "one\ntwo\nthree\nfour");
    assert_eq!(delivered.stats.files_changed, 5, "{:?}", delivered.stats);

    // Control: the same configuration does run in plain git on the mirror.
    let _ = Command::new("git")
        .arg("-C")
        .arg(&world.mirror)
        .args(["update-ref", "refs/heads/control", &world.base])
        .output()
        .unwrap();
    assert!(marker.exists(), "the control hook should have run");
}
