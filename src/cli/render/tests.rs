//! Every field the renderer prints, fed hostile text, checked byte by byte.

use agentd::execution::{AgentEvent, AgentResult, Usage};
use agentd::execution::{Event, EventBody, Status, Summary, SupervisorEvent};
use serde_json::json;

use super::Terminal;
use crate::cli::safe_text::unsafe_bytes;

/// A window title (OSC 0), a clipboard write (OSC 52), a hyperlink (OSC 8), a
/// screen clear, a carriage return, backspace, BEL, DEL, tab, a C1 CSI, bidi
/// overrides and isolates, a line separator, and a line feed that forges a row.
const HOSTILE: &str = "\x1b]0;title\x07\x1b]52;c;cHduZWQ=\x1b\\\x1b]8;;https://evil.example/\x07link\
                       \x1b]8;;\x07\x1b[2J\x1b[H\rover\x08\x7f\t\u{9b}31m\u{85}\u{202e}gnp.exe\u{2066}\
                       \u{2069}\u{202c}\u{2028}\n  A          forged-row.txt";

fn event(body: EventBody) -> Event {
    Event {
        seq: 1,
        at: chrono::Utc::now(),
        body,
    }
}

/// One event of every kind the renderer shows, every text field hostile.
fn hostile_events() -> Vec<Event> {
    let h = || HOSTILE.to_string();
    let supervisor = |e| event(EventBody::Agentd(e));
    let agent = |e| event(EventBody::Agent(e));
    vec![
        supervisor(SupervisorEvent::Progress { message: h() }),
        supervisor(SupervisorEvent::Log { line: h() }),
        supervisor(SupervisorEvent::Refused {
            path: h(),
            reason: h(),
        }),
        supervisor(SupervisorEvent::Warning { message: h() }),
        supervisor(SupervisorEvent::ModelCall {
            status: 502,
            model: Some(h()),
            usage: Usage::default(),
            cost_usd: None,
            totals: Default::default(),
            duration_ms: 1,
            error: Some(h()),
        }),
        agent(AgentEvent::SessionStarted {
            session_id: Some(h()),
            model: Some(h()),
            cwd: Some(h()),
            tools: vec![h()],
            version: Some(h()),
            permission_mode: Some(h()),
        }),
        agent(AgentEvent::Thinking {
            message_id: None,
            text: h(),
        }),
        agent(AgentEvent::ToolCall {
            id: h(),
            name: h(),
            input: json!({"command": h(), "file_path": h()}),
            parent_tool_use_id: None,
        }),
        // Every tool with a known summary, and one without.
        agent(AgentEvent::ToolCall {
            id: h(),
            name: "Bash".into(),
            input: json!({"command": h()}),
            parent_tool_use_id: None,
        }),
        agent(AgentEvent::ToolCall {
            id: h(),
            name: "Write".into(),
            input: json!({"file_path": h(), "content": h()}),
            parent_tool_use_id: None,
        }),
        agent(AgentEvent::ToolCall {
            id: h(),
            name: "Grep".into(),
            input: json!({"pattern": h(), "path": h()}),
            parent_tool_use_id: None,
        }),
        agent(AgentEvent::ToolCall {
            id: h(),
            name: "WebFetch".into(),
            input: json!({"url": h()}),
            parent_tool_use_id: None,
        }),
        agent(AgentEvent::ToolResult {
            tool_use_id: h(),
            content: h(),
            is_error: false,
        }),
        agent(AgentEvent::ToolResult {
            tool_use_id: h(),
            content: h(),
            is_error: true,
        }),
        agent(AgentEvent::ApiRetry {
            attempt: Some(1),
            max_retries: Some(2),
            retry_delay_ms: Some(3),
            error_status: Some(529),
            error: Some(h()),
        }),
        agent(AgentEvent::Result(AgentResult {
            subtype: h(),
            is_error: true,
            num_turns: 1,
            duration_ms: None,
            duration_api_ms: None,
            total_cost_usd: None,
            usage: Usage::default(),
            result: Some(h()),
            errors: vec![h()],
            permission_denials: 0,
            session_id: Some(h()),
        })),
        agent(AgentEvent::Raw { line: h() }),
    ]
}

