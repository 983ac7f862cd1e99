//! Safe unpacking of the tar stream the Docker API returns for a container path
//! (`GET /containers/{id}/archive`), used to bring an execution's artifacts out.
//!
//! The agent controls the directory that stream is made from, so the stream is hostile input.
//! Each entry is checked against the rules in `rules` and placed by `place` without following
//! any link. A bad entry is refused and reported, never fatal; only a broken stream or a failing
//! disk stops the unpack.

mod place;
mod rules;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::{Path, PathBuf};

use place::{Allowance, Destination, EntryError};
use rules::{Kind, Refusal, RelPath};

/// Limits on what one unpack may write, so that an agent cannot fill the host's disk.
/// Defaults: 256 MiB per file, 1 GiB in total, 10 000 archive entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Largest file accepted, in bytes actually written; larger files are refused.
    pub max_entry_bytes: u64,
    /// Most file bytes one unpack writes; a file that would go past it is refused.
    pub max_total_bytes: u64,
    /// Most archive entries read (directories and refused entries count); past it,
    /// unpacking stops with one refusal.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_entry_bytes: 256 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// A regular file written under the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedFile {
    /// Path relative to the destination, '/'-separated, after stripping.
    pub path: String,
    /// Bytes written (not the size the archive header claimed).
    pub size: u64,
    /// Lower-case hex SHA-256 of the content written.
    pub sha256: String,
}

/// An archive entry that was not unpacked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEntry {
    /// The path as found in the archive (before stripping), lossily decoded as UTF-8.
    pub path: String,
    /// Which rule the entry broke, in words.
    pub reason: String,
}

/// What one unpack placed under the destination, and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files, in archive order.
    pub files: Vec<UnpackedFile>,
    /// Symlinks recreated (each relative and resolving inside the destination), as paths
    /// relative to the destination.
    pub symlinks: Vec<String>,
    /// Entries skipped, in archive order.
    pub refused: Vec<RefusedEntry>,
    /// Sum of the sizes of `files`.
    pub total_bytes: u64,
}

/// A failure of the archive as a whole; what was placed before it stays on disk.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The destination could not be created or inspected.
    #[error("cannot prepare destination {path}")]
    Destination {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The destination exists and is not a directory.
    #[error("destination {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The tar stream could not be read or is corrupt.
    #[error("cannot read the tar stream")]
    Read(#[source] std::io::Error),
    /// The stream ended inside a file's content.
    #[error("tar stream ends inside the content of {entry}")]
    Truncated { entry: String },
    /// Writing under the destination failed for a reason that is not the entry's fault.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Unpacks the tar stream `reader` into `dest` (created if missing), dropping the first
/// `strip_components` path components of every entry (`1` for Docker's archive download, whose
/// entries start with the directory's base name).
///
/// Nothing is written outside `dest`. Accepted: regular files (created new, mode 0644, or 0755
/// if the archive set any execute bit), directories (0755), and relative symlinks that resolve
/// inside `dest`. Everything else is refused and listed in [`Unpacked::refused`].
///
/// Blocking file I/O: from async code, run it in `spawn_blocking` over a `SyncIoBridge`.
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    strip_components: usize,
    limits: &UnpackLimits,
) -> Result<Unpacked, ArchiveError> {
    let destination = Destination::prepare(dest)?;
    let mut archive = tar::Archive::new(reader);
    let mut unpacked = Unpacked::default();
    let mut seen = 0u64;
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        seen += 1;
        let placed = if seen > limits.max_entries {
            Err(Refusal::TooManyEntries(limits.max_entries).into())
        } else {
            let allowance = Allowance {
                max_entry_bytes: limits.max_entry_bytes,
                max_total_bytes: limits.max_total_bytes,
                used_total: unpacked.total_bytes,
            };
            place_entry(&mut entry, &destination, strip_components, allowance)
        };
        match placed {
            Ok(Placed::File(file)) => {
                unpacked.total_bytes += file.size;
                unpacked.files.push(file);
            }
            Ok(Placed::Symlink(path)) => unpacked.symlinks.push(path),
            Ok(Placed::Nothing) => {}
            Err(EntryError::Refused(refusal)) => {
                unpacked.refused.push(RefusedEntry {
                    path: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                    reason: refusal.to_string(),
                });
                if seen > limits.max_entries {
                    break;
                }
            }
            Err(EntryError::Fatal(err)) => return Err(err),
        }
    }
    Ok(unpacked)
}

/// What one accepted entry became.
enum Placed {
    File(UnpackedFile),
    Symlink(String),
    /// A directory, or an entry with nothing to place.
    Nothing,
}

fn place_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    destination: &Destination,
    strip: usize,
    allowance: Allowance,
) -> Result<Placed, EntryError> {
    let Some(kind) = rules::kind(entry.header().entry_type())? else {
        return Ok(Placed::Nothing);
    };
    let Some(rel) = rules::entry_path(&entry.path_bytes(), strip, kind == Kind::Directory)? else {
        return Ok(Placed::Nothing);
    };
    match kind {
        Kind::File => place_file(entry, destination, &rel, allowance),
        Kind::Directory => {
            destination.directory(&rel)?;
            Ok(Placed::Nothing)
        }
        Kind::Symlink => {
            let target = rules::symlink_target(&rel, entry.link_name_bytes().as_deref())?;
            destination.symlink(&rel, &target)?;
            Ok(Placed::Symlink(rel.to_string()))
        }
    }
}

fn place_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    destination: &Destination,
    rel: &RelPath,
    allowance: Allowance,
) -> Result<Placed, EntryError> {
    let declared = entry.size();
    allowance.admit(declared)?;
    let mode = entry.header().mode().map_err(|_| Refusal::UnreadableMode)?;
    let executable = mode & 0o111 != 0;
    let file = destination.file(rel, entry, declared, executable, allowance)?;
    Ok(Placed::File(file))
}
