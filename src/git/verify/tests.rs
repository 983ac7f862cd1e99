use std::path::Path;
use std::process::Command;

use std::path::PathBuf;

use super::*;

/// git as a test author in `dir` (a work tree), returning stdout.
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
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A mirror with one base commit, and a work clone of it on `agent/x`.
struct Fixture {
    _root: tempfile::TempDir,
    mirror: PathBuf,
    work: PathBuf,
    base: String,
    scratch: PathBuf,
    diff: PathBuf,
    bundle: PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let origin = root.path().join("origin");
    std::fs::create_dir_all(&origin).unwrap();
    git(&origin, &["init", "-q", "-b", "main"]);
    std::fs::write(origin.join("auth.py"), "def check():\n    return False\n").unwrap();
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-qm", "base"]);
    let base = git(&origin, &["rev-parse", "HEAD"]);
    let mirror = root.path().join("mirror.git");
    git(
        root.path(),
        &["clone", "-q", "--mirror", "origin", "mirror.git"],
    );
    let work = root.path().join("work");
    git(
        root.path(),
        &["clone", "-q", "--shared", "mirror.git", "work"],
    );
    git(&work, &["checkout", "-q", "-b", "agent/x"]);
    Fixture {
        scratch: root.path().join("scratch"),
        diff: root.path().join("changes.diff"),
        bundle: root.path().join("branch.bundle"),
        _root: root,
        mirror,
        work,
        base,
    }
}

impl Fixture {
    fn bundle(&self) {
        git(
            &self.work,
            &[
                "bundle",
                "create",
                "-q",
                &self.bundle.display().to_string(),
                "refs/heads/agent/x",
                &format!("^{}", self.base),
            ],
        );
    }

    async fn verify(&self, limits: VerifyLimits) -> Result<Verified, VerifyError> {
        verify_bundle(
            &self.mirror,
            &self.bundle,
            "agent/x",
            &self.base,
            &self.scratch,
            &self.diff,
            &limits,
        )
        .await
    }
}

#[tokio::test]
async fn the_diff_shows_the_real_objects_not_their_replacements() {
    let f = fixture();
    std::fs::write(
        f.work.join("auth.py"),
        "def check():\n    return True  # benign\n",
    )
    .unwrap();
    let benign = git(&f.work, &["hash-object", "-w", "auth.py"]);
    std::fs::write(
        f.work.join("auth.py"),
        "def check():\n    import os; os.system('x')\n",
    )
    .unwrap();
    git(&f.work, &["commit", "-qam", "tidy"]);
    let evil = git(&f.work, &["rev-parse", "HEAD:auth.py"]);
    git(&f.work, &["replace", &evil, &benign]);
    assert!(git(&f.work, &["diff", "HEAD~1", "HEAD"]).contains("benign"));
    f.bundle();

    let verified = f.verify(VerifyLimits::default()).await.unwrap();
    assert_eq!(verified.head, git(&f.work, &["rev-parse", "HEAD"]));
    let diff = std::fs::read_to_string(&f.diff).unwrap();
    assert!(diff.contains("os.system"), "{diff}");
    assert!(!diff.contains("benign"), "{diff}");
    assert_eq!(verified.files.len(), 1);
    assert_eq!(verified.files[0].path, "auth.py");
    assert_eq!(verified.files[0].status, "M");
    assert!(verified.diff_written && !verified.unrelated);
    assert!(!f.scratch.exists(), "the scratch repository is removed");
}

#[tokio::test]
async fn attributes_in_the_branch_run_no_filter_or_textconv() {
    let f = fixture();
    let marker = f.work.join("../textconv-ran");
    std::fs::write(f.work.join(".gitattributes"), "* diff=x filter=h\n").unwrap();
    std::fs::write(f.work.join("auth.py"), "changed\n").unwrap();
    git(&f.work, &["add", "."]);
    git(&f.work, &["commit", "-qm", "attrs"]);
    // Even a mirror configured to run them (it never is) would not: the
    // scratch repository reads no repository configuration but its own.
    let hostile = format!("sh -c 'touch {}; cat'", marker.display());
    git(&f.mirror, &["config", "diff.x.textconv", &hostile]);
    git(&f.mirror, &["config", "filter.h.smudge", &hostile]);
    f.bundle();
    f.verify(VerifyLimits::default()).await.unwrap();
    assert!(!marker.exists(), "a textconv or filter ran on the host");
    let diff = std::fs::read_to_string(&f.diff).unwrap();
    assert!(diff.contains("+changed"), "{diff}");
}