fn hostile_summary() -> Summary {
    serde_json::from_value(json!({
        "id": HOSTILE, "status": "failed", "reason": HOSTILE, "repo": HOSTILE,
        "ref": HOSTILE, "base_commit": HOSTILE, "head_commit": HOSTILE,
        "branch": HOSTILE, "num_turns": 1, "usage": {}, "cost_usd": 0.5,
        "gateway": {"requests": 1, "usage": {}, "cost_usd": null},
        "tool_calls": 1, "session_id": HOSTILE, "result": HOSTILE,
        "files_changed": [{"path": HOSTILE, "change": "A"}, {"path": "ok.txt", "change": HOSTILE}],
        "diff_path": HOSTILE, "bundle_path": HOSTILE,
        "artifacts": [HOSTILE, HOSTILE], "artifact_files": [],
        "refused": [{"path": HOSTILE, "reason": HOSTILE}],
        "data_dir": HOSTILE, "events_path": HOSTILE, "image": HOSTILE,
        "exit_code": 1, "oom_killed": false,
        "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z",
        "duration_ms": 1000
    }))
    .expect("a summary")
}

/// `text` without the colour codes agentd itself adds (`ESC [ digits/; m`); any
/// other ESC is left in place for the byte check to find.
fn without_own_colours(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let code_len = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[code_len..].starts_with('m') {
            rest = &after[code_len + 1..];
        } else {
            out.push_str("\x1b[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn assert_safe(shown: &str, what: &str) {
    let offences = unsafe_bytes(shown.as_bytes());
    assert!(offences.is_empty(), "{what}: {offences:?} in {shown:?}");
}

#[test]
fn every_event_field_is_escaped_byte_by_byte() {
    for color in [false, true] {
        let terminal = Terminal { color };
        for event in hostile_events() {
            let shown = terminal
                .event_line(&event)
                .unwrap_or_else(|| panic!("{event:?} is shown"));
            let plain = without_own_colours(&shown);
            assert_safe(&plain, &format!("{event:?}"));
            assert!(!plain.contains('\n'), "a line break in {plain:?}");
            assert!(plain.contains("\\x1b]0;title"), "{plain:?}");
            if !color {
                assert!(!shown.contains('\x1b'), "{shown:?}");
            }
        }
    }
}

#[test]
fn prose_keeps_its_own_lines_and_nothing_else() {
    let text = format!("first {HOSTILE}\r\nsecond\rthird\n\n");
    let event = event(EventBody::Agent(AgentEvent::Text {
        message_id: None,
        text,
    }));
    let shown = Terminal { color: false }.event_line(&event).unwrap();
    assert_safe(&shown, "text");
    let rows: Vec<&str> = shown.split('\n').collect();
    assert_eq!(
        rows,
        vec![
            "  │ first \\x1b]0;title\\x07\\x1b]52;c;cHduZWQ=\\x1b\\\\x1b]8;;https://evil.example/\\x07link\
             \\x1b]8;;\\x07\\x1b[2J\\x1b[H\\rover\\x08\\x7f\\t\\u{9b}31m\\u{85}\\u{202e}gnp.exe\\u{2066}\
             \\u{2069}\\u{202c}\\u{2028}",
            "  │   A          forged-row.txt",
            "  │ second\\rthird",
        ]
    );
}

#[test]
fn every_summary_field_is_escaped_and_no_row_is_forged() {
    let summary = hostile_summary();
    for color in [false, true] {
        let rows = Terminal { color }.summary_lines(&summary);
        // Status, reason, two files, branch, diff, bundle, two artifacts, one
        // refusal, events: one row each, whatever the names hold.
        assert_eq!(rows.len(), 11, "{rows:#?}");
        for row in &rows {
            let plain = without_own_colours(row);
            assert_safe(&plain, "summary");
            assert!(!plain.contains('\n'), "a line break in {plain:?}");
        }
        let file_rows: Vec<&String> = rows
            .iter()
            .filter(|row| row.starts_with("  A          ") || row.contains("ok.txt"))
            .collect();
        assert_eq!(file_rows.len(), 2, "{rows:#?}");
        assert!(
            rows[2].ends_with("\\u{2028}\\n  A          forged-row.txt"),
            "{}",
            rows[2]
        );
    }
}

#[test]
fn clean_text_is_shown_as_it_is() {
    let terminal = Terminal { color: false };
    let shown = terminal
        .event_line(&event(EventBody::Agent(AgentEvent::ToolCall {
            id: "toolu_1".into(),
            name: "Write".into(),
            input: json!({"file_path": "/workspace/repo/日本語.md", "content": "héllo"}),
            parent_tool_use_id: None,
        })))
        .unwrap();
    assert_eq!(shown, "  ⚙ Write /workspace/repo/日本語.md (6 bytes)");
    let rows = terminal.summary_lines(&Summary {
        status: Status::Succeeded,
        reason: None,
        files_changed: vec![],
        artifacts: vec![],
        refused: vec![],
        diff_path: None,
        bundle_path: None,
        branch: "agent/x".into(),
        events_path: "/data/events.jsonl".into(),
        ..hostile_summary()
    });
    assert_eq!(rows[1], "  branch     agent/x");
    assert_eq!(rows[2], "  events     /data/events.jsonl");
}
