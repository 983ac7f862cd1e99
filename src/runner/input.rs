//! Streaming input: the agent's standard input, written by agentd alone.
//!
//! The prompt goes first, as a stream-json user line; then, in order, every
//! message and interrupt a client gave any replica (the store holds them
//! until this runner delivers them). The CLI echoes each user line when it
//! takes it (`--replay-user-messages`) and reports a `result` at the end of
//! every turn; once a result arrived with every line taken and none queued,
//! the input is closed and the agent ends by itself. After an interrupt the
//! input stays open a while for the redirecting message.
//!
//! What the agent prints is its claim: a forged echo or result can only make
//! its own execution's input close early or stay open until the time limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::execution::{AgentInput, EventBody, InputKind, SupervisorEvent};
use crate::store::Store;

use tokio_util::task::AbortOnDropHandle;

use super::Runner;
use super::prepare::Prepared;
use super::recorder::Recorder;
use super::run::Run;

/// How long the input stays open after an interrupt for a message to follow.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(60);

/// How often the store is asked for inputs another replica accepted.
const POLL: Duration = Duration::from_millis(250);

/// What the agent's output says about its input so far.
#[derive(Debug, Default)]
struct Seen {
    /// User lines the CLI took (its echoes).
    taken: u64,
    /// Results reported.
    results: u64,
    /// The last result's count of turns still queued.
    queued: u64,
    /// The agent's input was taken when the last result came.
    taken_at_result: u64,
}

/// One streaming execution's input: what the output pump tells it, and the
/// wake-up the API rings when a client said something.
#[derive(Debug, Default)]
pub struct InputChannel {
    seen: Mutex<Seen>,
    wake: Notify,
}

impl InputChannel {
    /// Something changed (an input was accepted, the agent echoed or ended a
    /// turn): the writer looks again now.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Reads one line of the agent's stdout for echoes and results.
    pub fn observe(&self, line: &str) {
        if !(line.contains("\"isReplay\"") || line.contains("\"result\"")) {
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match value["type"].as_str() {
            Some("user") if value["isReplay"] == true => seen.taken += 1,
            Some("result") => {
                seen.results += 1;
                seen.queued = value["queued_turn_count"].as_u64().unwrap_or(0);
                seen.taken_at_result = seen.taken;
            }
            _ => return,
        }
        drop(seen);
        self.nudge();
    }

    /// Whether the input may close: the agent reported a result after
    /// taking every one of the `written` user lines, with none queued.
    fn finished(&self, written: u64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.results > 0 && seen.queued == 0 && seen.taken_at_result >= written
    }
}

/// The writer's side: writes the prompt, then delivers inputs until the
/// agent is done with its input (or the container is gone), then closes it.
struct InputWriter {
    id: String,
    store: Arc<dyn Store>,
    recorder: Arc<Recorder>,
    channel: Arc<InputChannel>,
    input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// A stream-json user line.
fn user_line(text: &str) -> String {
    let line = json!({"type": "user", "message": {"role": "user", "content": text}});
    format!("{line}\n")
}

/// A stream-json interrupt request.
fn interrupt_line(seq: u64) -> String {
    let line = json!({
        "type": "control_request",
        "request_id": format!("agentd-interrupt-{seq}"),
        "request": {"subtype": "interrupt"},
    });
    format!("{line}\n")
}

impl InputWriter {
    /// Runs until the input is closed. Never fails: a write that fails means
    /// the agent is gone, and the execution ends as its container does.
    async fn run(mut self, prompt: &str) {
        let mut written = 0u64;
        if self.write(&user_line(prompt)).await.is_err() {
            return self.close(GONE).await;
        }
        written += 1;
        let mut held_until: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = self.channel.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            let pending = match self.store.pending_inputs(&self.id).await {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::warn!(%error, "reading the agent's pending input");
                    Vec::new()
                }
            };
            for input in pending {
                if self.deliver(&input).await.is_err() {
                    return self.close(GONE).await;
                }
                match input.kind {
                    InputKind::Message => {
                        written += 1;
                        held_until = None;
                    }
                    InputKind::Interrupt => held_until = Some(Instant::now() + INTERRUPT_GRACE),
                    InputKind::Closed => {}
                }
            }
            let held = held_until.is_some_and(|until| Instant::now() < until);
            if !held && self.channel.finished(written) {
                let reason = if held_until.is_some() {
                    "no message followed the interrupt"
                } else {
                    "the agent reported its result with no message pending"
                };
                self.close(reason).await;
                return;
            }
        }
    }

    async fn write(&mut self, line: &str) -> std::io::Result<()> {
        self.input.write_all(line.as_bytes()).await?;
        self.input.flush().await
    }

    /// Writes one input to the agent, records it and marks it delivered.
    async fn deliver(&mut self, input: &AgentInput) -> std::io::Result<()> {
        let (line, event) = match input.kind {
            InputKind::Closed => return Ok(()),
            InputKind::Message => (
                user_line(&input.text),
                SupervisorEvent::UserMessage {
                    text: input.text.clone(),
                    sender: input.sender.clone(),
                },
            ),
            InputKind::Interrupt => (
                interrupt_line(input.seq),
                SupervisorEvent::InterruptRequested {
                    sender: input.sender.clone(),
                },
            ),
        };
        self.write(&line).await?;
        if let Err(error) = self.store.input_delivered(&self.id, input.seq).await {
            tracing::warn!(%error, seq = input.seq, "marking an input delivered");
        }
        self.recorder.emit(EventBody::Agentd(event)).await;
        Ok(())
    }

