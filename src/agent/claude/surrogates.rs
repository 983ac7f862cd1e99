//! Repairing the one defect of JavaScript's JSON that serde_json refuses: an
//! unpaired UTF-16 surrogate escape such as `"\udc80"`.
//!
//! `JSON.stringify` writes a string holding a lone surrogate (a model's tool
//! input, a tool output cut in the middle of an emoji) as a `\uXXXX` escape. The
//! text is well-formed JSON, but the escape names no Unicode character, so
//! serde_json refuses the whole line, and every event in it (a tool call, its
//! count) would be lost. Replacing each unpaired surrogate escape by `\ufffd`,
//! the replacement character, keeps the line and marks the spot.

/// The escape put in place of an unpaired surrogate.
const REPLACEMENT: &str = "\\ufffd";

/// `json` with every unpaired surrogate escape (`\uD800`–`\uDFFF` that is not a
/// high surrogate directly followed by a low one) replaced by `\ufffd`, or
/// `None` when it holds none. Paired surrogates are kept as they are, and an
/// escaped backslash is skipped whole, so `\\udc80` (a backslash, then the text
/// `udc80`) is left alone. Only escapes change, never the structure, so a text
/// that was not JSON for another reason stays not JSON. Never panics.
pub(super) fn replace_lone_surrogates(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let mut repaired: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            at += 1;
            continue;
        }
        match unit_escape(bytes, at) {
            None => at += 2,
            Some(unit) if is_high(unit) && unit_escape(bytes, at + 6).is_some_and(is_low) => {
                at += 12
            }
            Some(unit) if is_high(unit) || is_low(unit) => {
                // `at` is a backslash and `copied` follows an ASCII escape: both
                // are character boundaries.
                let out = repaired.get_or_insert_with(|| String::with_capacity(json.len()));
                out.push_str(&json[copied..at]);
                out.push_str(REPLACEMENT);
                at += 6;
                copied = at;
            }
            Some(_) => at += 6,
        }
    }
    let mut out = repaired?;
    out.push_str(&json[copied..]);
    Some(out)
}

/// The UTF-16 code unit of a `\uXXXX` escape starting at `at`, if there is one.
fn unit_escape(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at.checked_add(6)?)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

