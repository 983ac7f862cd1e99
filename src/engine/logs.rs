//! A container's output as a stream of whole lines, stdout and stderr apart.
//!
//! Docker delivers output in frames that are not aligned to lines (and splits
//! lines longer than 16 KiB into several frames), so the bytes of each stream are
//! joined and re-split on newlines here. A line longer than the cap is cut and
//! marked rather than growing memory without bound.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::{Stream, StreamExt};

use super::docker::Engine;
use super::error::EngineError;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The agent's structured output.
    Stdout,
    /// Diagnostics (the in-container driver, the CLI's own errors).
    Stderr,
}

/// One line of container output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it was written.
    pub stream: LogStream,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
}

/// Default cap on one line: 8 MiB (a stream-json line carries whole tool results).
pub const DEFAULT_MAX_LINE_BYTES: usize = 8 << 20;

/// Joins byte chunks and yields complete lines.
#[derive(Debug)]
pub struct LineSplitter {
    buffer: Vec<u8>,
    max_line_bytes: usize,
    overflowed: usize,
}

impl LineSplitter {
    /// A splitter that cuts lines at `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> Self {
        LineSplitter {
            buffer: Vec::new(),
            max_line_bytes,
            overflowed: 0,
        }
    }

    /// Feeds a chunk; returns the lines it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            self.append(&rest[..newline]);
            lines.push(self.take());
            rest = &rest[newline + 1..];
        }
        self.append(rest);
        lines
    }

    /// Returns what is left once the stream has ended (a last line without a newline).
    pub fn finish(&mut self) -> Option<String> {
        if self.buffer.is_empty() && self.overflowed == 0 {
            None
        } else {
            Some(self.take())
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.buffer.len());
        let keep = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..keep]);
        self.overflowed += bytes.len() - keep;
    }

    fn take(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.buffer).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if self.overflowed > 0 {
            text.push_str(&format!(" … [agentd: {} bytes cut]", self.overflowed));
        }
        self.buffer.clear();
        self.overflowed = 0;
        text
    }
}

impl Engine {
    /// Follows a container's stdout and stderr from the beginning until it stops.
    pub fn follow_lines(
        &self,
        name: &str,
        max_line_bytes: usize,
    ) -> impl Stream<Item = Result<LogLine, EngineError>> + Send + 'static {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let container = name.to_string();
        let frames = self.docker().logs(name, Some(options));
        let state = (
            Box::pin(frames),
            LineSplitter::new(max_line_bytes),
            LineSplitter::new(max_line_bytes),
            container,
            false,
        );
        futures::stream::unfold(
            state,
            |(mut frames, mut out, mut err, container, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match frames.next().await {
                        Some(Ok(frame)) => {
                            let (splitter, stream, message) = match frame {
                                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                    (&mut out, LogStream::Stdout, message)
                                }
                                LogOutput::StdErr { message } => {
                                    (&mut err, LogStream::Stderr, message)
                                }
                                LogOutput::StdIn { .. } => continue,
                            };
                            let lines: Vec<_> = splitter
                                .push(&message)
                                .into_iter()
                                .map(|text| Ok(LogLine { stream, text }))
                                .collect();
                            if !lines.is_empty() {
                                let batch = futures::stream::iter(lines);
                                return Some((batch, (frames, out, err, container, false)));
                            }
                        }
                        Some(Err(source)) => {
                            let error = EngineError::Logs {
                                name: container.clone(),
                                source,
                            };
                            let batch = futures::stream::iter(vec![Err(error)]);
                            return Some((batch, (frames, out, err, container, true)));
                        }
                        None => {
                            let mut tail = Vec::new();
                            if let Some(text) = out.finish() {
                                tail.push(Ok(LogLine {
                                    stream: LogStream::Stdout,
                                    text,
                                }));
                            }
                            if let Some(text) = err.finish() {
                                tail.push(Ok(LogLine {
                                    stream: LogStream::Stderr,
                                    text,
                                }));
                            }
                            if tail.is_empty() {
                                return None;
                            }
                            let batch = futures::stream::iter(tail);
                            return Some((batch, (frames, out, err, container, true)));
                        }
                    }
                }
            },
        )
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_frames_and_splits_lines() {
        let mut splitter = LineSplitter::new(1024);
        assert!(splitter.push(b"{\"a\":").is_empty());
        assert_eq!(splitter.push(b"1}\n{\"b\"").as_slice(), ["{\"a\":1}"]);
        assert_eq!(splitter.push(b":2}\r\n\n").as_slice(), ["{\"b\":2}", ""]);
        assert_eq!(splitter.push(b"tail"), Vec::<String>::new());
        assert_eq!(splitter.finish().as_deref(), Some("tail"));
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn cuts_overlong_lines_and_says_so() {
        let mut splitter = LineSplitter::new(4);
        let lines = splitter.push(b"abcdefgh\nok\n");
        assert_eq!(lines[0], "abcd … [agentd: 4 bytes cut]");
        assert_eq!(lines[1], "ok");
    }

    #[test]
    fn keeps_invalid_utf8_as_replacement() {
        let mut splitter = LineSplitter::new(64);
        let lines = splitter.push(b"caf\xc3\n\xff\n");
        assert_eq!(
            lines,
            vec!["caf\u{fffd}".to_string(), "\u{fffd}".to_string()]
        );
    }
}
