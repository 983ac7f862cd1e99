//! The wildcard patterns admins write in policies: `*` matches any run of
//! characters (including none), every other character matches itself.

/// Whether `text` matches `pattern` as a whole (linear: each piece between
/// stars is found once, never backtracked into).
pub fn matches(pattern: &str, text: &str) -> bool {
    crate::execution::glob(pattern, text)
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
