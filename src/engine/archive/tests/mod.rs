//! Archives built in memory, unpacked into `root/dest`; `root/outside` is where an escape
//! would land, so every hostile test checks that `root` holds nothing else and `outside` stays
//! empty.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pretty_assertions::assert_eq;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::{UnpackLimits, Unpacked, unpack};

mod hostile;
mod limits;
mod links;

pub(super) struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let outside = root.join("outside");
        fs::create_dir(&outside).unwrap();
        Self {
            dest: root.join("dest"),
            root,
            outside,
            _tmp: tmp,
        }
    }

    fn unpack(&self, tar: &[u8], strip: usize) -> Unpacked {
        self.unpack_with(tar, strip, &UnpackLimits::default())
    }

    fn unpack_with(&self, tar: &[u8], strip: usize, limits: &UnpackLimits) -> Unpacked {
        unpack(tar, &self.dest, strip, limits).unwrap()
    }

    fn assert_contained(&self) {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["dest", "outside"]);
        assert_eq!(
            fs::read_dir(&self.outside).unwrap().count(),
            0,
            "outside was written"
        );
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dest.join(rel)).unwrap()
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.dest.join(rel)).is_ok()
    }

    fn mode(&self, rel: &str) -> u32 {
        fs::symlink_metadata(self.dest.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }
}

/// Builds tar archives, including entries `tar::Builder` refuses to write.
pub(super) struct TarWriter(tar::Builder<Vec<u8>>);

impl TarWriter {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn dir(mut self, path: &str) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    fn file(self, path: &str, content: &[u8]) -> Self {
        self.file_mode(path, content, 0o644)
    }

    fn file_mode(mut self, path: &str, content: &[u8], mode: u32) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        self.0.append_data(&mut header, path, content).unwrap();
        self
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.raw(EntryType::Symlink, path.as_bytes(), target.as_bytes(), b"")
    }

    /// An entry with name and link name written byte for byte (each at most 100 bytes).
    fn raw(self, kind: EntryType, name: &[u8], link: &[u8], content: &[u8]) -> Self {
        self.raw_sized(kind, name, link, content, content.len() as u64)
    }

    /// Like [`Self::raw`], with a header size that may differ from the content.
    fn raw_sized(
        mut self,
        kind: EntryType,
        name: &[u8],
        link: &[u8],
        content: &[u8],
        size: u64,
    ) -> Self {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(size);
        header.set_mtime(0);
        header.set_cksum();
        self.0.append(&header, content).unwrap();
        self
    }

    /// A PAX extended header applying to the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3;
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw(EntryType::XHeader, b"PaxHeader", b"", &data)
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn sha256(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// The reason given for the entry found in the archive as `path`.
fn reason<'a>(unpacked: &'a Unpacked, path: &str) -> &'a str {
    unpacked
        .refused
        .iter()
        .find(|r| r.path == path)
        .map(|r| r.reason.as_str())
        .unwrap_or_else(|| panic!("{path} was not refused: {unpacked:#?}"))
}

#[test]
fn normal_tree_arrives_with_content_hashes_and_modes() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .dir("artifacts/")
        .file("artifacts/report.md", b"# done\n")
        .dir("artifacts/logs/")
        .dir("artifacts/logs/deep/")
        .file("artifacts/logs/deep/run.log", b"line 1\nline 2\n")
        .file_mode("artifacts/run.sh", b"#!/bin/sh\necho hi\n", 0o744)
        .file_mode("artifacts/suid", b"x", 0o4755)
        .file(
            "artifacts/implicit/parent/file.txt",
            b"no dir entries above me",
        )
        .bytes();

    let unpacked = scene.unpack(&tar, 1);

    let paths: Vec<&str> = unpacked.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "report.md",
            "logs/deep/run.log",
            "run.sh",
            "suid",
            "implicit/parent/file.txt"
        ]
    );
    assert!(unpacked.refused.is_empty(), "{:?}", unpacked.refused);
    let log = &unpacked.files[1];
    assert_eq!(log.size, 14);
    assert_eq!(log.sha256, sha256(b"line 1\nline 2\n"));
    assert_eq!(unpacked.total_bytes, 7 + 14 + 18 + 1 + 23);
    assert_eq!(scene.read("logs/deep/run.log"), "line 1\nline 2\n");
    assert_eq!(
        scene.read("implicit/parent/file.txt"),
        "no dir entries above me"
    );
    assert_eq!(scene.mode("report.md"), 0o644);
    assert_eq!(scene.mode("run.sh"), 0o755);
    assert_eq!(scene.mode("suid"), 0o755, "setuid must never be kept");
    assert_eq!(scene.mode("logs"), 0o755);
    assert_eq!(scene.mode("implicit/parent"), 0o755);
    scene.assert_contained();
}

