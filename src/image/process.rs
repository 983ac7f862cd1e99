//! Running a host tool (mmdebstrap, pip) with its output forwarded line by line to
//! the caller's progress callback, keeping the last lines for the error message.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

/// How many of the last output lines an error message quotes.
const TAIL_LINES: usize = 20;

/// A finished tool run.
pub(crate) struct Finished {
    pub status: ExitStatus,
    /// The last lines it printed (stderr, then stdout), for error messages.
    pub tail: String,
}

/// Runs `command` to completion, forwarding each output line as `<label>: <line>`.
/// The child is killed if the returned future is dropped (a cancelled build).
pub(crate) async fn run_logged(
    mut command: Command,
    label: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> std::io::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out_tail, err_tail) = tokio::join!(
        forward(stdout, label, progress),
        forward(stderr, label, progress)
    );
    let status = child.wait().await?;
    let tail = err_tail?
        .into_iter()
        .chain(out_tail?)
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Finished { status, tail })
}

async fn forward(
    stream: Option<impl AsyncRead + Unpin>,
    label: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> std::io::Result<VecDeque<String>> {
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let Some(stream) = stream else {
        return Ok(tail);
    };
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer).await? == 0 {
            return Ok(tail);
        }
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        progress(&format!("{label}: {line}"));
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
    }
}
