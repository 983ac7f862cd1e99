//! Size and count limits, lying headers, broken streams, and an archive made by GNU tar.

use std::io::{self, Read};
use std::path::Path;
use std::process::Command;

use super::super::place::copy_bounded;
use pretty_assertions::assert_eq;

use super::*;

fn limits(max_entry_bytes: u64, max_total_bytes: u64, max_entries: u64) -> UnpackLimits {
    UnpackLimits {
        max_entry_bytes,
        max_total_bytes,
        max_entries,
    }
}

#[test]
fn defaults_are_documented_values() {
    assert_eq!(UnpackLimits::default(), limits(256 << 20, 1 << 30, 10_000));
}

#[test]
fn oversize_file_is_refused_and_its_content_skipped() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .file("exact", &[b'a'; 100])
        .file("big", &[b'b'; 101])
        .file("after", b"next entry still parsed")
        .bytes();

    let unpacked = scene.unpack_with(&tar, 0, &limits(100, 1 << 20, 100));

    assert!(reason(&unpacked, "big").contains("max_entry_bytes (100)"));
    assert!(!scene.exists("big"));
    assert_eq!(scene.read("exact").len(), 100);
    assert_eq!(scene.read("after"), "next entry still parsed");
    assert_eq!(unpacked.total_bytes, 100 + 23);
    scene.assert_contained();
}

#[test]
fn total_limit_refuses_what_does_not_fit_and_admits_what_does() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .file("a", &[1; 60])
        .file("b", &[2; 50])
        .file("c", &[3; 40])
        .file("d", &[4; 1])
        .file("empty", b"")
        .bytes();

    let unpacked = scene.unpack_with(&tar, 0, &limits(1000, 100, 100));

    let kept: Vec<&str> = unpacked.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(kept, ["a", "c", "empty"]);
    assert!(reason(&unpacked, "b").contains("max_total_bytes (100)"));
    assert!(reason(&unpacked, "d").contains("max_total_bytes (100)"));
    assert_eq!(unpacked.total_bytes, 100);
    assert!(!scene.exists("b") && !scene.exists("d"));
    scene.assert_contained();
}

#[test]
fn entries_past_max_entries_are_not_read() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .dir("d/")
        .file("d/1", b"1")
        .file("d/2", b"2")
        .file("d/3", b"3")
        .file("d/4", b"4")
        .bytes();

    let unpacked = scene.unpack_with(&tar, 0, &limits(1000, 1000, 3));

    let kept: Vec<&str> = unpacked.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(kept, ["d/1", "d/2"]);
    assert_eq!(unpacked.refused.len(), 1, "{:?}", unpacked.refused);
    assert!(reason(&unpacked, "d/3").contains("max_entries (3)"));
    assert!(!scene.exists("d/3") && !scene.exists("d/4"));
    scene.assert_contained();
}

#[test]
fn header_size_lying_below_pax_size_does_not_let_more_through() {
    let scene = Scene::new();
    let content = vec![b'x'; 5000];
    let tar = TarWriter::new()
        .pax(&[("size", b"5000")])
        .raw_sized(EntryType::Regular, b"liar", b"", &content, 10)
        .file("after", b"framing intact")
        .bytes();

    let unpacked = scene.unpack_with(&tar, 0, &limits(100, 1000, 100));

    assert!(reason(&unpacked, "liar").contains("max_entry_bytes (100)"));
    assert!(!scene.exists("liar"));
    assert_eq!(scene.read("after"), "framing intact");
    assert_eq!(unpacked.total_bytes, 14);
    scene.assert_contained();
}

/// A source longer than it claims to be: copying stops at the bound whatever it says.
#[test]
fn bounded_copy_never_writes_past_its_bound() {
    let mut endless = io::repeat(b'z');
    let mut written = Vec::new();
    let copied = copy_bounded(&mut endless, &mut written, 1000, Path::new("x")).unwrap();
    assert!(copied.over_bound);
    assert!(written.len() <= 1000, "wrote {}", written.len());

    let mut exact = &[7u8; 1000][..];
    let mut written = Vec::new();
    let copied = copy_bounded(&mut exact, &mut written, 1000, Path::new("x")).unwrap();
    assert!(!copied.over_bound);
    assert_eq!((copied.bytes, written.len()), (1000, 1000));
    assert_eq!(copied.sha256, sha256(&[7u8; 1000]));
}

#[test]
fn truncated_and_corrupt_archives_are_errors() {
    let tar = TarWriter::new()
        .file("first", b"complete")
        .file("second", &[b's'; 3000])
        .bytes();

    let inside_content = &tar[..512 * 3 + 1000];
    let inside_header = &tar[..512 * 2 + 100];
    let mut bad_checksum = tar.clone();
    bad_checksum[512 * 2 + 10] ^= 0x55;

    for (what, bytes) in [
        ("cut inside content", inside_content),
        ("cut inside header", inside_header),
        ("bad checksum", &bad_checksum[..]),
    ] {
        let scene = Scene::new();
        let result = unpack(bytes, &scene.dest, 0, &UnpackLimits::default());
        assert!(result.is_err(), "{what}: {result:?}");
        assert_eq!(scene.read("first"), "complete", "{what}");
        assert!(!scene.exists("second"), "{what}: partial file left behind");
        scene.assert_contained();
    }

    let scene = Scene::new();
    let garbage = vec![0xabu8; 2048];
    assert!(unpack(&garbage[..], &scene.dest, 0, &UnpackLimits::default()).is_err());
}

#[test]
fn read_errors_from_the_stream_are_errors() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("connection reset"))
        }
    }
    let scene = Scene::new();
    let err = unpack(Failing, &scene.dest, 0, &UnpackLimits::default()).unwrap_err();
    assert!(
        matches!(err, super::super::ArchiveError::Read(_)),
        "{err:?}"
    );
}

#[test]
fn gnu_tar_archive_with_symlink_to_etc_passwd() {
    for format in ["gnu", "posix"] {
        let scene = Scene::new();
        let source = scene.root.join("source");
        let artifacts = source.join("artifacts");
        fs::create_dir_all(artifacts.join("sub")).unwrap();
        fs::write(artifacts.join("report.txt"), b"made by the agent\n").unwrap();
        fs::write(artifacts.join("sub/data.bin"), [0u8, 1, 2, 3]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", artifacts.join("passwd")).unwrap();
        let output = Command::new("tar")
            .arg("-C")
            .arg(&source)
            .arg(format!("--format={format}"))
            .args(["-cf", "-", "artifacts"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        fs::remove_dir_all(&source).unwrap();

        let unpacked = scene.unpack(&output.stdout, 1);

        let mut kept: Vec<&str> = unpacked.files.iter().map(|f| f.path.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["report.txt", "sub/data.bin"], "{format}");
        assert_eq!(scene.read("report.txt"), "made by the agent\n");
        assert_eq!(
            unpacked.refused.len(),
            1,
            "{format}: {:?}",
            unpacked.refused
        );
        assert!(reason(&unpacked, "artifacts/passwd").contains("symlink target is absolute"));
        assert!(unpacked.symlinks.is_empty());
        assert!(!scene.exists("passwd"));
        scene.assert_contained();
    }
}
