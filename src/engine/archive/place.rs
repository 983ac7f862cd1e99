//! Placing checked entries under the destination without ever following a link: every ancestor
//! is looked at with `symlink_metadata`, and nothing that already exists is opened or replaced.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::rules::{Refusal, RelPath};
use super::{ArchiveError, UnpackedFile};

const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;

/// How one entry failed: refused (recorded, unpacking goes on) or fatal for the whole archive.
#[derive(Debug)]
pub(super) enum EntryError {
    Refused(Refusal),
    Fatal(ArchiveError),
}

impl From<Refusal> for EntryError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<ArchiveError> for EntryError {
    fn from(err: ArchiveError) -> Self {
        Self::Fatal(err)
    }
}

/// How many content bytes one file may still write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Allowance {
    pub(super) max_entry_bytes: u64,
    pub(super) max_total_bytes: u64,
    pub(super) used_total: u64,
}

impl Allowance {
    fn bound(self) -> u64 {
        let remaining = self.max_total_bytes.saturating_sub(self.used_total);
        self.max_entry_bytes.min(remaining)
    }

    /// Refuses a file of `size` bytes that does not fit.
    pub(super) fn admit(self, size: u64) -> Result<(), Refusal> {
        if size > self.max_entry_bytes {
            Err(Refusal::EntryTooLarge(self.max_entry_bytes))
        } else if size > self.bound() {
            Err(Refusal::TotalExceeded(self.max_total_bytes))
        } else {
            Ok(())
        }
    }

    /// The rule broken by a file that turned out longer than [`Self::bound`].
    fn past_bound(self) -> Refusal {
        if self.bound() == self.max_entry_bytes {
            Refusal::EntryTooLarge(self.max_entry_bytes)
        } else {
            Refusal::TotalExceeded(self.max_total_bytes)
        }
    }
}

/// The destination directory, resolved once so that ancestor checks start from a real path.
#[derive(Debug)]
pub(super) struct Destination {
    dir: PathBuf,
}

impl Destination {
    /// Creates `dest` if missing and checks that it is a directory.
    pub(super) fn prepare(dest: &Path) -> Result<Self, ArchiveError> {
        let failed = |source| ArchiveError::Destination {
            path: dest.to_owned(),
            source,
        };
        match fs::metadata(dest) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(ArchiveError::NotADirectory(dest.to_owned())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dest).map_err(failed)?;
            }
            Err(err) => return Err(failed(err)),
        }
        let dir = fs::canonicalize(dest).map_err(failed)?;
        Ok(Self { dir })
    }

    /// Creates a directory entry; one that is already a real directory is accepted as is.
    pub(super) fn directory(&self, rel: &RelPath) -> Result<(), EntryError> {
        let path = self.parents(rel)?;
        match DirBuilder::new().mode(DIR_MODE).create(&path) {
            Ok(()) => set_mode(&path, DIR_MODE),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.file_type().is_dir() => Ok(()),
                    Ok(_) => Err(Refusal::AlreadyExists.into()),
                    Err(err) => Err(classify(err, &path)),
                }
            }
            Err(err) => Err(classify(err, &path)),
        }
    }

    /// Creates a symlink whose target has already been checked by the rules.
    pub(super) fn symlink(&self, rel: &RelPath, target: &str) -> Result<(), EntryError> {
        let path = self.parents(rel)?;
        std::os::unix::fs::symlink(target, &path).map_err(|err| classify(err, &path))
    }

    /// Writes a new regular file from `content`, counting and hashing the bytes actually written.
    /// `declared` is the size the archive claims; fewer bytes means the stream was cut short.
    pub(super) fn file(
        &self,
        rel: &RelPath,
        content: &mut dyn Read,
        declared: u64,
        executable: bool,
        allowance: Allowance,
    ) -> Result<UnpackedFile, EntryError> {
        let path = self.parents(rel)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|err| classify(err, &path))?;
        let mut fill = || {
            let copied = copy_bounded(content, &mut file, allowance.bound(), &path)?;
            if copied.over_bound {
                return Err(allowance.past_bound().into());
            }
            if copied.bytes < declared {
                return Err(ArchiveError::Truncated {
                    entry: rel.to_string(),
                }
                .into());
            }
            let mode = if executable { EXEC_MODE } else { FILE_MODE };
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(|source| write_error(&path, source))?;
            Ok(UnpackedFile {
                path: rel.to_string(),
                size: copied.bytes,
                sha256: copied.sha256,
            })
        };
        let outcome = fill();
        if outcome.is_err() {
            drop(file);
            let _ = fs::remove_file(&path);
        }
        outcome
    }

    /// Makes sure every ancestor of `rel` is a real directory (creating missing ones) and
    /// returns the entry's full path.
    fn parents(&self, rel: &RelPath) -> Result<PathBuf, EntryError> {
        let mut path = self.dir.clone();
        for (depth, name) in rel.parents().iter().enumerate() {
            path.push(name);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Refusal::ThroughSymlink(rel.prefix(depth + 1)).into());
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(Refusal::ParentNotDirectory(rel.prefix(depth + 1)).into()),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new()
                        .mode(DIR_MODE)
                        .create(&path)
                        .map_err(|err| classify(err, &path))?;
                    set_mode(&path, DIR_MODE)?;
                }
                Err(err) => return Err(classify(err, &path)),
            }
        }
        if let Some(name) = rel.components().last() {
            path.push(name);
        }
        Ok(path)
    }
}

/// Bytes copied by [`copy_bounded`].
#[derive(Debug)]
pub(super) struct Copied {
    pub(super) bytes: u64,
    pub(super) sha256: String,
    /// The source had more than the bound; the excess was not written.
    pub(super) over_bound: bool,
}

/// Copies at most `bound` bytes from `src` to `dst`, whatever `src` claims about its length, and
/// reads one byte more to tell whether there was more.
pub(super) fn copy_bounded(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    bound: u64,
    path: &Path,
) -> Result<Copied, EntryError> {
    let mut limited = src.take(bound.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ArchiveError::Read(err).into()),
        };
        if bytes + n as u64 > bound {
            return Ok(Copied {
                bytes,
                sha256: String::new(),
                over_bound: true,
            });
        }
        dst.write_all(&buf[..n])
            .map_err(|source| write_error(path, source))?;
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Copied {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        over_bound: false,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EntryError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|err| classify(err, path))
}

/// Turns an I/O error on one entry's path into a refusal when the entry is to blame, and into
/// a fatal error when the disk is.
fn classify(err: io::Error, path: &Path) -> EntryError {
    if err.kind() == io::ErrorKind::AlreadyExists {
        return Refusal::AlreadyExists.into();
    }
    if err.raw_os_error() == Some(libc::ENAMETOOLONG) {
        return Refusal::NameTooLong.into();
    }
    write_error(path, err)
}

fn write_error(path: &Path, source: io::Error) -> EntryError {
    ArchiveError::Write {
        path: path.to_owned(),
        source,
    }
    .into()
}
