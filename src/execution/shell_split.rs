//! A Bash command cut into the simple commands it runs, for matching tool
//! rules: `a && b`, `a; b`, `a | b`, `(a)`, `$(a)`, `` `a` ``, `bash -c 'a'`
//! each yield their parts; quotes are removed, leading `NAME=value`
//! assignments and wrappers (`env`, `command`, `exec`, `nohup`, `time`,
//! `nice`, `timeout N`) are dropped. A part whose command name is computed at
//! run time (`$X`, `c*rl`, `\curl`) is opaque: agentd cannot tell what it runs.

/// One simple command of a Bash command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its words, unquoted, joined by single spaces.
    pub text: String,
    /// Its command name is computed when it runs.
    pub opaque: bool,
}

/// The most nesting of `bash -c` agentd follows; deeper is opaque.
const MAX_DEPTH: usize = 4;

/// The parts of `command`; `None` when its quoting is unbalanced.
pub fn commands(command: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    collect(command, 0, &mut parts)?;
    Some(parts)
}

fn collect(command: &str, depth: usize, parts: &mut Vec<Part>) -> Option<()> {
    for segment in segments(command)? {
        let words = segment;
        let words = strip_prefixes(&words);
        if words.is_empty() {
            continue;
        }
        let name = &words[0].text;
        let opaque = words[0].raw_special;
        if matches!(name.as_str(), "bash" | "sh" | "dash" | "zsh" | "eval") {
            let script = if name == "eval" {
                Some(
                    words[1..]
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            } else {
                words
                    .iter()
                    .position(|w| {
                        w.text == "-c"
                            || (w.text.starts_with('-')
                                && w.text.ends_with('c')
                                && !w.text.starts_with("--"))
                    })
                    .and_then(|at| words.get(at + 1))
                    .map(|w| w.text.clone())
            };
            if let Some(script) = script {
                if depth >= MAX_DEPTH {
                    parts.push(Part {
                        text: join(words),
                        opaque: true,
                    });
                } else {
                    collect(&script, depth + 1, parts)?;
                }
            }
        }
        parts.push(Part {
            text: join(words),
            opaque,
        });
    }
    Some(())
}

fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One shell word: its unquoted text, and whether it held an unquoted
/// expansion or glob (`$`, `*`, `?`, `[`, a backslash).
#[derive(Debug, Clone)]
struct Word {
    text: String,
    raw_special: bool,
}

/// Cuts `command` at unquoted `;`, `&`, `|`, newlines, parentheses and
/// backquotes, and at `$(` anywhere outside single quotes; splits each piece
/// into words.
fn segments(command: &str) -> Option<Vec<Vec<Word>>> {
    let mut segments = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut word: Option<Word> = None;
    let mut chars = command.chars().peekable();
    let mut quote: Option<char> = None;
    let end_word = |word: &mut Option<Word>, words: &mut Vec<Word>| {
        if let Some(w) = word.take() {
            words.push(w);
        }
    };
    let fresh = || Word {
        text: String::new(),
        raw_special: false,
    };
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') => {
                if c == '\'' {
                    quote = None;
                } else {
                    word.get_or_insert_with(fresh).text.push(c);
                }
                continue;
            }
            Some('"') => match c {
                '"' => {
                    quote = None;
                    continue;
                }
                '\\' => {
                    if let Some(next) = chars.next() {
                        word.get_or_insert_with(fresh).text.push(next);
                    }
                    continue;
                }
                '`' => {}
                '$' if chars.peek() == Some(&'(') => {}
                '$' => {
                    let w = word.get_or_insert_with(fresh);
                    w.text.push(c);
                    w.raw_special = true;
                    continue;
                }
                _ => {
                    word.get_or_insert_with(fresh).text.push(c);
                    continue;
                }
            },
            _ => {}
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                word.get_or_insert_with(fresh);
            }
            '\\' => {
                let w = word.get_or_insert_with(fresh);
                w.raw_special = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(next) => w.text.push(next),
                }
            }
            ';' | '&' | '|' | '\n' | '(' | ')' | '`' => {
                end_word(&mut word, &mut words);
                segments.push(std::mem::take(&mut words));
            }
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                end_word(&mut word, &mut words);
                segments.push(std::mem::take(&mut words));
            }
            c if c.is_whitespace() => end_word(&mut word, &mut words),
            '$' | '*' | '?' | '[' => {
                let w = word.get_or_insert_with(fresh);
                w.text.push(c);
                w.raw_special = true;
            }
            _ => word.get_or_insert_with(fresh).text.push(c),
        }
    }
    if quote.is_some() {
        return None;
    }
    end_word(&mut word, &mut words);
    segments.push(words);
    Some(segments)
}

/// Drops leading assignments, redirections without a command yet, and
/// wrappers that run the rest as a command.
fn strip_prefixes(words: &[Word]) -> &[Word] {
    let mut rest = words;
    loop {
        let Some(first) = rest.first() else {
            return rest;
        };
        let text = first.text.as_str();
        let is_assignment = text.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_assignment
            || matches!(
                text,
                "env"
                    | "command"
                    | "exec"
                    | "nohup"
                    | "time"
                    | "builtin"
                    | "nice"
                    | "!"
                    | "{"
                    | "}"
                    | "if"
                    | "then"
                    | "do"
                    | "else"
                    | "elif"
                    | "while"
                    | "until"
            )
        {
            rest = &rest[1..];
            continue;
        }
        if text == "timeout" {
            // timeout [options] DURATION COMMAND…
            let after = rest[1..]
                .iter()
                .position(|w| !w.text.starts_with('-'))
                .map(|at| at + 2);
            rest = after.and_then(|at| rest.get(at..)).unwrap_or(&[]);
            continue;
        }
        if text.starts_with('-') && words.len() != rest.len() {
            // An option of a wrapper (`env -i`, `nice -n 5`).
            rest = &rest[1..];
            continue;
        }
        return rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(command: &str) -> Vec<String> {
        commands(command)
            .unwrap()
            .into_iter()
            .map(|p| p.text)
            .collect()
    }

    #[test]
    fn compound_commands_yield_every_part() {
        assert_eq!(
            texts("ls && curl x || echo 'a;b'"),
            ["ls", "curl x", "echo a;b"]
        );
        assert_eq!(texts("echo $(curl x) | sh"), ["echo", "curl x", "sh"]);
        assert_eq!(texts("echo \"`curl x`\""), ["echo ", "curl x"]);
        assert_eq!(texts("(cd a; curl x)\nls"), ["cd a", "curl x", "ls"]);
    }

    #[test]
    fn wrappers_assignments_and_quotes_are_seen_through() {
        assert_eq!(
            texts("FOO=1 env -i timeout 5 nohup c'u'rl \"http://x\""),
            ["curl http://x"]
        );
        assert_eq!(
            texts("bash -c 'curl x; ls'"),
            ["curl x", "ls", "bash -c curl x; ls"]
        );
        assert_eq!(texts("sh -ec \"curl x\""), ["curl x", "sh -ec curl x"]);
    }

    #[test]
    fn computed_command_names_are_opaque() {
        let parts = commands("$C http://x; \\curl y; c*rl z; echo $HOME").unwrap();
        let opaque: Vec<bool> = parts.iter().map(|p| p.opaque).collect();
        assert_eq!(opaque, [true, true, true, false]);
    }

    #[test]
    fn unbalanced_quotes_are_unreadable() {
        assert_eq!(commands("echo 'a"), None);
        assert_eq!(commands("echo \"a"), None);
    }
}
