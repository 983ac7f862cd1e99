//! Untrusted text made safe to print on the operator's terminal.
//!
//! Everything the model says and everything the sandbox prints or names (tool
//! results, file and artifact names, driver messages, error texts) may carry
//! characters a terminal obeys: escape sequences that set the window title
//! (OSC 0), write the clipboard (OSC 52), open hyperlinks (OSC 8) or clear the
//! screen; carriage returns and backspaces that overwrite what was printed; a
//! line feed that forges a row of the summary; C1 controls some terminals read
//! as ESC; bidi controls that reorder what is shown ("Trojan Source").
//!
//! Each such character is replaced by a visible escape, so the operator sees
//! that something was there and what it was:
//! - `\n`, `\r`, `\t` for line feed, carriage return and tab;
//! - `\xNN` for the other C0 controls and DEL (`\x1b` for ESC, `\x07` for BEL);
//! - `\u{NN}` for C1 controls (U+0080–U+009F), the bidi controls (U+061C,
//!   U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph
//!   separators (U+2028, U+2029).
//!
//! Tab is escaped too: it is harmless to most terminals, but a field that must
//! stay one line and one column should show exactly what it holds. A backslash
//! is left as it is, so ordinary paths and commands stay readable; an escape
//! shown by agentd can therefore look like one the text itself spelled out, which
//! is harmless. Colours agentd adds itself are added after escaping, around the
//! escaped text, and stay.

use std::fmt::Write as _;

/// `text` on one line, every character a terminal could act on shown as a
/// visible escape (line feeds included). For names, paths, reasons and every
/// other field that must stay one line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_shown(&mut out, c);
    }
    out
}

/// The lines of `text`, each made safe by [`one_line`]: for multi-line text
/// whose line breaks the caller lays out itself. A line ends at `\n` or `\r\n`;
/// a `\r` anywhere else is shown as `\r`.
pub fn lines(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|line| one_line(line.strip_suffix('\r').unwrap_or(line)))
        .collect()
}

/// `text` with its line breaks kept and everything else a terminal could act on
/// escaped, as by [`lines`]; for multi-line messages printed as they are.
pub fn multi_line(text: &str) -> String {
    lines(text).join("\n")
}

fn push_shown(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0'..='\x1f' | '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if acted_on(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// True for the characters a terminal (or its text layout) acts on rather than
/// shows: C1 controls, bidi controls and the Unicode line and paragraph
/// separators. C0 controls and DEL are handled before this is asked.
fn acted_on(c: char) -> bool {
    matches!(
        c,
        '\u{80}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Byte offsets in `bytes` of anything a terminal could act on other than the
/// line feed: C0 controls, DEL, C1 controls (`C2 80`–`C2 9F` in UTF-8), the bidi
/// controls and the line and paragraph separators. For tests of what reaches the
/// terminal, checked byte by byte.
#[cfg(test)]
pub fn unsafe_bytes(bytes: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(bytes);
    let mut found: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| (**b < 0x20 && **b != b'\n') || **b == 0x7f)
        .map(|(at, _)| at)
        .collect();
    if text.len() == bytes.len() {
        found.extend(
            text.char_indices()
                .filter(|(_, c)| acted_on(*c))
                .map(|(at, _)| at),
        );
    } else {
        found.push(usize::MAX);
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character the module escapes, one of each kind.
    const EVERY_KIND: &str = "\0\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\u{80}\u{85}\u{9b}\u{9f}\
                              \u{61c}\u{200e}\u{200f}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\
                              \u{2066}\u{2067}\u{2068}\u{2069}\u{2028}\u{2029}";

    #[test]
    fn every_control_is_shown_as_a_visible_escape() {
        assert_eq!(
            one_line(EVERY_KIND),
            "\\x00\\x01\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x1b\\x1f\\x7f\\u{80}\\u{85}\\u{9b}\\u{9f}\
             \\u{61c}\\u{200e}\\u{200f}\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}\
             \\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{2028}\\u{2029}"
        );
        assert!(unsafe_bytes(one_line(EVERY_KIND).as_bytes()).is_empty());
    }

    #[test]
    fn terminal_attacks_are_defused() {
        let title = "\x1b]0;pwned\x07";
        assert_eq!(one_line(title), "\\x1b]0;pwned\\x07");
        let clipboard = "\x1b]52;c;cHduZWQ=\x1b\\";
        assert_eq!(one_line(clipboard), "\\x1b]52;c;cHduZWQ=\\x1b\\");
        let link = "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07";
        assert_eq!(
            one_line(link),
            "\\x1b]8;;https://evil.example/\\x07click\\x1b]8;;\\x07"
        );
        assert_eq!(one_line("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
        assert_eq!(one_line("rm -rf /\rls"), "rm -rf /\\rls");
        assert_eq!(one_line("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(one_line("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(
            one_line("x\n  A          injected-line.txt"),
            "x\\n  A          injected-line.txt"
        );
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for text in [
            "",
            "src/main.rs",
            r"C:\path\with\backslashes and \x1b spelled out",
            "日本語 émoji 😀 👩‍💻 (zero-width joiner kept) · ✔ ↳ │",
            "אבג عربي",
        ] {
            assert_eq!(one_line(text), text);
            assert_eq!(multi_line(text), text);
        }
    }

    #[test]
    fn lines_keep_line_breaks_for_the_caller_and_escape_the_rest() {
        assert_eq!(lines("a\nb"), vec!["a", "b"]);
        assert_eq!(lines("a\r\nb\r\n"), vec!["a", "b", ""]);
        assert_eq!(lines("a\rb\n\x1b[2J"), vec!["a\\rb", "\\x1b[2J"]);
        assert_eq!(lines("a\r\r\nb"), vec!["a\\r", "b"]);
        assert_eq!(lines(""), vec![""]);
        assert_eq!(
            multi_line("one\n\x1b]0;t\x07two\r\n"),
            "one\n\\x1b]0;t\\x07two\n"
        );
    }

    #[test]
    fn the_byte_check_finds_what_escaping_removes() {
        assert_eq!(unsafe_bytes(b"ok\n"), Vec::<usize>::new());
        assert_eq!(unsafe_bytes(b"a\x1bb\rc\x7f"), vec![1, 3, 5]);
        assert_eq!(unsafe_bytes("a\u{9b}\u{202e}".as_bytes()), vec![1, 3]);
        assert_eq!(unsafe_bytes(b"\xff"), vec![usize::MAX]);
    }

    #[test]
    fn every_char_is_either_kept_or_escaped() {
        for code in (0..0x3000u32)
            .chain(0xfe00..0x10000)
            .chain([0x1f600, 0x10ffff])
        {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let shown = one_line(&c.to_string());
            assert!(unsafe_bytes(shown.as_bytes()).is_empty(), "U+{code:04X}");
            if shown != c.to_string() {
                assert!(shown.starts_with('\\'), "U+{code:04X}: {shown}");
            }
        }
    }
}
