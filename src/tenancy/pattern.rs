//! The wildcard patterns admins write in policies: `*` matches any run of
//! characters (including none), every other character matches itself.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Greedy matching with one backtrack point (the last `*`): linear in
    // practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether any of `patterns` matches `text`.
pub fn any_matches(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|pattern| matches(pattern, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_and_the_rest_matches_itself() {
        for (pattern, text) in [
            ("claude-*", "claude-sonnet-4-5"),
            ("*", ""),
            (
                "https://git.example.com/acme/*",
                "https://git.example.com/acme/app.git",
            ),
            ("a*b*c", "aXXbYYc"),
            ("agentd-agent:*", "agentd-agent:2.1.330-9264fad5"),
            ("exact", "exact"),
        ] {
            assert!(matches(pattern, text), "{pattern} {text}");
        }
        for (pattern, text) in [
            ("claude-*", "gpt-claude-x"),
            (
                "https://git.example.com/acme/*",
                "https://git.example.com/acmeevil/x",
            ),
            (
                "https://git.example.com/acme/*",
                "https://git.example.com.evil/acme/x",
            ),
            ("exact", "exactly"),
            ("a*b", "a"),
        ] {
            assert!(!matches(pattern, text), "{pattern} {text}");
        }
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(5000);
        let started = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
