//! The argv of a headless Claude Code run.

use crate::execution::AgentOptions;

/// The session a run belongs to, chosen by agentd (never taken from the
/// sandbox): its own id, the session it resumes, and how the prompt arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// The run's session id (`--session-id`): agentd names it after the
    /// execution, so its transcript can be found without asking the sandbox.
    pub id: Option<String>,
    /// The earlier session it continues (`--resume`, with `--fork-session`
    /// so the run's transcript is its own under [`Session::id`]).
    pub resume: Option<String>,
    /// Streaming input: the prompt and later messages come as stream-json
    /// lines on stdin (`--input-format stream-json`), each echoed back when
    /// the CLI takes it (`--replay-user-messages`), and the prompt is not an
    /// argument.
    pub streaming: bool,
}

/// The argv (first element `claude`) that runs one headless session printing
/// stream-json, with every permission prompt bypassed: the sandbox, not the CLI,
/// is the security boundary, and nobody is there to answer a prompt.
///
/// Every value-taking flag is passed as one `--flag=value` argument and the prompt
/// comes last, after `--`. Checked against Claude Code 2.1.330: that keeps a tool
/// rule with spaces or commas (`Bash(git diff *)`) one rule, stops the variadic
/// `--allowedTools` / `--disallowedTools` from swallowing the prompt, and passes a
/// prompt or system-prompt text that starts with `-` (or names a subcommand such as
/// `mcp`) verbatim. Blank options are left out, meaning "the CLI's default";
/// out-of-range numbers are passed on and the CLI refuses to start. The budget is
/// not passed: agentd's gateway enforces it.
pub fn command(prompt: &str, options: &AgentOptions, session: &Session) -> Vec<String> {
    let mut argv: Vec<String> = [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if let Some(model) = non_blank(options.model.as_deref()) {
        argv.push(format!("--model={model}"));
    }
    if let Some(turns) = options.max_turns {
        argv.push(format!("--max-turns={turns}"));
    }
    for rule in options
        .allowed_tools
        .iter()
        .filter_map(|r| non_blank(Some(r)))
    {
        argv.push(format!("--allowedTools={rule}"));
    }
    for rule in options
        .disallowed_tools
        .iter()
        .filter_map(|r| non_blank(Some(r)))
    {
        argv.push(format!("--disallowedTools={rule}"));
    }
    if let Some(text) = non_blank(options.append_system_prompt.as_deref()) {
        argv.push(format!("--append-system-prompt={text}"));
    }
    if let Some(id) = &session.id {
        argv.push(format!("--session-id={id}"));
    }
    if let Some(earlier) = &session.resume {
        argv.push(format!("--resume={earlier}"));
        argv.push("--fork-session".to_string());
    }
    if session.streaming {
        argv.push("--input-format=stream-json".to_string());
        argv.push("--replay-user-messages".to_string());
        return argv;
    }
    argv.push("--".to_string());
    argv.push(prompt.to_string());
    argv
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const BASE: [&str; 6] = [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
    ];

    fn expected(middle: &[&str], prompt: &str) -> Vec<String> {
        BASE.iter()
            .chain(middle)
            .chain(&["--", prompt])
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn defaults_give_the_bare_headless_run() {
        let argv = command("fix the bug", &AgentOptions::default(), &Session::default());
        assert_eq!(argv, expected(&[], "fix the bug"));
    }

    #[test]
    fn every_option_becomes_one_argument() {
        let options = AgentOptions {
            model: Some("claude-sonnet-4-5".into()),
            max_turns: Some(12),
            max_budget_usd: Some(0.25),
            allowed_tools: vec!["Bash(git diff *)".into(), "Read".into()],
            disallowed_tools: vec!["WebFetch".into(), "Bash(rm -rf *)".into()],
            append_system_prompt: Some("Be brief.\nNo emojis.".into()),
        };
        let argv = command("do it", &options, &Session::default());
        assert_eq!(
            argv,
            expected(
                &[
                    "--model=claude-sonnet-4-5",
                    "--max-turns=12",
                    "--allowedTools=Bash(git diff *)",
                    "--allowedTools=Read",
                    "--disallowedTools=WebFetch",
                    "--disallowedTools=Bash(rm -rf *)",
                    "--append-system-prompt=Be brief.\nNo emojis.",
                ],
                "do it"
            )
        );
    }

    #[test]
    fn prompt_is_last_after_end_of_options_even_when_it_looks_like_a_flag() {
        let options = AgentOptions {
            allowed_tools: vec!["Bash(git log *)".into()],
            ..AgentOptions::default()
        };
        let argv = command("--help -p mcp", &options, &Session::default());
        let n = argv.len();
        assert_eq!(argv[n - 2], "--");
        assert_eq!(argv[n - 1], "--help -p mcp");
        assert_eq!(argv.iter().filter(|a| *a == "--").count(), 1);
    }

    #[test]
    fn blank_options_mean_the_cli_default() {
        let options = AgentOptions {
            model: Some("  ".into()),
            allowed_tools: vec!["".into(), "Read".into()],
            disallowed_tools: vec![" ".into()],
            append_system_prompt: Some(String::new()),
            ..AgentOptions::default()
        };
        assert_eq!(
            command("p", &options, &Session::default()),
            expected(&["--allowedTools=Read"], "p")
        );
    }

    #[test]
    fn the_budget_is_the_gateways_not_the_clis() {
        // agentd meters and enforces the budget itself; a second, racing check
        // in the CLI would end some runs `failed` instead of `budget_exceeded`.
        let options = AgentOptions {
            max_budget_usd: Some(0.25),
            ..AgentOptions::default()
        };
        assert!(
            !command("p", &options, &Session::default())
                .iter()
                .any(|a| a.contains("budget"))
        );
    }

    #[test]
    fn a_follow_up_resumes_its_parents_session_under_its_own_id() {
        let session = Session {
            id: Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c".into()),
            resume: Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into()),
            streaming: false,
        };
        assert_eq!(
            command("next", &AgentOptions::default(), &session),
            expected(
                &[
                    "--session-id=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
                    "--resume=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "--fork-session",
                ],
                "next"
            )
        );
    }

    #[test]
    fn streaming_input_takes_the_prompt_from_stdin() {
        let session = Session {
            streaming: true,
            ..Session::default()
        };
        let argv = command("secret prompt", &AgentOptions::default(), &session);
        assert!(
            !argv
                .iter()
                .any(|a| a.contains("secret prompt") || a == "--")
        );
        assert!(argv.ends_with(&[
            "--input-format=stream-json".to_string(),
            "--replay-user-messages".to_string()
        ]));
    }
}
