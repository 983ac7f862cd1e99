//! Writing a cassette while an execution runs: one whole line per exchange,
//! written as soon as the exchange ends, so a crash loses at most the
//! exchanges still in flight.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use hyper::HeaderMap;

use super::CassetteError;
use super::format::{CassetteHeader, Exchange, exchange_line, header_line};
use super::recorder::ExchangeRecorder;

/// The cassette of one execution, open for appending.
///
/// Shared by all the execution's requests (put it in an `Arc`): it hands out
/// sequence numbers and the execution's clock, and [`append`](Self::append)
/// takes `&self`. Each line is written whole under a lock, so exchanges ending
/// at the same time never interleave.
#[derive(Debug)]
pub struct CassetteWriter {
    path: PathBuf,
    file: Mutex<File>,
    next_seq: AtomicU64,
    /// When the execution's first request started; `started_ms` counts from it.
    epoch: OnceLock<Instant>,
    /// Bytes in the file so far.
    written: AtomicU64,
    /// Most bytes the file may hold: [`super::MAX_CASSETTE_BYTES`].
    cap: u64,
}

impl CassetteWriter {
    /// Creates the cassette file (which must not exist yet: a recording is never
    /// overwritten) and writes its header line.
    pub fn create(path: &Path) -> Result<CassetteWriter, CassetteError> {
        let write_error = |source| CassetteError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(write_error)?;
        let mut line = header_line(&CassetteHeader::now()).map_err(CassetteError::Encode)?;
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(write_error)?;
        Ok(CassetteWriter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            next_seq: AtomicU64::new(0),
            epoch: OnceLock::new(),
            written: AtomicU64::new(line.len() as u64),
            cap: super::MAX_CASSETTE_BYTES,
        })
    }

    /// Reopens a cassette a previous supervisor was writing (after a restart),
    /// numbering on from its last exchange; creates it if it does not exist.
    /// Times of the exchanges recorded from now on count from the reopening.
    pub fn resume(path: &Path) -> Result<CassetteWriter, CassetteError> {
        if !path.exists() {
            return CassetteWriter::create(path);
        }
        let recorded = super::Cassette::load(path)?;
        let next = recorded
            .exchanges
            .iter()
            .map(|exchange| exchange.seq + 1)
            .max()
            .unwrap_or(0);
        let file =
            File::options()
                .append(true)
                .open(path)
                .map_err(|source| CassetteError::Write {
                    path: path.display().to_string(),
                    source,
                })?;
        Ok(CassetteWriter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            next_seq: AtomicU64::new(next),
            epoch: OnceLock::new(),
            written: AtomicU64::new(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)),
            cap: super::MAX_CASSETTE_BYTES,
        })
    }

    /// Where the cassette is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts recording one request: takes the next sequence number and the time
    /// since the execution's first request (this one, for the first call).
    /// `path` includes the query; `body` is the whole request body.
    pub fn recorder(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ExchangeRecorder {
        let now = Instant::now();
        let epoch = *self.epoch.get_or_init(|| now);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        ExchangeRecorder::new(
            seq,
            now.saturating_duration_since(epoch),
            method,
            path,
            headers,
            body,
        )
    }

    /// Appends one exchange as one line and hands it to the operating system
    /// before returning. Blocks for the time of one write (a few MB at most for
    /// ordinary exchanges); callable from several tasks at once.
    pub fn append(&self, exchange: &Exchange) -> Result<(), CassetteError> {
        let mut line = exchange_line(exchange).map_err(CassetteError::Encode)?;
        line.push('\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let size = line.len() as u64;
        if self.written.load(Ordering::Relaxed).saturating_add(size) > self.cap {
            return Err(CassetteError::Full {
                path: self.path.display().to_string(),
            });
        }
        self.written.fetch_add(size, Ordering::Relaxed);
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|source| CassetteError::Write {
                path: self.path.display().to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::gateway::cassette::Cassette;

    #[test]
    fn a_full_cassette_refuses_more_and_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cassette.jsonl");
        let mut writer = CassetteWriter::create(&path).unwrap();
        writer.cap = 250_000;
        writer.append(&exchange(0, 100_000)).unwrap();
        writer.append(&exchange(1, 100_000)).unwrap();
        let error = writer.append(&exchange(2, 100_000)).unwrap_err();
        assert!(matches!(error, CassetteError::Full { .. }), "{error}");
        assert!(std::fs::metadata(&path).unwrap().len() <= 250_000);
        assert_eq!(Cassette::load(&path).unwrap().exchanges.len(), 2);
    }

    fn exchange(seq: u64, size: usize) -> Exchange {
        Exchange {
            seq,
            method: "POST".into(),
            path: "/v1/messages".into(),
            request_headers: Vec::new(),
            request_body: format!("{{\"n\":{seq}}}").into_bytes(),
            status: 200,
            response_headers: Vec::new(),
            // Long enough that a line takes several writes' worth of bytes.
            response_body: vec![b'a' + (seq % 26) as u8; size],
            started_ms: seq,
            first_byte_ms: Some(1),
            duration_ms: 2,
            turn: Some(seq as usize),
            truncated: false,
            interrupted: None,
        }
    }

    #[test]
    fn concurrent_appends_are_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let writer = Arc::new(CassetteWriter::create(&path).unwrap());
        let threads: Vec<_> = (0..8u64)
            .map(|thread| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let seq = thread * 100 + i;
                        writer
                            .append(&exchange(seq, 100_000 + seq as usize))
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let cassette = Cassette::load(&path).unwrap();
        assert_eq!(cassette.exchanges.len(), 200);
        let mut seqs: Vec<u64> = cassette.exchanges.iter().map(|e| e.seq).collect();
        seqs.sort_unstable();
        let expected: Vec<u64> = (0..8)
            .flat_map(|t| (0..25).map(move |i| t * 100 + i))
            .collect();
        assert_eq!(seqs, expected);
        for read in &cassette.exchanges {
            assert_eq!(read, &exchange(read.seq, 100_000 + read.seq as usize));
        }
    }

    #[test]
    fn never_overwrites_and_numbers_requests_from_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let writer = CassetteWriter::create(&path).unwrap();
        assert!(matches!(
            CassetteWriter::create(&path),
            Err(CassetteError::Write { .. })
        ));
        let first = writer.recorder("POST", "/v1/messages", &HeaderMap::new(), b"{}");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second = writer.recorder("POST", "/v1/messages", &HeaderMap::new(), b"{}");
        let (first, second) = (first.finish(), second.finish());
        assert_eq!((first.seq, second.seq), (0, 1));
        assert_eq!(first.started_ms, 0);
        assert!(second.started_ms >= 30, "{}", second.started_ms);
        let cassette = Cassette::load(&path).unwrap();
        assert!(cassette.exchanges.is_empty());
    }
}