#[test]
fn dest_is_created_and_must_be_a_directory() {
    let scene = Scene::new();
    let tar = TarWriter::new().file("a", b"1").bytes();
    let nested = scene.dest.join("x/y");
    unpack(&tar[..], &nested, 0, &UnpackLimits::default()).unwrap();
    assert_eq!(fs::read_to_string(nested.join("a")).unwrap(), "1");

    let file = scene.root.join("plain");
    fs::write(&file, b"").unwrap();
    let err = unpack(&tar[..], &file, 0, &UnpackLimits::default()).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn strip_components_drops_leading_names() {
    let tar = TarWriter::new()
        .dir("./")
        .dir("artifacts/")
        .file("artifacts/a.txt", b"a")
        .file("./artifacts/sub/b.txt", b"b")
        .file("top.txt", b"top")
        .bytes();

    let scene = Scene::new();
    let none = scene.unpack(&tar, 0);
    let paths: Vec<&str> = none.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["artifacts/a.txt", "artifacts/sub/b.txt", "top.txt"]);
    assert!(none.refused.is_empty(), "{:?}", none.refused);

    let scene = Scene::new();
    let one = scene.unpack(&tar, 1);
    let paths: Vec<&str> = one.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "sub/b.txt"]);
    assert_eq!(
        one.refused.len(),
        1,
        "top dirs are skipped silently: {:?}",
        one.refused
    );
    assert!(reason(&one, "top.txt").contains("stripping 1"));
    assert_eq!(scene.read("sub/b.txt"), "b");
    assert!(!scene.exists("artifacts"));

    let scene = Scene::new();
    let two = scene.unpack(&tar, 2);
    let paths: Vec<&str> = two.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["b.txt"]);
    assert!(reason(&two, "artifacts/a.txt").contains("stripping 2"));
}

#[test]
fn long_paths_from_gnu_and_pax_headers_arrive() {
    let scene = Scene::new();
    let gnu_path = format!("artifacts/{}/{}/gnu.txt", "d".repeat(60), "e".repeat(60));
    let pax_path = format!("artifacts/{}/pax.txt", "p".repeat(120));
    let tar = TarWriter::new()
        .file(&gnu_path, b"gnu long name")
        .pax(&[("path", pax_path.as_bytes())])
        .raw(
            EntryType::Regular,
            b"truncated-ustar-name",
            b"",
            b"pax long name",
        )
        .bytes();
    assert!(gnu_path.len() > 100 && pax_path.len() > 100);

    let unpacked = scene.unpack(&tar, 1);

    let paths: Vec<&str> = unpacked.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, [&gnu_path[10..], &pax_path[10..]]);
    assert_eq!(scene.read(&gnu_path[10..]), "gnu long name");
    assert_eq!(scene.read(&pax_path[10..]), "pax long name");
    assert!(unpacked.refused.is_empty(), "{:?}", unpacked.refused);
}

#[test]
fn duplicate_names_keep_the_first_entry() {
    let scene = Scene::new();
    let tar = TarWriter::new()
        .file("same.txt", b"first")
        .file("same.txt", b"second, longer")
        .dir("dir/")
        .file("dir", b"file over a dir")
        .file("file", b"plain")
        .dir("file/")
        .bytes();

    let unpacked = scene.unpack(&tar, 0);

    assert_eq!(scene.read("same.txt"), "first");
    assert_eq!(unpacked.files.len(), 2, "{:?}", unpacked.files);
    assert_eq!(unpacked.total_bytes, 5 + 5);
    assert_eq!(unpacked.refused.len(), 3, "{:?}", unpacked.refused);
    for refused in &unpacked.refused {
        assert!(refused.reason.contains("already exists"), "{refused:?}");
    }
    assert!(
        fs::symlink_metadata(scene.dest.join("dir"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(scene.read("file"), "plain");
    scene.assert_contained();
}