/// A branch made to run code on the host when agentd reads it back: a
/// submodule whose URL is an `ext::` command, a gitlink to it, hostile
/// hooks, fsmonitor and filters configured on the mirror, and a file far
/// over the diff's limit. Reading it back verifies, imports and diffs it and
/// runs none of it.
#[tokio::test]
async fn a_hostile_branch_runs_nothing_on_the_host() {
    let f = fixture();
    let marker = f.work.join("../host-ran-something");
    let hostile = format!("sh -c 'touch {}'", marker.display());
    std::fs::write(
        f.work.join(".gitmodules"),
        format!(
            "[submodule \"evil\"]\n\tpath = evil\n\turl = ext::{}\n",
            hostile.replace(' ', "% ")
        ),
    )
    .unwrap();
    std::fs::write(f.work.join(".gitattributes"), "*.py filter=h diff=x\n").unwrap();
    std::fs::write(f.work.join("huge.bin"), vec![0u8; 3 << 20]).unwrap();
    git(&f.work, &["add", "."]);
    git(
        &f.work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{},evil", f.base),
        ],
    );
    git(&f.work, &["commit", "-qm", "hostile"]);
    let hooks = f.mirror.join("hostile-hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in [
        "reference-transaction",
        "post-checkout",
        "post-merge",
        "pre-auto-gc",
    ] {
        let path = hooks.join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (key, value) in [
        ("core.hooksPath", hooks.display().to_string()),
        ("core.fsmonitor", hostile.clone()),
        ("filter.h.clean", hostile.clone()),
        ("filter.h.smudge", hostile.clone()),
        ("diff.x.textconv", hostile.clone()),
        ("protocol.ext.allow", "always".into()),
        ("submodule.recurse", "true".into()),
    ] {
        git(&f.mirror, &["config", key, &value]);
    }
    f.bundle();
    let limits = VerifyLimits {
        max_diff_bytes: 1 << 20,
        ..VerifyLimits::default()
    };
    let verified = f.verify(limits).await.unwrap();
    assert!(!marker.exists(), "something ran on the host");
    let mut paths: Vec<(&str, &str)> = verified
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.status.as_str()))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            (".gitattributes", "A"),
            (".gitmodules", "A"),
            ("evil", "A"),
            ("huge.bin", "A")
        ]
    );
    let left_out: Vec<&str> = verified
        .left_out_of_diff
        .iter()
        .map(|file| file.path.as_str())
        .collect();
    assert_eq!(left_out, ["huge.bin"]);
    let diff = std::fs::read_to_string(&f.diff).unwrap();
    assert!(
        diff.contains("ext::"),
        "the diff shows the submodule's URL: {diff}"
    );
    assert!(!f.scratch.exists(), "the scratch repository is removed");
}

#[tokio::test]
async fn files_over_the_diff_limit_stay_in_the_bundle_and_are_listed() {
    let f = fixture();
    std::fs::write(f.work.join("big.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(f.work.join("small.txt"), "small\n").unwrap();
    git(&f.work, &["add", "."]);
    git(&f.work, &["commit", "-qm", "big"]);
    f.bundle();
    let limits = VerifyLimits {
        max_diff_bytes: 100_000,
        ..VerifyLimits::default()
    };
    let verified = f.verify(limits).await.unwrap();
    let left: Vec<_> = verified
        .left_out_of_diff
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(left, ["big.bin"]);
    assert_eq!(verified.left_out_of_diff[0].size, 300_000);
    assert_eq!(verified.files.len(), 2);
    let diff = std::fs::read_to_string(&f.diff).unwrap();
    assert!(
        diff.contains("small.txt") && !diff.contains("big.bin"),
        "{diff}"
    );

    // When nothing fits, no diff is written at all (never an empty one).
    let limits = VerifyLimits {
        max_diff_bytes: 10,
        ..VerifyLimits::default()
    };
    std::fs::remove_file(&f.diff).unwrap();
    let verified = f.verify(limits).await.unwrap();
    assert!(!verified.diff_written);
    assert_eq!(verified.left_out_of_diff.len(), 2);
    assert!(!f.diff.exists());
}

#[tokio::test]
async fn a_damaged_or_foreign_bundle_is_refused() {
    let f = fixture();
    std::fs::write(f.work.join("auth.py"), "x\n").unwrap();
    git(&f.work, &["commit", "-qam", "x"]);
    f.bundle();
    let mut bytes = std::fs::read(&f.bundle).unwrap();
    let last = bytes.len() - 30;
    bytes[last] ^= 0xff;
    std::fs::write(&f.bundle, &bytes).unwrap();
    let error = f.verify(VerifyLimits::default()).await.unwrap_err();
    assert!(matches!(error, VerifyError::Refused { .. }), "{error}");

    std::fs::write(&f.bundle, b"# v2 git bundle\nnot really\n").unwrap();
    assert!(f.verify(VerifyLimits::default()).await.is_err());
    // A bundle of another branch name than the one expected.
    std::fs::remove_file(&f.bundle).unwrap();
    git(&f.work, &["branch", "-q", "other"]);
    git(
        &f.work,
        &[
            "bundle",
            "create",
            "-q",
            &f.bundle.display().to_string(),
            "refs/heads/other",
            &format!("^{}", f.base),
        ],
    );
    assert!(f.verify(VerifyLimits::default()).await.is_err());
}

#[test]
fn raw_diff_records_are_parsed_with_odd_names() {
    let raw = b":100644 100644 aaaa bbbb M\0a\nb.txt\0:000000 100644 0000 cccc A\0new\0:100644 000000 dddd 0000 D\0gone\0:160000 160000 e f M\0sub\0";
    let files = parse_raw(raw);
    let names: Vec<_> = files
        .iter()
        .map(|(f, blob)| (f.path.as_str(), f.status.as_str(), blob.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("a\nb.txt", "M", true),
            ("new", "A", true),
            ("gone", "D", false),
            ("sub", "M", false)
        ]
    );
}
