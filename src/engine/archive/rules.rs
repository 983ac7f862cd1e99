//! What an archive entry may be: the rules on entry types, paths and symlink targets, and the
//! reasons an entry is refused. Pure logic; nothing here touches the filesystem.

use std::fmt;

use tar::EntryType;

/// Why one entry was not unpacked. Each message names the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    AbsolutePath,
    ParentComponent,
    NulByte,
    NotUtf8,
    EmptyPath,
    NothingAfterStrip(usize),
    HardLink,
    Special(&'static str),
    UnsupportedType(u8),
    SymlinkWithoutTarget,
    SymlinkAbsolute,
    SymlinkEscapes,
    SymlinkDotDotAfterName,
    ThroughSymlink(String),
    ParentNotDirectory(String),
    AlreadyExists,
    NameTooLong,
    UnreadableMode,
    EntryTooLarge(u64),
    TotalExceeded(u64),
    TooManyEntries(u64),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AbsolutePath => f.write_str("absolute path"),
            Self::ParentComponent => f.write_str("path has a '..' component"),
            Self::NulByte => f.write_str("path has a NUL byte"),
            Self::NotUtf8 => f.write_str("path or link target is not valid UTF-8"),
            Self::EmptyPath => f.write_str("path normalises to nothing"),
            Self::NothingAfterStrip(n) => {
                write!(f, "nothing left after stripping {n} leading components")
            }
            Self::HardLink => f.write_str("hard links are not allowed"),
            Self::Special(kind) => write!(f, "{kind} entries are not allowed"),
            Self::UnsupportedType(byte) => {
                write!(f, "unsupported entry type {:?}", char::from(*byte))
            }
            Self::SymlinkWithoutTarget => f.write_str("symlink has an empty target"),
            Self::SymlinkAbsolute => f.write_str("symlink target is absolute"),
            Self::SymlinkEscapes => f.write_str("symlink target leaves the destination"),
            Self::SymlinkDotDotAfterName => f.write_str(
                "symlink target has '..' after a name (only leading '..' can be checked)",
            ),
            Self::ThroughSymlink(at) => write!(f, "parent path passes through the symlink '{at}'"),
            Self::ParentNotDirectory(at) => write!(f, "parent '{at}' is not a directory"),
            Self::AlreadyExists => f.write_str("something already exists at this path"),
            Self::NameTooLong => f.write_str("path is too long for the filesystem"),
            Self::UnreadableMode => f.write_str("mode field is unreadable"),
            Self::EntryTooLarge(limit) => write!(f, "file exceeds max_entry_bytes ({limit})"),
            Self::TotalExceeded(limit) => write!(f, "file would exceed max_total_bytes ({limit})"),
            Self::TooManyEntries(limit) => write!(
                f,
                "archive exceeds max_entries ({limit}); this and later entries were not read"
            ),
        }
    }
}

/// What an accepted entry type becomes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Directory,
    Symlink,
}

/// Sorts an entry type into what may be placed, or refuses it. `Ok(None)` is metadata with no
/// place on disk (PAX global headers).
pub(super) fn kind(entry_type: EntryType) -> Result<Option<Kind>, Refusal> {
    match entry_type {
        EntryType::Regular | EntryType::Continuous => Ok(Some(Kind::File)),
        EntryType::Directory => Ok(Some(Kind::Directory)),
        EntryType::Symlink => Ok(Some(Kind::Symlink)),
        EntryType::XGlobalHeader => Ok(None),
        EntryType::Link => Err(Refusal::HardLink),
        EntryType::Char => Err(Refusal::Special("character device")),
        EntryType::Block => Err(Refusal::Special("block device")),
        EntryType::Fifo => Err(Refusal::Special("fifo")),
        other => Err(Refusal::UnsupportedType(other.as_byte())),
    }
}

/// A checked path relative to the destination: at least one component, each a plain name
/// (no '/', no NUL, not '.' or '..').
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RelPath(Vec<String>);

impl RelPath {
    pub(super) fn components(&self) -> &[String] {
        &self.0
    }

    /// The components above the entry itself.
    pub(super) fn parents(&self) -> &[String] {
        &self.0[..self.0.len() - 1]
    }

    /// The first `n` components joined with '/', for messages.
    pub(super) fn prefix(&self, n: usize) -> String {
        self.0[..n.min(self.0.len())].join("/")
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// Checks an entry's raw path and strips `strip` leading components.
///
/// `Ok(None)` means a directory with nothing left (the archive's top directory, or `./`): it is
/// the destination itself and is skipped without a refusal.
pub(super) fn entry_path(
    raw: &[u8],
    strip: usize,
    is_dir: bool,
) -> Result<Option<RelPath>, Refusal> {
    if raw.contains(&0) {
        return Err(Refusal::NulByte);
    }
    if raw.first() == Some(&b'/') {
        return Err(Refusal::AbsolutePath);
    }
    let text = std::str::from_utf8(raw).map_err(|_| Refusal::NotUtf8)?;
    let mut names = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Refusal::ParentComponent),
            name => names.push(name.to_owned()),
        }
    }
    if names.is_empty() {
        return if is_dir {
            Ok(None)
        } else {
            Err(Refusal::EmptyPath)
        };
    }
    if names.len() <= strip {
        return if is_dir {
            Ok(None)
        } else {
            Err(Refusal::NothingAfterStrip(strip))
        };
    }
    Ok(Some(RelPath(names.split_off(strip))))
}

/// Checks a symlink's target and returns it as text to write verbatim.
///
/// The target is resolved lexically from the link's own directory. Only leading `..` are
/// accepted: `..` after a name could climb out of a directory reached through another symlink,
/// which lexical resolution cannot see. With that rule, every accepted link resolves inside the
/// destination, however links are chained.
pub(super) fn symlink_target(link: &RelPath, raw: Option<&[u8]>) -> Result<String, Refusal> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        return Err(Refusal::SymlinkWithoutTarget);
    }
    if raw.contains(&0) {
        return Err(Refusal::NulByte);
    }
    if raw[0] == b'/' {
        return Err(Refusal::SymlinkAbsolute);
    }
    let text = std::str::from_utf8(raw).map_err(|_| Refusal::NotUtf8)?;
    let mut depth = link.parents().len();
    let mut after_name = false;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." if after_name => return Err(Refusal::SymlinkDotDotAfterName),
            ".." => depth = depth.checked_sub(1).ok_or(Refusal::SymlinkEscapes)?,
            _ => after_name = true,
        }
    }
    Ok(text.to_owned())
}