fn is_high(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(json: &str) -> String {
        replace_lone_surrogates(json).unwrap_or_else(|| json.to_string())
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        assert_eq!(repaired(r#""\udc80""#), r#""\ufffd""#);
        assert_eq!(repaired(r#""\uD800""#), r#""\ufffd""#);
        assert_eq!(repaired(r#""a\ud83db""#), r#""a\ufffdb""#);
        // A high surrogate at the very end, and one followed by a non-low escape.
        assert_eq!(repaired(r#"\ud83d"#), r#"\ufffd"#);
        assert_eq!(repaired(r#""\ud83d\u0041""#), r#""\ufffd\u0041""#);
        // Low before high is two lone ones; high, high, low keeps the last pair.
        assert_eq!(repaired(r#""\udc00\ud800""#), r#""\ufffd\ufffd""#);
        assert_eq!(
            repaired(r#""\ud800\ud83d\ude00""#),
            r#""\ufffd\ud83d\ude00""#
        );
        assert_eq!(
            repaired(r#"{"a":"\udc80","b":["\udfff"]}"#),
            r#"{"a":"\ufffd","b":["\ufffd"]}"#
        );
    }

    #[test]
    fn pairs_escaped_backslashes_and_other_escapes_are_kept() {
        for json in [
            r#""\ud83d\ude00""#,
            r#""\uD83D\uDE00""#,
            r#""\\udc80""#,
            r#""\\\\udc80""#,
            r#""\u0041\n\t\"\/\\""#,
            r#""\u00e9 é 😀""#,
            r#""\u12""#,
            r#""\uzzzz""#,
            "\"\\",
            "",
            "plain",
        ] {
            assert_eq!(replace_lone_surrogates(json), None, "{json}");
        }
        // An escaped backslash followed by a real lone surrogate escape.
        assert_eq!(repaired(r#""\\\udc80""#), r#""\\\ufffd""#);
    }

    #[test]
    fn the_repaired_text_parses_as_serde_reads_it() {
        let line = r#"{"input":{"command":"printf '\udc80'","path":"\ud83d\ude00\\udc80"}}"#;
        assert!(serde_json::from_str::<serde_json::Value>(line).is_err());
        let value: serde_json::Value = serde_json::from_str(&repaired(line)).unwrap();
        assert_eq!(value["input"]["command"], "printf '\u{fffd}'");
        assert_eq!(value["input"]["path"], "😀\\udc80");
    }

    /// A small deterministic generator, so a failure can be replayed.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// `text` as it stands between the quotes of a JSON string.
    fn escaped(text: &str) -> String {
        let quoted = serde_json::to_string(text).unwrap();
        quoted[1..quoted.len() - 1].to_string()
    }

    /// One piece of a random JSON string: its escaped text, and the UTF-16 code
    /// units it stands for (as JavaScript would read it).
    fn piece(rng: &mut XorShift) -> (String, Vec<u16>) {
        let unit = |rng: &mut XorShift, low: u16| low + rng.below(0x400) as u16;
        let text = |text: &str| (escaped(text), text.encode_utf16().collect());
        match rng.below(8) {
            0 => {
                let high = unit(rng, 0xD800);
                (format!("\\u{high:04x}"), vec![high])
            }
            1 => {
                let low = unit(rng, 0xDC00);
                (format!("\\u{low:04X}"), vec![low])
            }
            2 => {
                let (high, low) = (unit(rng, 0xD800), unit(rng, 0xDC00));
                (format!("\\u{high:04x}\\u{low:04x}"), vec![high, low])
            }
            3 => text("\\"),
            4 => text("\\u"),
            5 => text("\""),
            6 => text(
                &char::from_u32(rng.below(0x11_0000) as u32)
                    .unwrap_or('x')
                    .to_string(),
            ),
            _ => text(["udc80", "d800", "u", "é", "😀", " ", "\\u00e9"][rng.below(7)]),
        }
    }

    #[test]
    fn random_strings_read_as_javascript_reads_them_with_lone_surrogates_replaced() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let mut json = String::from("\"");
            let mut units = Vec::new();
            for _ in 0..rng.below(12) {
                let (text, read) = piece(&mut rng);
                json.push_str(&text);
                units.extend(read);
            }
            json.push('"');
            // Rust's lossy decoding replaces each unpaired surrogate by U+FFFD and
            // pairs a high surrogate with a low one that follows, as the repair must.
            let expected = String::from_utf16_lossy(&units);
            let read: String =
                serde_json::from_str(&repaired(&json)).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(read, expected, "{json}");
        }
    }

    #[test]
    fn random_text_never_panics_and_keeps_everything_but_escapes() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let fragments = [
            "\\", "\\u", "\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\uDC8", "\\\\", "\"", "u",
            "d", "8", "0", "{", "}", "é", "😀", "\\ufffd",
        ];
        for _ in 0..20_000 {
            let text: String = (0..rng.below(20))
                .map(|_| fragments[rng.below(fragments.len())])
                .collect();
            let Some(out) = replace_lone_surrogates(&text) else {
                continue;
            };
            // Only surrogate escapes were rewritten, each in place.
            let (before, after) = (text.as_bytes(), out.as_bytes());
            assert_eq!(before.len(), after.len(), "{text} -> {out}");
            let mut at = 0;
            while at < before.len() {
                if before[at] == after[at] {
                    at += 1;
                    continue;
                }
                let start = at.saturating_sub(5);
                let escape = (start..=at)
                    .find(|&s| after[s..].starts_with(REPLACEMENT.as_bytes()))
                    .unwrap_or_else(|| panic!("{text} -> {out}: byte {at} changed"));
                let unit = unit_escape(before, escape).expect("an escape was replaced");
                assert!(is_high(unit) || is_low(unit), "{text} -> {out}");
                at = escape + REPLACEMENT.len();
            }
            assert_eq!(replace_lone_surrogates(&out), None, "{text} -> {out}");
        }
    }
}
