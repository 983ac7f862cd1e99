//! The program a sandbox runs: a small bash driver (embedded, so images need no
//! agentd-specific files) that wires the model socket, clones the repository,
//! runs the agent and commits its work for collection.

use crate::execution::HookStage;

/// The driver script (see `driver.sh` for the contract).
pub const SCRIPT: &str = include_str!("driver.sh");

/// Exit code the driver uses when it could not set the sandbox up.
pub const SETUP_FAILED: i64 = 90;
/// The port inside the sandbox where socat exposes the model socket.
pub const LLM_PORT: u16 = 8080;
/// Where the mirror is mounted inside the sandbox.
pub const MIRROR_MOUNT: &str = "/mirror/repo.git";
/// The repository in the sandbox (an overlay bound here when the workspace
/// is layered over a checkout template).
pub const REPO_MOUNT: &str = "/workspace/repo";
/// Where the per-execution socket directory is mounted inside the sandbox.
pub const SOCKET_MOUNT: &str = "/run/agentd";
/// The socket's file name inside that directory.
pub const SOCKET_NAME: &str = "llm.sock";
/// The folder the agent may fill with files to hand back.
pub const ARTIFACTS_DIR: &str = "/workspace/.agentd/artifacts";
/// Where the driver leaves the diff, bundle and file list.
pub const OUTPUT_DIR: &str = "/workspace/.agentd/out";
/// The repository's working tree inside the sandbox.
pub const REPO_DIR: &str = "/workspace/repo";
/// A value for `ANTHROPIC_API_KEY` inside the sandbox: the CLI wants one, the
/// gateway drops it and adds the real one upstream.
pub const PLACEHOLDER_KEY: &str = "agentd-sandbox-has-no-key";

/// The container command for the agent run: the driver, then the agent's argv.
pub fn run_command(agent_argv: Vec<String>) -> Vec<String> {
    let mut cmd = vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "agentd-driver".to_string(),
        "run".to_string(),
    ];
    cmd.extend(agent_argv);
    cmd
}

/// The container command that checks the repository out into a checkout
/// template mounted at [`TEMPLATE_MOUNT`].
pub fn template_command() -> Vec<String> {
    vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "agentd-driver".to_string(),
        "template".to_string(),
    ]
}

/// Where a checkout template being built is mounted in its sandbox.
pub const TEMPLATE_MOUNT: &str = "/template";

/// The container command that only collects (after the agent container died).
pub fn collect_command() -> Vec<String> {
    vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "agentd-driver".to_string(),
        "collect".to_string(),
    ]
}

/// Bytes of the agent's output (stdout and stderr together) the driver's relay
/// passes before keeping only the last lines: 32 MiB.
pub const OUTPUT_BUDGET_BYTES: u64 = 32 << 20;
/// Lines of the agent's output the relay passes before keeping only the last ones.
pub const OUTPUT_BUDGET_LINES: u64 = 100_000;
/// Files larger than this are not collected (GitHub refuses files over 100 MiB
/// too): 100 MiB. They are listed as left out.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 << 20;

/// The workspace's filesystem as the kernel reported it at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkspaceUse {
    /// Size in bytes.
    pub size: u64,
    /// Bytes used.
    pub used: u64,
    /// Bytes still available to the agent.
    pub avail: u64,
}

impl WorkspaceUse {
    /// True when the agent had (almost) no space left: under 1% of the size.
    pub fn is_full(&self) -> bool {
        self.size > 0 && self.avail.saturating_mul(100) < self.size
    }
}

/// What the driver reported about itself on stderr. Only the driver writes
/// there (the agent's uid holds no descriptor of the container's stderr), so
/// these are observations, not the agent's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverMessage {
    /// Entered a phase (`cloning`, `agent`, `collecting`, `collected`).
    Phase(String),
    /// The agent process exited with this code.
    AgentExit(i64),
    /// Setup or collection failed.
    Error(String),
    /// Something went wrong but the run continues.
    Warning(String),
    /// The relay dropped this much of the agent's output (bytes, lines).
    OutputDropped { bytes: u64, lines: u64 },
    /// The workspace's use at the end.
    Workspace(WorkspaceUse),
    /// A lifecycle hook started.
    HookStarted { stage: HookStage, index: usize },
    /// A line a hook printed (stdout and stderr together).
    HookOutput {
        stage: HookStage,
        index: usize,
        line: String,
    },
    /// A hook ended: its exit code (124 or 137: out of time) and duration.
    HookFinished {
        stage: HookStage,
        index: usize,
        exit_code: i64,
        duration_ms: u64,
    },
    /// A teardown hook whose failure fails the execution failed.
    TeardownFailed(String),
}

