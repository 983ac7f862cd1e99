//! Reading a running sandbox's output: agent lines become typed events, driver
//! lines become progress and observations, everything else is kept as log text.
//!
//! The container's stdout carries the agent's output (through the driver's
//! relay): what it says is the agent's *claim*. Its stderr belongs to the
//! driver alone, which runs as another uid than the agent: what it reports
//! (phases, the agent's exit code, the workspace's use) is observed.
//!
//! Lines are read in batches (whatever the engine has ready, up to
//! [`BATCH_LINES`]) and each batch's events are stored in one transaction with a
//! cursor: a supervisor that re-attaches after a crash re-reads the output from
//! the start, skips what was recorded (re-parsing it silently to rebuild its
//! tally and its event budget), and neither loses nor repeats an event.

use std::sync::Arc;

use futures::StreamExt;

use crate::agent::claude::StreamParser;
use crate::engine::{DEFAULT_MAX_LINE_BYTES, Engine, LogLine, LogStream};
use crate::execution::{AgentEvent, AgentResult};
use crate::execution::{EventBody, SupervisorEvent};
use crate::runner::bounds::EventBudget;
use crate::runner::driver::{self, DriverMessage, WorkspaceUse};
use crate::runner::recorder::Recorder;

/// Most lines turned into events and stored in one transaction.
pub const BATCH_LINES: usize = 1024;

/// What the output told us, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Pumped {
    /// The agent's final report (its claim: the last `result` line it printed).
    pub result: Option<AgentResult>,
    /// The agent's session id (its claim).
    pub session_id: Option<String>,
    /// Tool calls the agent's output showed (its claim).
    pub claimed_tool_calls: u64,
    /// The driver could not set the sandbox up.
    pub setup_error: Option<String>,
    /// The driver could not collect the agent's work.
    pub collect_error: Option<String>,
    /// A teardown hook whose failure fails the execution failed.
    pub teardown_error: Option<String>,
    /// The request's hooks (to name a hook's command in its events).
    pub hooks: crate::execution::Hooks,
    /// The agent process's exit code, as the driver saw it.
    pub agent_exit: Option<i64>,
    /// The agent started (the driver reached its agent phase).
    pub agent_started: bool,
    /// The driver entered its collecting phase.
    pub collecting: bool,
    /// The relay dropped this much of the agent's output (bytes, lines).
    pub output_dropped: Option<(u64, u64)>,
    /// The workspace's use at the end, as the kernel reported it to the driver.
    pub workspace: Option<WorkspaceUse>,
    /// Lines consumed so far (both streams).
    pub lines: u64,
    /// Agent events kept and dropped against the execution's budget.
    pub budget: EventBudget,
}

impl Pumped {
    fn observe(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::SessionStarted { session_id, .. } => {
                self.session_id.clone_from(session_id);
            }
            AgentEvent::ToolCall { .. } => self.claimed_tool_calls += 1,
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
                    match phase.as_str() {
                        "agent" => self.agent_started = true,
                        "collecting" => self.collecting = true,
                        _ => {}
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
                    } else if self.collecting && self.collect_error.is_none() {
                        self.collect_error = Some(message.clone());
                    }
                    vec![EventBody::warning(message)]
                }
                Some(DriverMessage::Warning(message)) => vec![EventBody::warning(message)],
                Some(DriverMessage::OutputDropped { bytes, lines }) => {
                    self.output_dropped = Some((bytes, lines));
                    vec![EventBody::warning(format!(
                        "the sandbox dropped {bytes} bytes ({lines} lines) of the agent's output \
                         over its budget ({} MiB, {} lines); the end of the output was kept",
                        driver::OUTPUT_BUDGET_BYTES >> 20,
                        driver::OUTPUT_BUDGET_LINES
                    ))]
                }
                Some(DriverMessage::HookStarted { stage, index }) => {
                    let command = self
                        .hooks
                        .each()
                        .find(|(s, i, ..)| *s == stage && *i == index)
                        .map(|(_, _, command, ..)| command.to_string())
                        .unwrap_or_default();
                    vec![EventBody::Agentd(SupervisorEvent::HookStarted {
                        stage,
                        index,
                        command,
                    })]
                }
                Some(DriverMessage::HookOutput { stage, index, line }) => {
                    vec![EventBody::Agentd(SupervisorEvent::HookOutput {
                        stage,
                        index,
                        line,
                    })]
                }
                Some(DriverMessage::HookFinished {
                    stage,
                    index,
                    exit_code,
                    duration_ms,
                }) => vec![EventBody::Agentd(SupervisorEvent::HookFinished {
                    stage,
                    index,
                    exit_code,
                    duration_ms,
                })],
                Some(DriverMessage::TeardownFailed(message)) => {
                    if self.teardown_error.is_none() {
                        self.teardown_error = Some(message.clone());
                    }
                    vec![EventBody::warning(message)]
                }
                Some(DriverMessage::Workspace(usage)) => {
                    self.workspace = Some(usage);
                    Vec::new()
                }
                None => vec![EventBody::Agentd(SupervisorEvent::Log {
                    line: line.text.clone(),
                })],
            },
        }
    }
}

/// Follows the container's output until it stops, recording as it goes. The
/// first `skip` lines were recorded before (by this or a previous supervisor).
pub async fn pump(
    engine: Engine,
    container: String,
    recorder: Arc<Recorder>,
    skip: u64,
    hooks: crate::execution::Hooks,
    input: Option<Arc<crate::runner::input::InputChannel>>,
) -> Pumped {
    let mut parser = StreamParser::default();
    let mut pumped = Pumped {
        hooks,
        ..Pumped::default()
    };
    let mut batches = Box::pin(
        engine
            .follow_lines(&container, DEFAULT_MAX_LINE_BYTES)
            .ready_chunks(BATCH_LINES),
    );
    let mut lost = None;
    while let Some(batch) = batches.next().await {
        let mut bodies = Vec::new();
        let mut cursor = None;
        for line in batch {
            let mut line = match line {
                Ok(line) => line,
                Err(error) => {
                    lost = Some(error);
                    break;
                }
            };
            if recorder.redactor().contains_secret(&line.text) {
                line.text = recorder.redactor().redact_str(&line.text);
            }
            let produced = pumped.consume(&mut parser, &line);
            let kept = pumped.budget.admit(produced);
            if pumped.lines <= skip {
                continue;
            }
            if line.stream == LogStream::Stdout {
                recorder.transcript(&line.text);
                if let Some(input) = &input {
                    input.observe(&line.text);
                }
            }
            // A line that produced no event needs no write: re-reading it after a
            // restart produces nothing either, so the cursor may skip past it later.
            if !kept.is_empty() {
                bodies.extend(kept);
                cursor = Some(pumped.lines);
            }
        }
        if !bodies.is_empty() {
            recorder.record(bodies, cursor).await;
        }
        if let Some(error) = lost.take() {
            recorder
                .emit(EventBody::warning(format!(
                    "lost the container's output: {error}"
                )))
                .await;
            break;
        }
    }
    let (dropped, bytes) = pumped.budget.dropped();
    if dropped > 0 {
        recorder
            .emit(EventBody::warning(format!(
                "dropped {dropped} events ({bytes} bytes) of the agent's output over agentd's budget"
            )))
            .await;
    }
    pumped
}

fn describe_phase(phase: &str) -> String {
    match phase {
        "cloning" => "cloning the repository from the mirror".into(),
        "agent" => "agent started".into(),
        "collecting" => "committing the agent's work".into(),
        "collected" => "the agent's work is committed".into(),
        other => format!("sandbox: {other}"),
    }
}
