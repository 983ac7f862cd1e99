//! The operator's terminal: whatever the model says and the sandbox prints or
//! names, `agentd run`'s human-readable output carries no control sequence, and
//! no row of the summary can be forged.

use std::time::Instant;

use serde_json::json;

use crate::support::*;

/// Sequences a terminal obeys: window title (OSC 0), clipboard write (OSC 52),
/// a hyperlink (OSC 8), screen clear and cursor home, carriage return,
/// backspace, BEL, DEL, a C1 CSI (U+009B) and bidi overrides ("Trojan Source").
const HOSTILE: &str = "\u{1b}]0;pwned-title\u{7} \u{1b}]52;c;cHduZWQ=\u{7} \
     \u{1b}]8;;https://evil.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\ \u{1b}[2J\u{1b}[H \
     \rover\u{8}\u{7f} \u{9b}31m \u{202e}txt.exe\u{2066}\u{2069}\u{202c} \u{85}\t.";

/// The Bash tool's script: its output carries the same sequences (as a tool
/// result), and it leaves a changed file whose name forges a summary row, one
/// whose name holds control characters, an artifact whose name forges an
/// artifact row, and a refused artifact with control characters in its name.
const SCRIPT: &str = r#"cd /workspace/repo
printf 'out: \033]0;tool-title\007 \033]52;c;cHduZWQ=\007 \033[2J \r\b\177 \302\233 \342\200\256 end\n'
printf 'x' > "$(printf 'x\n  A          injected-line.txt')"
printf 'y' > "$(printf 'evil\033]0;file-title\007\r\302\233\342\200\256.txt')"
mkdir -p "$AGENTD_ARTIFACTS_DIR"
printf 'z' > "$AGENTD_ARTIFACTS_DIR/$(printf 'art\033]52;c;cHduZWQ=\007\n  artifact   forged')"
ln -s /etc/passwd "$AGENTD_ARTIFACTS_DIR/$(printf 'link\033[2J\r\n  refused    forged')"
ls"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_and_names_reach_the_terminal_as_visible_escapes() {
    let world = World::new();
    // Claude Code refuses a Bash command holding control characters, so the
    // hostile path of a Read call stands for a hostile tool input.
    let file = world.scenario(json!({"turns": [
        {"content": [
            {"type": "thinking", "thinking": format!("thinking {HOSTILE}")},
            {"type": "text", "text": format!("first line {HOSTILE}\nsecond line {HOSTILE}")},
            {"type": "tool_use", "name": "Read",
             "input": {"file_path": format!("/workspace/{HOSTILE}")}},
            {"type": "tool_use", "name": "Bash",
             "input": {"command": SCRIPT, "description": HOSTILE}}],
         "usage": {"input_tokens": 10, "output_tokens": 10}},
        {"content": [{"type": "text", "text": format!("Done. {HOSTILE}")}],
         "usage": {"input_tokens": 10, "output_tokens": 5}}
    ]}));
    let mut run = world.agentd_run(&format!("print {HOSTILE}")).await;
    run.arg("--scripted-model").arg(&file);
    let started = Instant::now();
    let output = run.output().expect("agentd runs");
    let ran = parse(output.clone(), started.elapsed());
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    // The attack really happened: two hostile files changed, one artifact kept,
    // one refused.
    let summary = &ran.summary;
    assert_eq!(
        summary.files_changed.len(),
        2,
        "{:?}\n{}\n{:?}",
        summary.files_changed,
        ran.stderr,
        ran.tool_results()
    );
    assert!(
        summary
            .files_changed
            .iter()
            .any(|f| f.path == "x\n  A          injected-line.txt"),
        "{:?}",
        summary.files_changed
    );
    assert_eq!(
        summary.artifacts.len(),
        1,
        "{:?}\n{}\n{:?}",
        summary.artifacts,
        ran.stderr,
        ran.tool_results()
    );
    assert_eq!(
        summary.refused.len(),
        1,
        "{:?}\n{}\n{:?}",
        summary.refused,
        ran.stderr,
        ran.tool_results()
    );

    let offences = control_sequences(&output.stderr);
    assert!(
        offences.is_empty(),
        "control characters reached the terminal at {offences:?}:\n{}",
        ran.stderr
    );

    // Exactly one summary row per real changed file, artifact and refusal.
    let rows = |prefix: &str| {
        ran.stderr
            .lines()
            .filter(|line| line.starts_with(prefix))
            .count()
    };
    assert_eq!(
        rows("  A          "),
        summary.files_changed.len(),
        "{}",
        ran.stderr
    );
    assert_eq!(rows("  artifact   "), 1, "{}", ran.stderr);
    assert_eq!(rows("  refused    "), 1, "{}", ran.stderr);

    // What was there is shown, not dropped.
    for shown in [
        r"\x1b]0;pwned-title\x07",
        r"\x1b]52;c;cHduZWQ=\x07",
        r"\x1b[2J",
        r"\r",
        r"\u{9b}",
        r"\u{202e}",
        r"x\n  A          injected-line.txt",
    ] {
        assert!(
            ran.stderr.contains(shown),
            "{shown} not shown:\n{}",
            ran.stderr
        );
    }
    assert_nothing_left(&summary.id, &world.run_dir());
}

/// Byte offsets of everything in `bytes` a terminal could act on: C0 controls
/// other than the line feed, DEL, C1 controls (UTF-8 `C2 80`–`C2 9F`), and the
/// bidi embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069).
fn control_sequences(bytes: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    for (at, byte) in bytes.iter().enumerate() {
        let next = bytes.get(at + 1).copied();
        let after = bytes.get(at + 2).copied();
        let offends = match byte {
            b'\n' => false,
            0x00..=0x1f | 0x7f => true,
            0xc2 => matches!(next, Some(0x80..=0x9f)),
            0xe2 => matches!(
                (next, after),
                (Some(0x80), Some(0xaa..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
            ),
            _ => false,
        };
        if offends {
            found.push(at);
        }
    }
    found
}
