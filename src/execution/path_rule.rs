//! Path specifiers of `Read(…)` / `Edit(…)` rules, gitignore-style as the CLI
//! reads them: `//abs/path` is absolute, `~/x` is below the agent's home,
//! `/x` is below the project (the agent's working directory), `./x` and `x`
//! below the working directory; `*` matches within one path segment, `**` any
//! number of them; a pattern without a slash matches a name at any depth; a
//! pattern naming a folder covers everything in it. Paths are compared after
//! `.` and `..` are resolved, so `./a/../.env` is `.env`.

/// The agent's home directory, where `~/` points.
pub const AGENT_HOME: &str = "/home/agent";

/// True when `path` (absolute, or relative to `cwd`) falls under `pattern`.
pub fn matches(pattern: &str, path: &str, cwd: &str) -> bool {
    let pattern = pattern.trim();
    let (base, rest, anywhere) = if let Some(abs) = pattern.strip_prefix("//") {
        ("/".to_string(), abs, false)
    } else if let Some(home) = pattern.strip_prefix("~/") {
        (AGENT_HOME.to_string(), home, false)
    } else if let Some(project) = pattern.strip_prefix('/') {
        (cwd.to_string(), project, false)
    } else if let Some(here) = pattern.strip_prefix("./") {
        (cwd.to_string(), here, false)
    } else {
        (cwd.to_string(), pattern, !pattern.contains('/'))
    };
    let mut wanted = segments(&base);
    let glob: Vec<String> = segments(&format!("/{rest}"));
    if anywhere {
        wanted.push("**".to_string());
    }
    wanted.extend(glob);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let path = segments(&path);
    // A pattern naming a folder covers what is inside it.
    (1..=path.len()).any(|end| glob_segments(&wanted, &path[..end]))
}

/// The segments of an absolute path with `.`, `..` and empty ones resolved.
fn segments(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_string()),
        }
    }
    out
}

fn glob_segments(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| glob_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                glob_one(first, segment) && glob_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment.
fn glob_one(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        // A `*` in the pattern is a wildcard even facing a `*` in the text.
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const CWD: &str = "/workspace/repo";

    #[test]
    fn relative_rules_read_against_the_working_directory() {
        assert!(matches("./.env", "/workspace/repo/.env", CWD));
        assert!(matches("./.env", ".env", CWD));
        assert!(matches("./.env", "/workspace/repo/src/../.env", CWD));
        assert!(matches("./.env", "/workspace/repo//./.env", CWD));
        assert!(!matches("./.env", "/workspace/repo/.env.example", CWD));
        assert!(!matches("./.env", "/workspace/repo/src/.env", CWD));
        assert!(matches(".env", "/workspace/repo/src/.env", CWD));
        assert!(matches("/secrets/**", "/workspace/repo/secrets/a/b", CWD));
        assert!(matches("./secrets", "/workspace/repo/secrets/key.pem", CWD));
    }

    #[test]
    fn absolute_home_and_globs() {
        assert!(matches("//etc/passwd", "/etc/passwd", CWD));
        assert!(matches("//etc/**", "/etc/ssl/certs/x", CWD));
        assert!(matches(
            "~/.claude/**",
            "/home/agent/.claude/settings.json",
            CWD
        ));
        assert!(matches("./src/*.rs", "src/main.rs", CWD));
        assert!(!matches("./src/*.rs", "src/a/main.rs", CWD));
        assert!(matches("./src/**/*.rs", "src/a/b/main.rs", CWD));
        assert!(!matches("//etc/passwd", "/workspace/repo/etc/passwd", CWD));
    }

    #[test]
    fn a_star_in_a_file_name_does_not_slip_past_a_wildcard() {
        // A repository may name a file `*key`: the rule's `*` must still
        // match it (a deny rule would otherwise let it be read).
        assert!(matches("./secrets/*", "secrets/*key", CWD));
        assert!(matches("./secrets/*", "secrets/**", CWD));
        assert!(matches("./secrets/*.pem", "secrets/*.pem", CWD));
        assert!(matches("./a*b", "a*xb", CWD));
    }
}
