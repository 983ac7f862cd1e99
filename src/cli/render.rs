//! Live, human-readable rendering of an execution's events and summary on stderr.
//!
//! Nearly everything shown comes from the agent, the model or the sandbox, and
//! is escaped by [`super::safe_text`] before it reaches the terminal.

use std::io::{IsTerminal, Write};

use agentd::agent::claude::describe_tool_call;
use agentd::execution::AgentEvent;
use agentd::execution::{Decision, Event, EventBody, Status, Summary, SupervisorEvent};
use agentd::runner::EventObserver;

use super::safe_text::{lines, one_line};

/// Prints events as they happen. Colour only on a terminal, and never with `NO_COLOR`.
pub struct Terminal {
    color: bool,
}

impl Terminal {
    /// A renderer for stderr.
    pub fn stderr() -> Self {
        Terminal {
            color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn print(&self, rows: impl IntoIterator<Item = String>) {
        let mut err = std::io::stderr().lock();
        for row in rows {
            let _ = writeln!(err, "{row}");
        }
    }

    /// Prints the final block: status, figures and where the results are.
    pub fn summary(&self, summary: &Summary) {
        self.print(self.summary_lines(summary));
    }

    /// The final block's lines. Every text in it that agentd did not write itself
    /// (reason, file names, artifact names, refusals) is shown by [`one_line`],
    /// so it can neither act on the terminal nor forge a row.
    fn summary_lines(&self, summary: &Summary) -> Vec<String> {
        let mut rows = Vec::new();
        let mark = match summary.status {
            Status::Succeeded => self.paint("1;32", "✔ succeeded"),
            other => self.paint("1;31", &format!("✘ {other}")),
        };
        let mut figures = vec![
            format!("{} turns", summary.num_turns),
            format!(
                "{} in / {} out tokens",
                summary.usage.input_tokens, summary.usage.output_tokens
            ),
        ];
        if let Some(cost) = summary.cost_usd {
            figures.push(format!("${cost:.4}"));
        }
        let gateway = &summary.gateway;
        if gateway.requests > 0 {
            figures.push(format!("{} model requests", gateway.requests));
            if gateway.cost_usd.is_none() {
                figures.push("cost unknown".into());
            }
        }
        figures.push(format!("{} tool calls", summary.tool_calls));
        figures.push(format!("{} files changed", summary.files_changed.len()));
        figures.push(format!("{:.1} s", summary.duration_ms as f64 / 1000.0));
        rows.push(format!("{mark} · {}", figures.join(" · ")));
        if let Some(reason) = &summary.reason {
            rows.push(format!("  reason     {}", one_line(reason)));
        }
        if let Some(claimed) = &summary.claimed {
            let cost = claimed
                .cost_usd
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default();
            let differs = claimed.num_turns != summary.num_turns
                || claimed.cost_usd.map(|c| format!("{c:.4}"))
                    != summary.cost_usd.map(|c| format!("{c:.4}"))
                || (claimed.subtype == "success") != (summary.status == Status::Succeeded);
            if differs {
                rows.push(format!(
                    "  claimed    {} after {} turns{cost} (the agent's own report)",
                    one_line(&claimed.subtype),
                    claimed.num_turns
                ));
            }
        }
        for file in &summary.files_changed {
            rows.push(format!(
                "  {}          {}",
                one_line(&file.change),
                one_line(&file.path)
            ));
        }
        rows.push(format!("  branch     {}", one_line(&summary.branch)));
        if let Some(diff) = &summary.diff_path {
            rows.push(format!("  diff       {}", one_line(diff)));
        }
        if let Some(bundle) = &summary.bundle_path {
            rows.push(format!("  bundle     {}", one_line(bundle)));
        }
        if let Some(delivery) = &summary.delivery {
            let commit = delivery
                .commit
                .as_deref()
                .map(|c| format!(" at {}", &c[..12.min(c.len())]))
                .unwrap_or_default();
            let merged = delivery
                .merge_into
                .as_deref()
                .filter(|_| delivery.status.landed())
                .map(|into| format!(", into {}", one_line(into)))
                .unwrap_or_default();
            rows.push(format!(
                "  delivery   {} {}{commit}{merged} ({})",
                delivery.status.as_str(),
                one_line(&delivery.branch),
                one_line(&delivery.remote)
            ));
            if let Some(error) = &delivery.error {
                rows.push(format!("             {}", one_line(error)));
            }
        }
        for artifact in &summary.artifacts {
            rows.push(format!("  artifact   {}", one_line(artifact)));
        }
        for left in &summary.left_out {
            rows.push(format!(
                "  left out   {} ({} bytes, {})",
                one_line(&left.path),
                left.size,
                one_line(&left.reason)
            ));
        }
        for refused in &summary.refused {
            rows.push(format!(
                "  refused    {} ({})",
                one_line(&refused.path),
                one_line(&refused.reason)
            ));
        }
        rows.push(format!("  events     {}", one_line(&summary.events_path)));
        rows
    }

    /// The line (possibly several, for the agent's prose) one event is shown as,
    /// or `None` for events not shown live. Every text from the agent, the
    /// sandbox or the model is escaped by [`one_line`] (prose line by line, by
    /// [`lines`]); only the colours are agentd's.
    fn event_line(&self, event: &Event) -> Option<String> {
        let text = match &event.body {
            EventBody::Agentd(supervisor) => match supervisor {
                SupervisorEvent::Status { status, .. } if status.is_final() => return None,
                SupervisorEvent::Status { status, .. } => self.paint("2", &format!("· {status}")),
                SupervisorEvent::Progress { message } => {
                    self.paint("2", &format!("· {}", one_line(message)))
                }
                SupervisorEvent::Log { line } => {
                    self.paint("2", &format!("  stderr: {}", one_line(line)))
                }
                SupervisorEvent::Refused { path, reason } => self.paint(
                    "33",
                    &format!("! refused {}: {}", one_line(path), one_line(reason)),
                ),
                SupervisorEvent::Warning { message } => {
                    self.paint("33", &format!("! {}", one_line(message)))
                }
                SupervisorEvent::ModelCall {
                    error: Some(error),
                    status,
                    ..
                } => self.paint(
                    "33",
                    &format!("  ↯ model request {status}: {}", one_line(error)),
                ),
                SupervisorEvent::ModelCall { .. } => return None,
                SupervisorEvent::PolicyClamped { clamped } => self.paint(
                    "33",
                    &format!(
                        "! policy lowered {}",
                        clamped
                            .iter()
                            .map(|c| format!(
                                "{} {} → {}",
                                one_line(&c.field),
                                one_line(&c.asked.to_string()),
                                one_line(&c.allowed.to_string())
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                SupervisorEvent::ToolDecision {
                    decision: Decision::Deny,
                    tool,
                    rule,
                    ..
                } => self.paint(
                    "31",
                    &format!(
                        "  ⊘ {} denied by {}",
                        one_line(tool),
                        one_line(rule.as_deref().unwrap_or("the allow-list"))
                    ),
                ),
                SupervisorEvent::ToolDecision { .. } => return None,
                SupervisorEvent::HookStarted {
                    stage,
                    index,
                    command,
                } => self.paint(
                    "2",
                    &format!("· {} hook {index}: {}", stage.as_str(), one_line(command)),
                ),
                SupervisorEvent::HookOutput { line, .. } => {
                    self.paint("2", &format!("  │ {}", one_line(line)))
                }
                SupervisorEvent::HookFinished {
                    stage,
                    index,
                    exit_code,
                    duration_ms,
                } => {
                    let colour = if *exit_code == 0 { "2" } else { "33" };
                    self.paint(
                        colour,
                        &format!(
                            "· {} hook {index} exited {exit_code} after {duration_ms} ms",
                            stage.as_str()
                        ),
                    )
                }
                SupervisorEvent::UserMessage { text, sender } => self.paint(
                    "35",
                    &format!(
                        "» {}: {}",
                        one_line(sender),
                        lines(text.trim_end()).join("\n  ")
                    ),
                ),
                SupervisorEvent::InterruptRequested { sender } => self.paint(
                    "35",
                    &format!("» {} interrupted the turn", one_line(sender)),
                ),
                SupervisorEvent::InputClosed { reason } => {
                    self.paint("2", &format!("· input closed: {}", one_line(reason)))
                }
            },
            EventBody::Agent(agent) => match agent {
                AgentEvent::SessionStarted {
                    session_id,
                    model,
                    version,
                    ..
                } => self.paint(
                    "36",
                    &format!(
                        "● session {} · {} · Claude Code {}",
                        one_line(session_id.as_deref().unwrap_or("?")),
                        one_line(model.as_deref().unwrap_or("?")),
                        one_line(version.as_deref().unwrap_or("?"))
                    ),
                ),
                AgentEvent::Text { text, .. } => {
                    format!("  │ {}", lines(text.trim_end()).join("\n  │ "))
                }
                AgentEvent::Thinking { text, .. } => {
                    self.paint("2;3", &format!("  ∴ {}", first_line(text, 120)))
                }
                AgentEvent::ToolCall { name, input, .. } => format!(
                    "  {} {}",
                    self.paint("1;35", &format!("⚙ {}", one_line(name))),
                    one_line(&describe_tool_call(name, input))
                ),
                AgentEvent::ToolResult {
                    content, is_error, ..
                } => {
                    let text = format!("    ↳ {}", first_line(content, 120));
                    if *is_error {
                        self.paint("31", &text)
                    } else {
                        self.paint("2", &text)
                    }
                }
                AgentEvent::ApiRetry {
                    attempt,
                    max_retries,
                    retry_delay_ms,
                    error_status,
                    error,
                } => self.paint(
                    "33",
                    &format!(
                        "  ↻ model request failed ({}{}); retry {}/{} in {} ms",
                        error_status.map(|s| s.to_string()).unwrap_or_default(),
                        error
                            .as_deref()
                            .map(|e| format!(" {}", one_line(e)))
                            .unwrap_or_default(),
                        attempt.unwrap_or(0),
                        max_retries.unwrap_or(0),
                        retry_delay_ms.unwrap_or(0)
                    ),
                ),
                AgentEvent::Result(result) => self.paint(
                    "36",
                    &format!(
                        "● agent finished: {} after {} turns",
                        one_line(&result.subtype),
                        result.num_turns
                    ),
                ),
                AgentEvent::Raw { line } => {
                    self.paint("2", &format!("  raw: {}", first_line(line, 160)))
                }
                AgentEvent::Usage { .. } | AgentEvent::Unknown { .. } => return None,
            },
        };
        Some(text)
    }
}

impl EventObserver for Terminal {
    fn on_event(&self, event: &Event) {
        if let Some(line) = self.event_line(event) {
            self.print([line]);
        }
    }
}

/// The first non-blank line of `text`, cut to `max_chars` (`…` when anything was
/// left out), made safe by [`one_line`].
fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let more = text.lines().filter(|l| !l.trim().is_empty()).count() > 1;
    let mut out: String = line.chars().take(max_chars).collect();
    if line.chars().count() > max_chars || more {
        out.push('…');
    }
    one_line(&out)
}

#[cfg(test)]
mod tests;
