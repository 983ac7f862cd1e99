//! Result files on this process's disk: found only inside the execution's
//! folder (no `..`, no symbolic link on the way out, regular files only),
//! read by range, and written from a stream.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::file::ResultFile;
use super::{ByteStream, ResultsError};

/// `file` under the execution's folder `root` when it really lies there:
/// only plain components, and no symbolic link on the way out of it.
pub(super) async fn confined(root: &Path, file: &ResultFile) -> Option<PathBuf> {
    let relative = file.local_path(Path::new(""));
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)))
    {
        return None;
    }
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let path = tokio::fs::canonicalize(root.join(&relative)).await.ok()?;
    // Whether it is a regular file is checked where it is opened.
    path.starts_with(&root).then_some(path)
}

/// The size of a regular file, `None` when there is none.
pub(super) async fn size(path: &Path) -> Result<Option<u64>, ResultsError> {
    match open_regular(path).await {
        Ok(file) => Ok(Some(
            file.metadata()
                .await
                .map_err(|e| ResultsError::io(path, e))?
                .len(),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ResultsError::io(path, error)),
    }
}

/// The bytes `range` of a regular file, streamed.
pub(super) async fn read(path: &Path, range: Range<u64>) -> Result<ByteStream, ResultsError> {
    let mut file = open_regular(path)
        .await
        .map_err(|e| ResultsError::io(path, e))?;
    file.seek(std::io::SeekFrom::Start(range.start))
        .await
        .map_err(|e| ResultsError::io(path, e))?;
    let shown = path.to_path_buf();
    let limited = file.take(range.end.saturating_sub(range.start));
    Ok(ReaderStream::new(limited)
        .map(move |chunk| chunk.map_err(|e| ResultsError::io(&shown, e)))
        .boxed())
}

/// Writes a stream to `dest` (through a temporary file, renamed at the end).
pub(super) async fn write(dest: &Path, mut stream: ByteStream) -> Result<(), ResultsError> {
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ResultsError::io(parent, e))?;
    }
    let partial = dest.with_extension("partial");
    let mut out = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| ResultsError::io(&partial, e))?;
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?)
            .await
            .map_err(|e| ResultsError::io(&partial, e))?;
    }
    out.flush()
        .await
        .map_err(|e| ResultsError::io(&partial, e))?;
    tokio::fs::rename(&partial, dest)
        .await
        .map_err(|e| ResultsError::io(dest, e))
}

/// Opens a regular file without following a symbolic link at its last step.
pub(super) async fn open_regular(path: &Path) -> std::io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .await?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a regular file",
        ));
    }
    Ok(file)
}
