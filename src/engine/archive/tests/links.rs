//! Symlinks: which are kept, which are refused, and writes through them.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn symlink_to_an_absolute_target_is_refused() {
    let scene = Scene::new();
    let outside = scene.outside.display().to_string();
    let tar = TarWriter::new()
        .symlink("passwd", "/etc/passwd")
        .symlink("out", &outside)
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(reason(&unpacked, "passwd").contains("symlink target is absolute"));
    assert!(reason(&unpacked, "out").contains("symlink target is absolute"));
    assert!(unpacked.symlinks.is_empty());
    assert!(!scene.exists("passwd") && !scene.exists("out"));
    scene.assert_contained();
}

#[test]
fn relative_symlink_escaping_dest_is_refused() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .symlink("etc", "../../etc")
        .symlink("up", "..")
        .symlink("a/b/far", "../../../outside")
        .symlink("a/sneaky", "./../../x")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    for path in ["etc", "up", "a/b/far", "a/sneaky"] {
        assert!(
            reason(&unpacked, path).contains("symlink target leaves the destination"),
            "{path}: {unpacked:?}"
        );
        assert!(!scene.exists(path), "{path}");
    }
    scene.assert_contained();
}

#[test]
fn symlinks_resolving_inside_are_kept() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .file("data/real.txt", b"real")
        .symlink("latest", "data/real.txt")
        .symlink("data/self", "./real.txt")
        .symlink("data/nested/back", "../../data/real.txt")
        .symlink("dangling", "not/there/yet")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(unpacked.refused.is_empty(), "{:?}", unpacked.refused);
    assert_eq!(
        unpacked.symlinks,
        ["latest", "data/self", "data/nested/back", "dangling"]
    );
    assert_eq!(
        fs::read_link(scene.dest.join("data/nested/back")).unwrap(),
        PathBuf::from("../../data/real.txt")
    );
    assert_eq!(scene.read("latest"), "real");
    assert_eq!(scene.read("data/nested/back"), "real");
    scene.assert_contained();
}

#[test]
fn dot_dot_after_a_name_is_refused_because_links_can_chain() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .symlink("x/l", "..")
        .symlink("x/m", "l/..")
        .file("x/m/evil", b"pwned")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert_eq!(unpacked.symlinks, ["x/l"]);
    assert!(reason(&unpacked, "x/m").contains("'..' after a name"));
    assert!(
        !scene.root.join("evil").exists(),
        "x/m would have resolved to dest/.. had it been kept"
    );
    scene.assert_contained();
}

#[test]
fn writing_through_a_kept_symlink_is_refused() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .dir("sub/")
        .symlink("sub/link", "..")
        .file("sub/link/evil", b"pwned")
        .dir("sub/link/dir/")
        .symlink("sub/link/ln", "x")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert_eq!(unpacked.symlinks, ["sub/link"]);
    for path in ["sub/link/evil", "sub/link/dir/", "sub/link/ln"] {
        assert!(
            reason(&unpacked, path).contains("passes through the symlink 'sub/link'"),
            "{path}: {unpacked:?}"
        );
    }
    assert!(!scene.exists("evil") && !scene.exists("dir") && !scene.exists("ln"));
    scene.assert_contained();
}

#[test]
fn refused_escape_link_then_write_stays_inside() {
    let scene = Scene::new();
    let outside = scene.outside.display().to_string();
    let tar = TarWriter::new()
        .symlink("link", &outside)
        .file("link/evil", b"harmless now")
        .symlink("up", "..")
        .file("up/outside/evil", b"harmless too")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(reason(&unpacked, "link").contains("absolute"));
    assert!(reason(&unpacked, "up").contains("leaves the destination"));
    assert!(
        fs::symlink_metadata(scene.dest.join("link"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(scene.read("link/evil"), "harmless now");
    assert_eq!(scene.read("up/outside/evil"), "harmless too");
    scene.assert_contained();
}

#[test]
fn symlinks_already_in_dest_are_never_followed() {
    let scene = Scene::new();
    fs::create_dir(&scene.dest).unwrap();
    std::os::unix::fs::symlink(&scene.outside, scene.dest.join("pre")).unwrap();
    std::os::unix::fs::symlink(scene.outside.join("new"), scene.dest.join("dangling")).unwrap();
    let tar = TarWriter::new()
        .file("pre/evil", b"pwned")
        .dir("pre/")
        .file("dangling", b"pwned")
        .symlink("pre", "elsewhere")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(reason(&unpacked, "pre/evil").contains("passes through the symlink 'pre'"));
    assert!(reason(&unpacked, "pre/").contains("already exists"));
    assert!(reason(&unpacked, "dangling").contains("already exists"));
    assert!(reason(&unpacked, "pre").contains("already exists"));
    assert!(!scene.outside.join("new").exists());
    scene.assert_contained();
}

#[test]
fn symlink_then_file_of_the_same_name_is_refused() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .symlink("name", "target.txt")
        .file("name", b"would land in target.txt")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert_eq!(unpacked.symlinks, ["name"]);
    assert!(reason(&unpacked, "name").contains("already exists"));
    assert!(!scene.exists("target.txt"));
    scene.assert_contained();
}
