//! The unix socket the sandbox's tool hook asks agentd through, one per
//! execution, beside the model socket.
//!
//! A question is the hook's stdin (the CLI's JSON description of the call,
//! read within [`READ_TIMEOUT`]); only its `tool_use_id` is used. The answer is
//! one line: `allow`, or `deny` TAB a reason. Connections are few
//! ([`MAX_CONNECTIONS`]) and short: the sandbox cannot hold agentd's
//! descriptors or memory with them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::execution::Decision;
use crate::gateway::{MAX_TOOL_USE_ID, ServedSocket, SocketFile, restrict_to_sandbox_user};

use super::tool_calls::{ToolCalls, denial_reason};

/// The socket's file name in the execution's socket folder.
pub const TOOL_SOCKET_NAME: &str = "tools.sock";
/// The largest question parsed whole: 4 MiB (see [`read_question`]).
pub const MAX_QUESTION: usize = 4 << 20;
/// How long a question may take to arrive: 5 s.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a question waits for the gateway to see its call: 2 s. The
/// gateway reads each tool call before passing its bytes on, so the CLI cannot
/// ask before agentd knows the call; the wait is only a margin.
pub const SEEN_TIMEOUT: Duration = Duration::from_secs(2);
/// Questions answered at once: 4 (the CLI asks one per call).
pub const MAX_CONNECTIONS: usize = 4;

/// A listening tool socket. Closing (or dropping) it stops it and removes
/// the socket file.
pub(crate) struct ToolDoor {
    served: ServedSocket,
}

impl ToolDoor {
    /// Binds `path` (usable by the sandbox's user only) and answers there.
    pub(crate) fn open(path: &Path, calls: Arc<ToolCalls>) -> std::io::Result<ToolDoor> {
        let (listener, file) = SocketFile::bind(path)?;
        restrict_to_sandbox_user(path)?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, calls, shutdown.clone()));
        Ok(ToolDoor {
            served: ServedSocket::new(file, shutdown, task),
        })
    }

    /// Stops answering and removes the socket file.
    pub(crate) async fn close(self) {
        self.served.close().await;
    }
}

async fn serve(listener: UnixListener, calls: Arc<ToolCalls>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "tool socket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let calls = calls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = answer(stream, &calls) => {}
            }
        });
    }
}

async fn answer(mut stream: UnixStream, calls: &ToolCalls) {
    let id = match tokio::time::timeout(READ_TIMEOUT, read_question(&mut stream)).await {
        Ok(Some(id)) => Some(id),
        _ => None,
    };
    let verdict = match &id {
        Some(id) => calls.decide(id, SEEN_TIMEOUT).await,
        None => None,
    };
    let line = match &verdict {
        Some(v) if v.decision == Decision::Allow => "allow\n".to_string(),
        _ => format!("deny\t{}\n", denial_reason(verdict.as_ref())),
    };
    if id.is_some() && verdict.is_none() {
        tracing::warn!("the sandbox asked about a tool call the model never made");
    }
    let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(line.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// The question's `tool_use_id`, read to the end. Its first
/// [`MAX_QUESTION`] bytes are parsed; a longer question (a large tool input)
/// is read through, and its id taken from its end, where the CLI writes it.
/// Either way the id only says which call is asked about.
async fn read_question(stream: &mut UnixStream) -> Option<String> {
    let mut head = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut total = 0usize;
    loop {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            break;
        }
        total = total.saturating_add(n);
        if total > MAX_QUESTION_TOTAL {
            return None;
        }
        let room = MAX_QUESTION.saturating_sub(head.len()).min(n);
        head.extend_from_slice(&buffer[..room]);
        tail.extend_from_slice(&buffer[..n]);
        if tail.len() > TAIL {
            tail.drain(..tail.len() - TAIL);
        }
    }
    let id = if total <= MAX_QUESTION {
        let value: serde_json::Value = serde_json::from_slice(&head).ok()?;
        value.get("tool_use_id")?.as_str()?.to_string()
    } else {
        last_id(&tail)?
    };
    (!id.is_empty() && id.len() <= MAX_TOOL_USE_ID).then_some(id)
}

/// Bytes of a long question's end kept to find its id in.
const TAIL: usize = 4096;
/// The most bytes of a question read at all: 64 MiB.
pub const MAX_QUESTION_TOTAL: usize = 64 << 20;

/// The value of the last `"tool_use_id":"…"` in `tail` (the top-level field
/// the CLI writes last; a quote inside a string value would be escaped).
fn last_id(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let key = "\"tool_use_id\":\"";
    let at = text.rfind(key)? + key.len();
    let value = &text[at..];
    let end = value.find('"')?;
    let id = &value[..end];
    id.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_questions_id_is_its_last() {
        let tail = br#"..."tool_input":{"x":{"tool_use_id":"toolu_a"}},"tool_use_id":"toolu_b"}"#;
        assert_eq!(last_id(tail).as_deref(), Some("toolu_b"));
        assert_eq!(last_id(br#""tool_use_id":"to\"olu"}"#), None);
    }
}