/// Parses a stderr line; `None` for lines that are not the driver's.
pub fn parse_message(line: &str) -> Option<DriverMessage> {
    let rest = line.strip_prefix("::agentd:: ")?;
    let (key, value) = rest.split_once('=')?;
    let value = value.to_string();
    Some(match key {
        "phase" => DriverMessage::Phase(value),
        "agent_exit" => DriverMessage::AgentExit(value.trim().parse().ok()?),
        "error" => DriverMessage::Error(value),
        "warning" => DriverMessage::Warning(value),
        "output_dropped" => {
            let (bytes, lines) = value.split_once(' ')?;
            DriverMessage::OutputDropped {
                bytes: bytes.trim().parse().ok()?,
                lines: lines.trim().parse().ok()?,
            }
        }
        "hook_started" => {
            let (stage, index) = value.split_once(' ')?;
            DriverMessage::HookStarted {
                stage: HookStage::parse(stage)?,
                index: index.trim().parse().ok()?,
            }
        }
        "hook_output" => {
            let (stage, rest) = value.split_once(' ')?;
            let (index, line) = rest.split_once(' ').unwrap_or((rest, ""));
            DriverMessage::HookOutput {
                stage: HookStage::parse(stage)?,
                index: index.parse().ok()?,
                line: line.to_string(),
            }
        }
        "hook_finished" => {
            let mut fields = value.split_whitespace();
            DriverMessage::HookFinished {
                stage: HookStage::parse(fields.next()?)?,
                index: fields.next()?.parse().ok()?,
                exit_code: fields.next()?.parse().ok()?,
                duration_ms: fields.next()?.parse().ok()?,
            }
        }
        "teardown_failed" => DriverMessage::TeardownFailed(value),
        "workspace" => {
            let mut numbers = value.split_whitespace().map(|n| n.parse::<u64>().ok());
            let mut next = || numbers.next().flatten();
            DriverMessage::Workspace(WorkspaceUse {
                size: next()?,
                used: next()?,
                avail: next()?,
            })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_driver_lines_only() {
        assert_eq!(
            parse_message("::agentd:: phase=agent"),
            Some(DriverMessage::Phase("agent".into()))
        );
        assert_eq!(
            parse_message("::agentd:: agent_exit=137"),
            Some(DriverMessage::AgentExit(137))
        );
        assert_eq!(
            parse_message("::agentd:: error=git clone from the mirror failed: x=y"),
            Some(DriverMessage::Error(
                "git clone from the mirror failed: x=y".into()
            ))
        );
        assert_eq!(parse_message("::agentd:: agent_exit=lots"), None);
        assert_eq!(
            parse_message("::agentd:: output_dropped=1200 30"),
            Some(DriverMessage::OutputDropped {
                bytes: 1200,
                lines: 30
            })
        );
        let full = WorkspaceUse {
            size: 1000,
            used: 995,
            avail: 5,
        };
        assert_eq!(
            parse_message("::agentd:: workspace=1000 995 5"),
            Some(DriverMessage::Workspace(full))
        );
        assert!(full.is_full());
        assert!(!WorkspaceUse { avail: 100, ..full }.is_full());
        assert_eq!(parse_message("::agentd:: workspace=1 2"), None);
        assert_eq!(parse_message("plain stderr"), None);
        assert_eq!(parse_message("::agentd:: nonsense"), None);
    }

    /// Runs the driver's relay on `input` with a budget; returns (stdout, stderr).
    fn relay(input: &[u8], bytes: u64, lines: u64) -> (Vec<u8>, String) {
        use std::io::Write;
        let mut child = std::process::Command::new("bash")
            .args(["-c", SCRIPT, "agentd-driver", "relay"])
            .env("AGENTD_OUTPUT_BUDGET", bytes.to_string())
            .env("AGENTD_OUTPUT_LINES", lines.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(output.status.success());
        (
            output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[test]
    fn the_relay_passes_small_output_whole() {
        let input = b"{\"type\":\"system\"}\nline two\nno newline at the end";
        let (out, err) = relay(input, 1 << 20, 1000);
        assert_eq!(out, input);
        assert_eq!(err, "");
    }

    #[test]
    fn a_flood_is_cut_to_the_budget_and_its_end_is_kept() {
        let mut input = Vec::new();
        for i in 0..400_000 {
            input.extend_from_slice(format!("flood line {i}\n").as_bytes());
        }
        input.extend_from_slice(b"{\"type\":\"result\",\"subtype\":\"success\"}\n");
        let (out, err) = relay(&input, 64 << 10, 1_000);
        assert!(
            out.len() < (64 << 10) + (1 << 20) + 100,
            "{} bytes passed",
            out.len()
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("flood line 0\n"));
        assert!(text.ends_with("{\"type\":\"result\",\"subtype\":\"success\"}\n"));
        assert!(
            text.lines()
                .all(|l| l.starts_with("flood line ") || l.starts_with('{'))
        );
        let numbers: Vec<usize> = text
            .lines()
            .filter_map(|l| l.strip_prefix("flood line ")?.parse().ok())
            .collect();
        let passed = numbers
            .iter()
            .enumerate()
            .take_while(|(i, n)| i == *n)
            .count();
        assert_eq!(passed, 1000, "the line budget holds");
        assert_eq!(numbers.last(), Some(&399_999));
        let Some(DriverMessage::OutputDropped { bytes, lines }) = parse_message(err.trim()) else {
            panic!("no drop report: {err}")
        };
        assert!(lines > 300_000, "{lines}");
        assert_eq!(bytes as usize + text.len(), input.len());
    }

    #[test]
    fn script_is_valid_bash() {
        let status = std::process::Command::new("bash")
            .args(["-n", "-c", SCRIPT])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