    async fn close(mut self, reason: &str) {
        let _ = self.input.shutdown().await;
        close_input(self.store.as_ref(), &self.recorder, &self.id, reason).await;
    }
}

/// A streaming execution's input while its watch lasts: the writer's task
/// (aborted with it) and the channel the API nudges (forgotten with it).
pub(crate) struct OpenInput<'a> {
    runner: &'a Runner,
    id: &'a str,
    channel: Option<Arc<InputChannel>>,
    _writer: Option<AbortOnDropHandle<()>>,
}

impl OpenInput<'_> {
    /// What the output pump tells of echoes and results (none when the
    /// execution has no input).
    pub(crate) fn channel(&self) -> Option<Arc<InputChannel>> {
        self.channel.clone()
    }
}

impl Drop for OpenInput<'_> {
    fn drop(&mut self) {
        if self.channel.is_some() {
            self.runner
                .inputs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(self.id);
        }
    }
}

impl Runner {
    /// Starts writing `run`'s input when `prepared` attached to it. A
    /// streaming execution re-attached after a restart has no attachment
    /// (the old process's went with it, which closed the input): its input
    /// is marked closed at once.
    pub(crate) async fn open_input<'a>(
        &'a self,
        run: &'a Run,
        prepared: &Prepared,
    ) -> OpenInput<'a> {
        let attached = prepared
            .input
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut open = OpenInput {
            runner: self,
            id: &run.id,
            channel: None,
            _writer: None,
        };
        let Some(input) = attached else {
            if run.record.request.streaming_input {
                close_input(
                    self.store.as_ref(),
                    &run.recorder,
                    &run.id,
                    "agentd restarted and its attachment to the agent's input is gone: the agent ends its turn",
                )
                .await;
            }
            return open;
        };
        let channel = Arc::new(InputChannel::default());
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.id.clone(), channel.clone());
        let writer = InputWriter {
            id: run.id.clone(),
            store: self.store.clone(),
            recorder: run.recorder.clone(),
            channel: channel.clone(),
            input,
        };
        let prompt = run.record.request.prompt.clone();
        open._writer = Some(AbortOnDropHandle::new(tokio::spawn(
            tracing::Instrument::in_current_span(async move { writer.run(&prompt).await }),
        )));
        open.channel = Some(channel);
        open
    }
}

/// Why the writer stopped when the agent no longer read its input.
const GONE: &str = "the agent no longer reads its input (it ended)";

/// Closes execution `id`'s input in the store, once: later messages are
/// refused (409), an `input_closed` event says why, and a message accepted
/// in the moment before, which never reached the agent, is said in a
/// warning instead of waiting forever.
pub(crate) async fn close_input(store: &dyn Store, recorder: &Recorder, id: &str, reason: &str) {
    match store
        .add_input(id, InputKind::Closed, reason, "agentd")
        .await
    {
        Ok(Some(_)) => {
            recorder
                .emit(EventBody::Agentd(SupervisorEvent::InputClosed {
                    reason: reason.to_string(),
                }))
                .await
        }
        Ok(None) => return,
        Err(error) => tracing::warn!(%error, "closing the agent's input in the store"),
    }
    let Ok(stragglers) = store.pending_inputs(id).await else {
        return;
    };
    for input in stragglers {
        let _ = store.input_delivered(id, input.seq).await;
        recorder
            .emit(EventBody::warning(format!(
                "{} {} from {} arrived as the agent's input closed and was not delivered",
                input.kind.as_str(),
                input.seq,
                input.sender
            )))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_closes_after_a_result_that_took_every_line() {
        let channel = InputChannel::default();
        assert!(!channel.finished(1));
        channel.observe(r#"{"type":"user","message":{"content":"p"},"isReplay":true}"#);
        assert!(!channel.finished(1), "taken, but no result yet");
        channel.observe(r#"{"type":"result","subtype":"success","queued_turn_count":0}"#);
        assert!(channel.finished(1));
        assert!(!channel.finished(2), "a message written since is pending");
        channel.observe(r#"{"type":"user","message":{"content":"m"},"isReplay":true}"#);
        assert!(
            !channel.finished(2),
            "taken after the last result: its turn runs"
        );
        channel.observe(r#"{"type":"result","subtype":"success","queued_turn_count":1}"#);
        assert!(!channel.finished(2), "a turn is still queued");
        channel.observe(r#"{"type":"result","subtype":"success","queued_turn_count":0}"#);
        assert!(channel.finished(2));
    }

    #[test]
    fn other_lines_change_nothing() {
        let channel = InputChannel::default();
        for line in [
            "not json \"result\"",
            r#"{"type":"user","message":{"content":"tool"},"isReplay":false}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"\"result\""}]}}"#,
        ] {
            channel.observe(line);
        }
        assert!(!channel.finished(0));
    }

    #[test]
    fn lines_are_stream_json() {
        let user: Value = serde_json::from_str(user_line("a \"quoted\"\nline").trim()).unwrap();
        assert_eq!(user["message"]["content"], "a \"quoted\"\nline");
        assert!(!user_line("x\ny").trim_end().contains('\n'));
        let interrupt: Value = serde_json::from_str(interrupt_line(3).trim()).unwrap();
        assert_eq!(interrupt["request"]["subtype"], "interrupt");
    }
}
