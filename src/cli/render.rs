//! Live, human-readable rendering of an execution's events and summary on stderr.

use std::io::{IsTerminal, Write};

use agentd::agent::AgentEvent;
use agentd::agent::claude::describe_tool_call;
use agentd::execution::{Event, EventBody, EventObserver, Status, Summary, SupervisorEvent};

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

    fn line(&self, text: String) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// The final block: status, figures and where the results are.
    pub fn summary(&self, summary: &Summary) {
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
            figures.push(format!(
                "gateway: {} requests, {} in / {} out, {}",
                gateway.requests,
                gateway.usage.input_tokens,
                gateway.usage.output_tokens,
                gateway
                    .cost_usd
                    .map(|c| format!("${c:.4}"))
                    .unwrap_or_else(|| "cost unknown".into())
            ));
        }
        figures.push(format!("{} tool calls", summary.tool_calls));
        figures.push(format!("{} files changed", summary.files_changed.len()));
        figures.push(format!("{:.1} s", summary.duration_ms as f64 / 1000.0));
        self.line(format!("{mark} · {}", figures.join(" · ")));
        if let Some(reason) = &summary.reason {
            self.line(format!("  reason     {reason}"));
        }
        for file in &summary.files_changed {
            self.line(format!("  {}          {}", file.change, file.path));
        }
        self.line(format!("  branch     {}", summary.branch));
        if let Some(diff) = &summary.diff_path {
            self.line(format!("  diff       {diff}"));
        }
        if let Some(bundle) = &summary.bundle_path {
            self.line(format!("  bundle     {bundle}"));
        }
        for artifact in &summary.artifacts {
            self.line(format!("  artifact   {artifact}"));
        }
        for refused in &summary.refused {
            self.line(format!(
                "  refused    {} ({})",
                refused.path, refused.reason
            ));
        }
        self.line(format!("  events     {}", summary.events_path));
    }
}

impl EventObserver for Terminal {
    fn on_event(&self, event: &Event) {
        let text = match &event.body {
            EventBody::Agentd(supervisor) => match supervisor {
                SupervisorEvent::Status { status, .. } if status.is_final() => return,
                SupervisorEvent::Status { status, .. } => self.paint("2", &format!("· {status}")),
                SupervisorEvent::Progress { message } => self.paint("2", &format!("· {message}")),
                SupervisorEvent::Log { line } => self.paint("2", &format!("  stderr: {line}")),
                SupervisorEvent::Refused { path, reason } => {
                    self.paint("33", &format!("! refused {path}: {reason}"))
                }
                SupervisorEvent::Warning { message } => self.paint("33", &format!("! {message}")),
                SupervisorEvent::ModelCall {
                    error: Some(error),
                    status,
                    ..
                } => self.paint("33", &format!("  ↯ model request {status}: {error}")),
                SupervisorEvent::ModelCall { .. } => return,
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
                        session_id.as_deref().unwrap_or("?"),
                        model.as_deref().unwrap_or("?"),
                        version.as_deref().unwrap_or("?")
                    ),
                ),
                AgentEvent::Text { text, .. } => {
                    let body = text.trim_end().replace('\n', "\n  │ ");
                    format!("  │ {body}")
                }
                AgentEvent::Thinking { text, .. } => {
                    self.paint("2;3", &format!("  ∴ {}", first_line(text, 120)))
                }
                AgentEvent::ToolCall { name, input, .. } => format!(
                    "  {} {}",
                    self.paint("1;35", &format!("⚙ {name}")),
                    describe_tool_call(name, input)
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
                            .map(|e| format!(" {e}"))
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
                        result.subtype, result.num_turns
                    ),
                ),
                AgentEvent::Raw { line } => {
                    self.paint("2", &format!("  raw: {}", first_line(line, 160)))
                }
                AgentEvent::Usage { .. } | AgentEvent::Unknown { .. } => return,
            },
        };
        self.line(text);
    }
}

fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let more = text.lines().filter(|l| !l.trim().is_empty()).count() > 1;
    let mut out: String = line.chars().take(max_chars).collect();
    if line.chars().count() > max_chars || more {
        out.push('…');
    }
    out
}
