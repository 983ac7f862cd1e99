//! Reading a running sandbox's output: agent lines become typed events, driver
//! lines become progress, everything else is kept as log text.
//!
//! Every line consumed advances a cursor stored with the line's events, so a
//! supervisor that re-attaches after a crash re-reads the output from the start,
//! skips what was recorded (re-parsing it silently to rebuild its tally), and
//! neither loses nor repeats an event.

use std::sync::Arc;

use futures::StreamExt;

use crate::agent::claude::StreamParser;
use crate::agent::{AgentEvent, AgentResult};
use crate::engine::{DEFAULT_MAX_LINE_BYTES, Engine, LogLine, LogStream};
use crate::execution::driver::{self, DriverMessage};
use crate::execution::recorder::Recorder;
use crate::execution::{EventBody, SupervisorEvent};

/// What the output told us, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Pumped {
    /// The agent's final report.
    pub result: Option<AgentResult>,
    /// The agent's session id.
    pub session_id: Option<String>,
    /// Tool calls made.
    pub tool_calls: u64,
    /// The driver could not set the sandbox up.
    pub setup_error: Option<String>,
    /// The agent process's exit code, as the driver saw it.
    pub agent_exit: Option<i64>,
    /// The agent started (the driver reached its agent phase).
    pub agent_started: bool,
    /// Lines consumed so far (both streams).
    pub lines: u64,
}

impl Pumped {
    fn observe(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::SessionStarted { session_id, .. } => {
                self.session_id.clone_from(session_id);
            }
            AgentEvent::ToolCall { .. } => self.tool_calls += 1,
            AgentEvent::Result(result) => {
                if result.session_id.is_some() {
                    self.session_id.clone_from(&result.session_id);
                }
                self.result = Some(result.clone());
            }
            _ => {}
        }
    }

    /// Turns one line into events, updating the tally.
    fn consume(&mut self, parser: &mut StreamParser, line: &LogLine) -> Vec<EventBody> {
        self.lines += 1;
        match line.stream {
            LogStream::Stdout => parser
                .parse_line(&line.text)
                .into_iter()
                .inspect(|event| self.observe(event))
                .map(EventBody::Agent)
                .collect(),
            LogStream::Stderr => match driver::parse_message(&line.text) {
                Some(DriverMessage::Phase(phase)) => {
                    if phase == "agent" {
                        self.agent_started = true;
                    }
                    vec![EventBody::progress(describe_phase(&phase))]
                }
                Some(DriverMessage::AgentExit(code)) => {
                    self.agent_exit = Some(code);
                    Vec::new()
                }
                Some(DriverMessage::Error(message)) => {
                    if !self.agent_started && self.setup_error.is_none() {
                        self.setup_error = Some(message.clone());
                    }
                    vec![EventBody::warning(message)]
                }
                Some(DriverMessage::Warning(message)) => vec![EventBody::warning(message)],
                None => vec![EventBody::Agentd(SupervisorEvent::Log {
                    line: line.text.clone(),
                })],
            },
        }
    }
}

/// Follows the container's output until it stops, recording as it goes. The
/// first `skip` lines were recorded before (by this or a previous supervisor).
pub async fn pump(engine: Engine, container: String, recorder: Arc<Recorder>, skip: u64) -> Pumped {
    let mut parser = StreamParser::default();
    let mut pumped = Pumped::default();
    let mut lines = Box::pin(engine.follow_lines(&container, DEFAULT_MAX_LINE_BYTES));
    while let Some(line) = lines.next().await {
        let mut line = match line {
            Ok(line) => line,
            Err(error) => {
                recorder
                    .emit(EventBody::warning(format!(
                        "lost the container's output: {error}"
                    )))
                    .await;
                break;
            }
        };
        if recorder.redactor().contains_secret(&line.text) {
            line.text = recorder.redactor().redact_str(&line.text);
        }
        let bodies = pumped.consume(&mut parser, &line);
        if pumped.lines <= skip {
            continue;
        }
        if line.stream == LogStream::Stdout {
            recorder.transcript(&line.text);
        }
        // A line that produced no event needs no write: re-reading it after a
        // restart produces nothing either, so the cursor may skip past it later.
        if !bodies.is_empty() {
            recorder.record(bodies, Some(pumped.lines)).await;
        }
    }
    pumped
}

fn describe_phase(phase: &str) -> String {
    match phase {
        "cloning" => "cloning the repository from the mirror".into(),
        "agent" => "agent started".into(),
        "collecting" => "committing the agent's work".into(),
        "collected" => "diff and bundle ready".into(),
        other => format!("sandbox: {other}"),
    }
}
