//! Entries whose path or type is refused.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn absolute_paths_are_refused() {
    let scene = Scene::new();
    let evil = format!("{}/evil", scene.outside.display());
    let tar = TarWriter::new()
        .raw(EntryType::Regular, evil.as_bytes(), b"", b"pwned")
        .raw(EntryType::Regular, b"//double", b"", b"pwned")
        .raw(EntryType::Directory, b"/abs-dir/", b"", b"")
        .file("ok.txt", b"fine")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    for path in [evil.as_str(), "//double", "/abs-dir/"] {
        assert!(reason(&unpacked, path).contains("absolute path"));
    }
    assert_eq!(scene.read("ok.txt"), "fine");
    scene.assert_contained();
}

#[test]
fn absolute_paths_are_refused_before_stripping() {
    let scene = Scene::new();
    let evil = format!("{}/evil", scene.outside.display());
    let tar = TarWriter::new()
        .raw(EntryType::Regular, evil.as_bytes(), b"", b"pwned")
        .bytes();

    let unpacked = scene.unpack(&tar, 2);

    assert!(reason(&unpacked, &evil).contains("absolute path"));
    assert!(unpacked.files.is_empty());
    scene.assert_contained();
}

#[test]
fn parent_components_are_refused_anywhere() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .raw(EntryType::Regular, b"../outside/evil", b"", b"pwned")
        .raw(EntryType::Regular, b"a/../../outside/evil", b"", b"pwned")
        .raw(
            EntryType::Regular,
            b"artifacts/../ok-looking",
            b"",
            b"pwned",
        )
        .raw(EntryType::Directory, b"..", b"", b"")
        .raw(EntryType::Symlink, b"../outside/link", b"target", b"")
        .bytes();

    let unpacked = scene.unpack(&tar, 1);

    assert_eq!(unpacked.refused.len(), 5, "{:?}", unpacked.refused);
    for refused in &unpacked.refused {
        assert!(refused.reason.contains("'..'"), "{refused:?}");
    }
    assert!(unpacked.files.is_empty() && unpacked.symlinks.is_empty());
    assert_eq!(fs::read_dir(&scene.dest).unwrap().count(), 0);
    scene.assert_contained();
}

#[test]
fn nul_non_utf8_and_empty_paths_are_refused() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .pax(&[("path", b"a\0b")])
        .raw(EntryType::Regular, b"ignored", b"", b"nul")
        .raw(EntryType::Regular, b"bad-\xff\xfe", b"", b"latin")
        .raw(EntryType::Regular, b".", b"", b"dot")
        .raw(EntryType::Regular, b".//./", b"", b"dots")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(reason(&unpacked, "a\0b").contains("NUL"));
    assert!(reason(&unpacked, "bad-\u{fffd}\u{fffd}").contains("UTF-8"));
    assert!(reason(&unpacked, ".").contains("normalises to nothing"));
    assert!(reason(&unpacked, ".//./").contains("normalises to nothing"));
    assert!(unpacked.files.is_empty());
    assert_eq!(fs::read_dir(&scene.dest).unwrap().count(), 0);
    scene.assert_contained();
}

#[test]
fn hard_links_are_refused_even_inside() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .file("real.txt", b"real")
        .raw(EntryType::Link, b"inside", b"real.txt", b"")
        .raw(EntryType::Link, b"passwd", b"/etc/passwd", b"")
        .raw(EntryType::Link, b"up", b"../outside/x", b"")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    for path in ["inside", "passwd", "up"] {
        assert!(reason(&unpacked, path).contains("hard link"));
        assert!(!scene.exists(path));
    }
    assert_eq!(unpacked.files.len(), 1);
    scene.assert_contained();
}

#[test]
fn devices_fifos_and_unknown_types_are_refused() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .raw(EntryType::Fifo, b"fifo", b"", b"")
        .raw(EntryType::Char, b"null", b"", b"")
        .raw(EntryType::Block, b"sda", b"", b"")
        .raw(EntryType::new(b'Z'), b"strange", b"", b"data")
        .raw(
            EntryType::XGlobalHeader,
            b"pax_global_header",
            b"",
            b"13 comment=x\n",
        )
        .file("after.txt", b"still here")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(reason(&unpacked, "fifo").contains("fifo entries are not allowed"));
    assert!(reason(&unpacked, "null").contains("character device"));
    assert!(reason(&unpacked, "sda").contains("block device"));
    assert!(reason(&unpacked, "strange").contains("unsupported entry type 'Z'"));
    assert_eq!(
        unpacked.refused.len(),
        4,
        "a PAX global header is not refused"
    );
    for path in ["fifo", "null", "sda", "strange", "pax_global_header"] {
        assert!(!scene.exists(path), "{path}");
    }
    assert_eq!(scene.read("after.txt"), "still here");
    scene.assert_contained();
}

#[test]
fn overlong_names_are_refused_not_fatal() {
    let scene = Scene::new();
    let name = format!("{}.txt", "n".repeat(300));
    let tar = TarWriter::new()
        .file(&name, b"too long")
        .file("short.txt", b"ok")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert!(reason(&unpacked, &name).contains("too long"));
    assert_eq!(scene.read("short.txt"), "ok");
    scene.assert_contained();
}
