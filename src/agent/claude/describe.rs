//! One-line summaries of tool calls for live display.

use serde_json::Value;

use super::text::ellipsize;

/// How many characters of one summarised value (a path, a command, JSON) are shown.
const MAX_SHOWN_CHARS: usize = 100;

/// A one-line human summary of a tool call's input, for live display: the file
/// for file tools (`path (N bytes)` for Write), the command's first line for Bash,
/// the pattern for Grep/Glob, the URL for WebFetch, the description for Task,
/// `N items` for TodoWrite, and compact JSON for anything else. Each shown value is
/// cut to about 100 characters. The values are the agent's own text, control
/// characters and line breaks within a path included: escape the summary before
/// it reaches a terminal (the CLI's renderer shows them as visible escapes).
pub fn describe_tool_call(name: &str, input: &Value) -> String {
    known_tool_summary(name, input).unwrap_or_else(|| shown(&compact_json(input)))
}

fn known_tool_summary(name: &str, input: &Value) -> Option<String> {
    let field = |key: &str| input.get(key).and_then(Value::as_str);
    match name {
        "Write" => {
            let path = shown(field("file_path")?);
            Some(match field("content") {
                Some(content) => format!("{path} ({} bytes)", content.len()),
                None => path,
            })
        }
        "Edit" | "MultiEdit" | "Read" => field("file_path").map(shown),
        "NotebookEdit" => field("notebook_path").map(shown),
        "Bash" => {
            let command = field("command")?;
            let mut lines = command.lines();
            let first = lines.next().unwrap_or_default();
            let summary = shown(first);
            if lines.next().is_some() && !summary.ends_with('…') {
                Some(format!("{summary} …"))
            } else {
                Some(summary)
            }
        }
        "Grep" | "Glob" => {
            let pattern = shown(field("pattern")?);
            Some(match field("path") {
                Some(path) => format!("{pattern} in {}", shown(path)),
                None => pattern,
            })
        }
        "WebFetch" => field("url").map(shown),
        "WebSearch" => field("query").map(shown),
        "Task" | "Agent" => field("description").map(shown),
        "TodoWrite" => {
            let count = input.get("todos")?.as_array()?.len();
            Some(if count == 1 {
                "1 item".to_string()
            } else {
                format!("{count} items")
            })
        }
        _ => None,
    }
}

/// A value shortened for display, its characters kept for the caller to escape.
fn shown(value: &str) -> String {
    ellipsize(value, MAX_SHOWN_CHARS)
}

fn compact_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn write_shows_path_and_size_in_bytes() {
        let input = json!({"file_path": "/workspace/hello.txt", "content": "hello from agent\n"});
        assert_eq!(
            describe_tool_call("Write", &input),
            "/workspace/hello.txt (17 bytes)"
        );
        let input = json!({"file_path": "a.txt", "content": "é"});
        assert_eq!(describe_tool_call("Write", &input), "a.txt (2 bytes)");
    }

    #[test]
    fn file_tools_show_the_path() {
        for tool in ["Edit", "MultiEdit", "Read"] {
            let input = json!({"file_path": "src/main.rs", "old_string": "a", "new_string": "b"});
            assert_eq!(describe_tool_call(tool, &input), "src/main.rs", "{tool}");
        }
    }

    #[test]
    fn bash_shows_the_first_line_of_the_command() {
        let input = json!({"command": "git status", "description": "check"});
        assert_eq!(describe_tool_call("Bash", &input), "git status");
        let input = json!({"command": "cd repo\nmake test"});
        assert_eq!(describe_tool_call("Bash", &input), "cd repo …");
    }

    #[test]
    fn long_multibyte_commands_are_cut_on_a_character() {
        let command = format!("echo {}", "日本語".repeat(60));
        let summary = describe_tool_call("Bash", &json!({ "command": command }));
        assert_eq!(summary.chars().count(), MAX_SHOWN_CHARS);
        assert!(summary.ends_with('…'));
        assert!(summary.starts_with("echo 日本語日本語"));
        let emoji = "😀".repeat(150);
        let summary = describe_tool_call("Read", &json!({ "file_path": emoji }));
        assert_eq!(summary, format!("{}…", "😀".repeat(MAX_SHOWN_CHARS - 1)));
    }

    #[test]
    fn search_tools_show_pattern_and_path() {
        let input = json!({"pattern": "fn main", "path": "src"});
        assert_eq!(describe_tool_call("Grep", &input), "fn main in src");
        let input = json!({"pattern": "**/*.rs"});
        assert_eq!(describe_tool_call("Glob", &input), "**/*.rs");
    }

    #[test]
    fn web_task_and_todo_summaries() {
        let input = json!({"url": "https://example.com/a", "prompt": "summarise"});
        assert_eq!(
            describe_tool_call("WebFetch", &input),
            "https://example.com/a"
        );
        let input = json!({"description": "Find callers", "prompt": "long text"});
        assert_eq!(describe_tool_call("Task", &input), "Find callers");
        let input = json!({"todos": [{"content": "a"}, {"content": "b"}, {"content": "c"}]});
        assert_eq!(describe_tool_call("TodoWrite", &input), "3 items");
        assert_eq!(
            describe_tool_call("TodoWrite", &json!({"todos": [{}]})),
            "1 item"
        );
    }

    #[test]
    fn unknown_tools_show_compact_json() {
        let input = json!({"a": 1, "b": [true, null]});
        assert_eq!(
            describe_tool_call("mcp__x__y", &input),
            r#"{"a":1,"b":[true,null]}"#
        );
        let long = json!({ "text": "ü".repeat(300) });
        let summary = describe_tool_call("Mystery", &long);
        assert_eq!(summary.chars().count(), MAX_SHOWN_CHARS);
        assert!(summary.starts_with(r#"{"text":"üü"#));
    }

    #[test]
    fn known_tools_with_unexpected_input_fall_back_to_json() {
        assert_eq!(
            describe_tool_call("Write", &json!({"path": 3})),
            r#"{"path":3}"#
        );
        assert_eq!(describe_tool_call("Bash", &json!("ls")), r#""ls""#);
        assert_eq!(describe_tool_call("TodoWrite", &json!(null)), "null");
    }

    #[test]
    fn control_characters_are_left_for_the_caller_to_escape() {
        let input = json!({"file_path": "a\nb\r\tc\u{1b}]0;t\u{7}"});
        assert_eq!(
            describe_tool_call("Read", &input),
            "a\nb\r\tc\u{1b}]0;t\u{7}"
        );
        let input = json!({"command": "echo a\rb\u{9b}\nrm -rf /"});
        assert_eq!(describe_tool_call("Bash", &input), "echo a\rb\u{9b} …");
    }
}
