//! The CLI's session state: the transcript Claude Code keeps of a session
//! (`<config dir>/projects/<project>/<session id>.jsonl`), which `--resume`
//! reads back. agentd brings it out of a finished sandbox and places it in a
//! follow-up's before the CLI starts, so the model sees the whole earlier
//! conversation.
//!
//! Everything here treats what came out of the sandbox as hostile: a session
//! id is only ever used after [`is_session_id`] accepted it (it names a file
//! and becomes an argument), and a transcript is bytes, bounded in size.

/// The most bytes of session transcript kept for a follow-up: 32 MiB. A
/// longer session is not kept (the follow-up starts a fresh session from the
/// parent's commit, and says so).
pub const MAX_SESSION_BYTES: u64 = 32 << 20;

/// Where, inside the sandbox, the driver keeps the CLI's session transcripts:
/// on the workspace volume (the CLI's `~/.claude/projects` is a link to it),
/// so they outlive a container killed at its time limit and a collector
/// container can still hand them back.
pub const SESSIONS_DIR: &str = "/workspace/.agentd/sessions";

/// Where a follow-up's sandbox finds its parent's transcript (a read-only
/// bind of one host folder holding `session.jsonl`).
pub const RESUME_MOUNT: &str = "/run/agentd-resume";

/// The transcript's file name in [`RESUME_MOUNT`] and in an execution's folder.
pub const SESSION_FILE: &str = "session.jsonl";

/// Whether `text` is a session id as the CLI makes them: a lowercase UUID,
/// `8-4-4-4-12` hexadecimal digits. Nothing else is ever passed to
/// `--resume` or used as a file name.
pub fn is_session_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len
                && group
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The name of the folder the CLI keeps a working directory's sessions in:
/// the directory with every character other than an ASCII letter or digit
/// replaced by `-` (`/workspace` → `-workspace`).
pub fn project_folder(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The transcript of session `id` among the relative paths of a collected
/// sessions folder: `<project>/<id>.jsonl`, one level deep (anything else the
/// sandbox left there is ignored).
pub fn transcript_path<'a>(paths: impl IntoIterator<Item = &'a str>, id: &str) -> Option<&'a str> {
    let wanted = format!("{id}.jsonl");
    paths.into_iter().find(|path| {
        let mut parts = path.split('/');
        matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(project), Some(name), None)
                if !project.is_empty() && !project.starts_with('.') && name == wanted
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_uuids_are_session_ids() {
        assert!(is_session_id("0b5e8a4e-2f7d-4f62-9c1e-0a7f3a1b2c3d"));
        for bad in [
            "",
            "0B5E8A4E-2F7D-4F62-9C1E-0A7F3A1B2C3D",
            "0b5e8a4e-2f7d-4f62-9c1e-0a7f3a1b2c3",
            "0b5e8a4e-2f7d-4f62-9c1e-0a7f3a1b2c3d-",
            "../../etc/passwd-aaaa-bbbb-cccc-dddd",
            "0b5e8a4e-2f7d-4f62-9c1e-0a7f3a1b2c3d\n",
            "--help",
            "0b5e8a4e_2f7d_4f62_9c1e_0a7f3a1b2c3d",
        ] {
            assert!(!is_session_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_project_folder_is_the_cwd_with_dashes() {
        assert_eq!(project_folder("/workspace"), "-workspace");
        assert_eq!(project_folder("/workspace/repo.x"), "-workspace-repo-x");
    }

    #[test]
    fn the_transcript_is_found_one_level_deep_only() {
        let id = "0b5e8a4e-2f7d-4f62-9c1e-0a7f3a1b2c3d";
        let name = format!("-workspace/{id}.jsonl");
        let deep = format!("-workspace/x/{id}.jsonl");
        let top = format!("{id}.jsonl");
        let hidden = format!(".x/{id}.jsonl");
        assert_eq!(
            transcript_path(
                [deep.as_str(), top.as_str(), hidden.as_str(), name.as_str()],
                id
            ),
            Some(name.as_str())
        );
        assert_eq!(transcript_path([deep.as_str()], id), None);
    }
}
